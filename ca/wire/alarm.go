package wire

import "strconv"

// AlarmSeverity is an EPICS alarm severity.
type AlarmSeverity uint16

// The alarm severities.
const (
	SevNoAlarm AlarmSeverity = 0
	SevMinor   AlarmSeverity = 1
	SevMajor   AlarmSeverity = 2
	SevInvalid AlarmSeverity = 3
)

var severityNames = [...]string{"NO_ALARM", "MINOR", "MAJOR", "INVALID"}

// String returns the severity's EPICS name.
func (s AlarmSeverity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return "SEVERITY(" + strconv.Itoa(int(s)) + ")"
}

// AlarmStatus is an EPICS alarm status (condition).
type AlarmStatus uint16

// The alarm conditions.
const (
	StatNoAlarm     AlarmStatus = 0
	StatRead        AlarmStatus = 1
	StatWrite       AlarmStatus = 2
	StatHiHi        AlarmStatus = 3
	StatHigh        AlarmStatus = 4
	StatLoLo        AlarmStatus = 5
	StatLow         AlarmStatus = 6
	StatState       AlarmStatus = 7
	StatCOS         AlarmStatus = 8
	StatComm        AlarmStatus = 9
	StatTimeout     AlarmStatus = 10
	StatHwLimit     AlarmStatus = 11
	StatCalc        AlarmStatus = 12
	StatScan        AlarmStatus = 13
	StatLink        AlarmStatus = 14
	StatSoft        AlarmStatus = 15
	StatBadSub      AlarmStatus = 16
	StatUDF         AlarmStatus = 17
	StatDisable     AlarmStatus = 18
	StatSimm        AlarmStatus = 19
	StatReadAccess  AlarmStatus = 20
	StatWriteAccess AlarmStatus = 21
)

var statusNames = [...]string{
	"NO_ALARM", "READ", "WRITE", "HIHI", "HIGH", "LOLO", "LOW", "STATE", "COS", "COMM",
	"TIMEOUT", "HWLIMIT", "CALC", "SCAN", "LINK", "SOFT", "BAD_SUB", "UDF", "DISABLE", "SIMM",
	"READ_ACCESS", "WRITE_ACCESS",
}

// String returns the status's EPICS name.
func (s AlarmStatus) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "STATUS(" + strconv.Itoa(int(s)) + ")"
}
