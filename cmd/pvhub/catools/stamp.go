package catools

import (
	"strconv"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// Undefined is what the tools print for the zero time stamp, the stamp of a
// record that was never processed.
const Undefined = "<undefined>"

// stampLayout is the part of the time stamp format that time.Format writes;
// the microseconds are appended separately because the EPICS tools round them.
const stampLayout = "2006-01-02 15:04:05"

// FormatStamp returns ts as camonitor and caget -a print it: the date and time
// in loc (time.Local when loc is nil) as "2006-01-02 15:04:05.000000", or
// Undefined for the zero time stamp. The microseconds are rounded to nearest
// but never carried into the seconds: 999999.5 µs and above print as 999999.
func FormatStamp(ts wire.Timestamp, loc *time.Location) string {
	if ts.IsZero() {
		return Undefined
	}
	return string(appendStamp(nil, time.Unix(int64(ts.Sec)+wire.EpochOffset, 0), ts.Nsec, loc))
}

// FormatTime returns t in the format of FormatStamp. The tools use it for the
// client's own clock, as in camonitor's "*** disconnected" lines.
func FormatTime(t time.Time, loc *time.Location) string {
	return string(appendStamp(nil, t.Truncate(time.Second), uint32(t.Nanosecond()), loc))
}

// appendStamp appends the whole second sec (in loc) and the rounded
// microseconds of nsec.
func appendStamp(b []byte, sec time.Time, nsec uint32, loc *time.Location) []byte {
	if loc == nil {
		loc = time.Local
	}
	b = sec.In(loc).AppendFormat(b, stampLayout)
	us := (min(uint64(nsec)+500, 999_999_999)) / 1000
	b = append(b, '.')
	s := strconv.FormatUint(us, 10)
	for i := len(s); i < 6; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
