package wire

import (
	"fmt"
	"time"
)

// DBRType is a CA data type code (DBR_*), 0 to 38. The plain types 0 to 6 are also
// the native (DBF) types of channels.
type DBRType uint16

// The DBR types.
const (
	DBRString       DBRType = 0
	DBRShort        DBRType = 1
	DBRInt                  = DBRShort
	DBRFloat        DBRType = 2
	DBREnum         DBRType = 3
	DBRChar         DBRType = 4
	DBRLong         DBRType = 5
	DBRDouble       DBRType = 6
	DBRStsString    DBRType = 7
	DBRStsShort     DBRType = 8
	DBRStsFloat     DBRType = 9
	DBRStsEnum      DBRType = 10
	DBRStsChar      DBRType = 11
	DBRStsLong      DBRType = 12
	DBRStsDouble    DBRType = 13
	DBRTimeString   DBRType = 14
	DBRTimeShort    DBRType = 15
	DBRTimeFloat    DBRType = 16
	DBRTimeEnum     DBRType = 17
	DBRTimeChar     DBRType = 18
	DBRTimeLong     DBRType = 19
	DBRTimeDouble   DBRType = 20
	DBRGrString     DBRType = 21
	DBRGrShort      DBRType = 22
	DBRGrFloat      DBRType = 23
	DBRGrEnum       DBRType = 24
	DBRGrChar       DBRType = 25
	DBRGrLong       DBRType = 26
	DBRGrDouble     DBRType = 27
	DBRCtrlString   DBRType = 28
	DBRCtrlShort    DBRType = 29
	DBRCtrlFloat    DBRType = 30
	DBRCtrlEnum     DBRType = 31
	DBRCtrlChar     DBRType = 32
	DBRCtrlLong     DBRType = 33
	DBRCtrlDouble   DBRType = 34
	DBRPutAckT      DBRType = 35
	DBRPutAckS      DBRType = 36
	DBRStsAckString DBRType = 37
	DBRClassName    DBRType = 38
)

// MaxDBRType is the highest DBR type code.
const MaxDBRType = DBRClassName

// Family groups DBR types by the metadata they carry.
type Family uint8

// The DBR families.
const (
	FamilyPlain Family = iota
	FamilySts
	FamilyTime
	FamilyGr
	FamilyCtrl
	FamilyPutAck    // DBR_PUT_ACKT and DBR_PUT_ACKS: write-only alarm acknowledgement
	FamilyStsAck    // DBR_STSACK_STRING
	FamilyClassName // DBR_CLASS_NAME
)

// Sizes of fixed-width strings in DBR payloads.
const (
	MaxStringSize     = 40
	MaxUnitsSize      = 8
	MaxEnumStates     = 16
	MaxEnumStringSize = 26
)

type dbrInfo struct {
	name   string
	size   int // dbr_size: the size with one element
	offset int // offset of the first value element
	base   DBRType
	family Family
}

var dbrTable = [...]dbrInfo{
	{"DBR_STRING", 40, 0, DBRString, FamilyPlain},
	{"DBR_SHORT", 2, 0, DBRShort, FamilyPlain},
	{"DBR_FLOAT", 4, 0, DBRFloat, FamilyPlain},
	{"DBR_ENUM", 2, 0, DBREnum, FamilyPlain},
	{"DBR_CHAR", 1, 0, DBRChar, FamilyPlain},
	{"DBR_LONG", 4, 0, DBRLong, FamilyPlain},
	{"DBR_DOUBLE", 8, 0, DBRDouble, FamilyPlain},
	{"DBR_STS_STRING", 44, 4, DBRString, FamilySts},
	{"DBR_STS_SHORT", 6, 4, DBRShort, FamilySts},
	{"DBR_STS_FLOAT", 8, 4, DBRFloat, FamilySts},
	{"DBR_STS_ENUM", 6, 4, DBREnum, FamilySts},
	{"DBR_STS_CHAR", 6, 5, DBRChar, FamilySts},
	{"DBR_STS_LONG", 8, 4, DBRLong, FamilySts},
	{"DBR_STS_DOUBLE", 16, 8, DBRDouble, FamilySts},
	{"DBR_TIME_STRING", 52, 12, DBRString, FamilyTime},
	{"DBR_TIME_SHORT", 16, 14, DBRShort, FamilyTime},
	{"DBR_TIME_FLOAT", 16, 12, DBRFloat, FamilyTime},
	{"DBR_TIME_ENUM", 16, 14, DBREnum, FamilyTime},
	{"DBR_TIME_CHAR", 16, 15, DBRChar, FamilyTime},
	{"DBR_TIME_LONG", 16, 12, DBRLong, FamilyTime},
	{"DBR_TIME_DOUBLE", 24, 16, DBRDouble, FamilyTime},
	{"DBR_GR_STRING", 44, 4, DBRString, FamilyGr},
	{"DBR_GR_SHORT", 26, 24, DBRShort, FamilyGr},
	{"DBR_GR_FLOAT", 44, 40, DBRFloat, FamilyGr},
	{"DBR_GR_ENUM", 424, 422, DBREnum, FamilyGr},
	{"DBR_GR_CHAR", 20, 19, DBRChar, FamilyGr},
	{"DBR_GR_LONG", 40, 36, DBRLong, FamilyGr},
	{"DBR_GR_DOUBLE", 72, 64, DBRDouble, FamilyGr},
	{"DBR_CTRL_STRING", 44, 4, DBRString, FamilyCtrl},
	{"DBR_CTRL_SHORT", 30, 28, DBRShort, FamilyCtrl},
	{"DBR_CTRL_FLOAT", 52, 48, DBRFloat, FamilyCtrl},
	{"DBR_CTRL_ENUM", 424, 422, DBREnum, FamilyCtrl},
	{"DBR_CTRL_CHAR", 22, 21, DBRChar, FamilyCtrl},
	{"DBR_CTRL_LONG", 48, 44, DBRLong, FamilyCtrl},
	{"DBR_CTRL_DOUBLE", 88, 80, DBRDouble, FamilyCtrl},
	{"DBR_PUT_ACKT", 2, 0, DBREnum, FamilyPutAck},
	{"DBR_PUT_ACKS", 2, 0, DBREnum, FamilyPutAck},
	{"DBR_STSACK_STRING", 48, 8, DBRString, FamilyStsAck},
	{"DBR_CLASS_NAME", 40, 0, DBRString, FamilyClassName},
}

var valueSizes = [...]int{DBRString: 40, DBRShort: 2, DBRFloat: 4, DBREnum: 2, DBRChar: 1, DBRLong: 4, DBRDouble: 8}

// Valid reports whether t is a DBR type code (0 to 38).
func (t DBRType) Valid() bool { return t <= MaxDBRType }

// String returns the DBR_* name of the type.
func (t DBRType) String() string {
	if t.Valid() {
		return dbrTable[t].name
	}
	return fmt.Sprintf("DBR(%d)", uint16(t))
}

// Base returns the plain value type (0 to 6) of the elements of t. PUT_ACKT and
// PUT_ACKS carry an unsigned 16-bit value and report DBREnum; STSACK_STRING and
// CLASS_NAME report DBRString. Base of an invalid type is DBRString.
func (t DBRType) Base() DBRType {
	if t.Valid() {
		return dbrTable[t].base
	}
	return DBRString
}

// Family returns the metadata family of t.
func (t DBRType) Family() Family {
	if t.Valid() {
		return dbrTable[t].family
	}
	return FamilyPlain
}

// ValueSize returns the size of one element of t (dbr_value_size).
func (t DBRType) ValueSize() int { return valueSizes[t.Base()] }

// ValueOffset returns the offset of the first element in a payload of type t.
func (t DBRType) ValueOffset() int {
	if t.Valid() {
		return dbrTable[t].offset
	}
	return 0
}

// Size returns dbr_size_n(t, n): the unpadded payload size of n elements of
// type t. With n = 0 it is the size of the metadata alone.
func (t DBRType) Size(n int) int {
	if !t.Valid() {
		return 0
	}
	info := &dbrTable[t]
	if n <= 0 {
		return info.size - valueSizes[info.base]
	}
	return info.size + (n-1)*valueSizes[info.base]
}

// Family rule: for a plain type b the family types are b+7 (STS), b+14 (TIME),
// b+21 (GR) and b+28 (CTRL).

// Sts returns the DBR_STS_ type of a plain type.
func (t DBRType) Sts() DBRType { return t.Base() + 7 }

// Time returns the DBR_TIME_ type of a plain type.
func (t DBRType) Time() DBRType { return t.Base() + 14 }

// Gr returns the DBR_GR_ type of a plain type.
func (t DBRType) Gr() DBRType { return t.Base() + 21 }

// Ctrl returns the DBR_CTRL_ type of a plain type.
func (t DBRType) Ctrl() DBRType { return t.Base() + 28 }

// Readable reports whether t may be requested in a read or a subscription
// (every type but the write-only PUT_ACKT and PUT_ACKS).
func (t DBRType) Readable() bool { return t.Valid() && t.Family() != FamilyPutAck }

// ParseDBRType accepts a DBR type by name ("DBR_TIME_DOUBLE", "TIME_DOUBLE",
// case-insensitive) or by number ("20").
func ParseDBRType(s string) (DBRType, error) {
	for i := range dbrTable {
		n := dbrTable[i].name
		if equalFold(s, n) || equalFold(s, n[len("DBR_"):]) {
			return DBRType(i), nil
		}
	}
	if equalFold(s, "DBR_INT") || equalFold(s, "INT") {
		return DBRInt, nil
	}
	v := 0
	if s == "" || len(s) > 3 {
		return 0, fmt.Errorf("unknown DBR type %q", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("unknown DBR type %q", s)
		}
		v = v*10 + int(c-'0')
	}
	if v > int(MaxDBRType) {
		return 0, fmt.Errorf("DBR type %d out of range 0..%d", v, MaxDBRType)
	}
	return DBRType(v), nil
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// EpochOffset is the POSIX time of the EPICS epoch, 1990-01-01 00:00:00 UTC.
const EpochOffset = 631152000

// Timestamp is an EPICS time stamp: seconds and nanoseconds since the EPICS epoch.
type Timestamp struct {
	Sec  uint32
	Nsec uint32
}

// TimestampOf converts a Go time to an EPICS time stamp. Times before the EPICS
// epoch give the zero time stamp.
func TimestampOf(t time.Time) Timestamp {
	s := t.Unix() - EpochOffset
	if s < 0 {
		return Timestamp{}
	}
	return Timestamp{Sec: uint32(s), Nsec: uint32(t.Nanosecond())}
}

// Time converts the time stamp to a Go time in UTC. The zero time stamp gives the
// EPICS epoch itself.
func (ts Timestamp) Time() time.Time {
	return time.Unix(int64(ts.Sec)+EpochOffset, int64(ts.Nsec%1e9)).UTC()
}

// IsZero reports whether the time stamp is zero (a record that was never processed).
func (ts Timestamp) IsZero() bool { return ts.Sec == 0 && ts.Nsec == 0 }

// Limits holds the display, alarm, warning and control limits of a numeric PV, in
// the order the DBR_GR_ and DBR_CTRL_ layouts put them.
type Limits struct {
	UpperDisp    float64
	LowerDisp    float64
	UpperAlarm   float64
	UpperWarning float64
	LowerWarning float64
	LowerAlarm   float64
	UpperCtrl    float64
	LowerCtrl    float64
}

// Metadata is the property part of the DBR_GR_ and DBR_CTRL_ families, plus the
// record type name that DBR_CLASS_NAME reports.
type Metadata struct {
	Units       string
	Precision   int16
	Limits      Limits
	EnumStrings []string // at most 16 entries of at most 25 characters each
	ClassName   string
}

// Value is an array of elements of one of the seven CA value types. Only the
// slice that matches Type is meaningful; a Value with Type DBRDouble keeps its
// elements in Doubles, and so on.
type Value struct {
	Type    DBRType // a plain type, DBRString to DBRDouble
	Strings []string
	Shorts  []int16
	Floats  []float32
	Enums   []uint16
	Chars   []uint8
	Longs   []int32
	Doubles []float64
}

// Len returns the number of elements.
func (v *Value) Len() int {
	switch v.Type {
	case DBRString:
		return len(v.Strings)
	case DBRShort:
		return len(v.Shorts)
	case DBRFloat:
		return len(v.Floats)
	case DBREnum:
		return len(v.Enums)
	case DBRChar:
		return len(v.Chars)
	case DBRLong:
		return len(v.Longs)
	case DBRDouble:
		return len(v.Doubles)
	}
	return 0
}

// reset empties every slice, keeping capacity, and sets the type.
func (v *Value) reset(t DBRType) {
	v.Type = t
	v.Strings = v.Strings[:0]
	v.Shorts = v.Shorts[:0]
	v.Floats = v.Floats[:0]
	v.Enums = v.Enums[:0]
	v.Chars = v.Chars[:0]
	v.Longs = v.Longs[:0]
	v.Doubles = v.Doubles[:0]
}

// Clone returns a deep copy of v.
func (v *Value) Clone() Value {
	c := Value{Type: v.Type}
	switch v.Type {
	case DBRString:
		c.Strings = append([]string(nil), v.Strings...)
	case DBRShort:
		c.Shorts = append([]int16(nil), v.Shorts...)
	case DBRFloat:
		c.Floats = append([]float32(nil), v.Floats...)
	case DBREnum:
		c.Enums = append([]uint16(nil), v.Enums...)
	case DBRChar:
		c.Chars = append([]uint8(nil), v.Chars...)
	case DBRLong:
		c.Longs = append([]int32(nil), v.Longs...)
	case DBRDouble:
		c.Doubles = append([]float64(nil), v.Doubles...)
	}
	return c
}

// Truncate shortens v to at most n elements.
func (v *Value) Truncate(n int) {
	if n < 0 || n >= v.Len() {
		return
	}
	switch v.Type {
	case DBRString:
		v.Strings = v.Strings[:n]
	case DBRShort:
		v.Shorts = v.Shorts[:n]
	case DBRFloat:
		v.Floats = v.Floats[:n]
	case DBREnum:
		v.Enums = v.Enums[:n]
	case DBRChar:
		v.Chars = v.Chars[:n]
	case DBRLong:
		v.Longs = v.Longs[:n]
	case DBRDouble:
		v.Doubles = v.Doubles[:n]
	}
}

// DBR is a decoded DBR payload, or the state a server encodes payloads from.
// Which fields are meaningful depends on the type's family: Status, Severity for
// STS and above, Stamp for TIME, Meta for GR and CTRL, AckT and AckS for
// STSACK_STRING. DecodeDBR zeroes the fields the decoded type does not carry.
// A decoded DBR_CLASS_NAME carries the class name as a one-element string
// Value and in Meta.ClassName; encoders take it from Meta.ClassName.
type DBR struct {
	Type     DBRType
	Value    Value
	Status   AlarmStatus
	Severity AlarmSeverity
	Stamp    Timestamp
	AckT     uint16
	AckS     uint16
	Meta     Metadata
}
