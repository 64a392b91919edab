package catools

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pvhub/pvhub/ca/wire"
)

// Block returns caget -d's output for d, read with the type d.Type from a
// channel of native type native: the name, then indented lines with the
// native and requested types, the element count, the value and whatever
// else the requested type carries (time stamp, alarm, units, precision,
// limits, enum states), each ending in a newline:
//
//	T:ao
//	    Native data type: DBF_DOUBLE
//	    Request type:     DBR_TIME_DOUBLE
//	    Element count:    1
//	    Value:            70
//	    Timestamp:        2026-11-21 13:17:14.443767
//	    Status:           HIGH
//	    Severity:         MINOR
//
// A DBR_CLASS_NAME reply prints "Class Name:" instead of the count and value.
// requested is the -# count, as for Plain.
func (f *Format) Block(name string, native wire.DBRType, d *wire.DBR, requested int) string {
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('\n')
	fmt.Fprintf(&b, "    Native data type: %s\n", FieldTypeName(native))
	fmt.Fprintf(&b, "    Request type:     %s\n", d.Type)
	if d.Type == wire.DBRClassName {
		cls := d.Meta.ClassName
		if cls == "" && len(d.Value.Strings) > 0 {
			cls = d.Value.Strings[0]
		}
		fmt.Fprintf(&b, "    Class Name:       %s\n", cls)
		return b.String()
	}
	n := d.Value.Len()
	fmt.Fprintf(&b, "    Element count:    %d\n", n)
	b.WriteString("    Value:            ")
	if text, ok := f.charText(d, requested, n); ok {
		b.Write(text)
	} else {
		var v []byte
		for i := range n {
			if i > 0 {
				v = append(v, f.sep())
			}
			v = f.appendElement(v, d, i)
		}
		b.Write(v)
	}
	b.WriteByte('\n')
	if d.Type > wire.DBRDouble {
		f.writeExtra(&b, d)
	}
	return b.String()
}

// writeExtra writes the lines for the metadata of d's type, as caget -d
// prints them after the value.
func (f *Format) writeExtra(b *strings.Builder, d *wire.DBR) {
	status := func() {
		fmt.Fprintf(b, "    Status:           %s\n", StatusName(d.Status))
		fmt.Fprintf(b, "    Severity:         %s\n", SeverityName(d.Severity))
	}
	base := d.Type.Base()
	switch d.Type.Family() {
	case wire.FamilySts:
		status()
	case wire.FamilyTime:
		fmt.Fprintf(b, "    Timestamp:        %s\n", FormatStamp(d.Stamp, f.Location))
		status()
	case wire.FamilyGr, wire.FamilyCtrl:
		status()
		switch base {
		case wire.DBRString:
			return // the DBR_GR_STRING and DBR_CTRL_STRING layouts carry nothing more
		case wire.DBREnum:
			fmt.Fprintf(b, "    Enums:            (%2d)\n", len(d.Meta.EnumStrings))
			for i, s := range d.Meta.EnumStrings {
				fmt.Fprintf(b, "                      [%2d] %s\n", i, s)
			}
			return
		}
		fmt.Fprintf(b, "    Units:            %s\n", d.Meta.Units)
		float := base == wire.DBRFloat || base == wire.DBRDouble
		if float {
			fmt.Fprintf(b, "    Precision:        %d\n", d.Meta.Precision)
		}
		lim := &d.Meta.Limits
		rows := []limitRow{
			{"Lo disp limit", lim.LowerDisp},
			{"Hi disp limit", lim.UpperDisp},
			{"Lo alarm limit", lim.LowerAlarm},
			{"Lo warn limit", lim.LowerWarning},
			{"Hi warn limit", lim.UpperWarning},
			{"Hi alarm limit", lim.UpperAlarm},
		}
		if d.Type.Family() == wire.FamilyCtrl {
			rows = append(rows, limitRow{"Lo ctrl limit", lim.LowerCtrl}, limitRow{"Hi ctrl limit", lim.UpperCtrl})
		}
		for _, r := range rows {
			fmt.Fprintf(b, "    %-18s%s\n", r.label+":", limitText(base, r.v))
		}
	case wire.FamilyStsAck:
		status()
		ack := "NO"
		if d.AckT != 0 {
			ack = "YES"
		}
		fmt.Fprintf(b, "    Ack transient?:   %s\n", ack)
		fmt.Fprintf(b, "    Ack severity:     %s\n", SeverityName(wire.AlarmSeverity(d.AckS)))
	}
}

// limitRow is one labelled limit of a Block.
type limitRow struct {
	label string
	v     float64
}

// limitText formats a display, alarm or control limit of a value of the plain
// type base: floating-point limits with %g, integer limits right-aligned in 8
// columns, a CHAR limit as a signed byte.
func limitText(base wire.DBRType, v float64) string {
	switch base {
	case wire.DBRFloat:
		return string(appendCFloat(nil, float64(float32(v)), 'g', 6))
	case wire.DBRDouble:
		return string(appendCFloat(nil, v, 'g', 6))
	}
	i := int64(v)
	if base == wire.DBRChar {
		i = int64(int8(i))
	}
	s := strconv.FormatInt(i, 10)
	if len(s) < 8 {
		s = strings.Repeat(" ", 8-len(s)) + s
	}
	return s
}
