package catools

import (
	"flag"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// formatHelp describes the value-format options get and monitor share.
const formatHelp = `  -n         print ENUM values as numbers, not state strings
  -S         print CHAR arrays as text (a "long string")
  -e N, -f N, -g N
             print FLOAT and DOUBLE values with C's %e, %f or %g conversion
             and N digits (default: %g with 6 significant digits)
  -s         read FLOAT and DOUBLE values as text formatted by the server,
             which honours the PV's precision (PREC)
  -l x|o|b   round FLOAT and DOUBLE values to integers, printed in hex,
             octal or binary
  -0 x|o|b   print SHORT and LONG values in hex, octal or binary
  -F C       separate the fields of a line with the character C, not a blank
`

// waitHelp describes -w.
const waitHelp = `  -w SEC     wait at most SEC seconds for the PVs to connect and for each
             operation (default 1.0, or $EPICS_CLI_TIMEOUT; 0: no limit)
`

// GetUsage is the help text of pvhub get.
const GetUsage = `Usage: pvhub get [options] PV...

Read each PV once and print its value, as caget does.

Options:
` + waitHelp + `  -c         read arrays at their current length rather than their capacity
  -t         terse: print only the values
  -a         wide: print name, time stamp, value, alarm status and severity
  -d TYPE    read as the DBR type TYPE (DBR_CTRL_DOUBLE, CTRL_DOUBLE or 34)
             and print everything it carries
  -# COUNT   read at most COUNT elements of arrays (0: all)
` + formatHelp + `  -h         print this help

-t, -a and -d exclude each other. Options may be grouped (-nS) and may
follow the PV names; "--" ends them.
`

// PutUsage is the help text of pvhub put.
const PutUsage = `Usage: pvhub put [options] PV VALUE...
       pvhub put -a [options] PV COUNT VALUE...

Write VALUE to PV and print the value before and after, as caput does.
VALUE is converted to the PV's native type: an ENUM takes a state string or
an index, numbers take decimal or 0x-prefixed hexadecimal text. Several
VALUEs are the elements of an array PV; for a scalar PV they are joined by
blanks. Backslash escapes (\n, \t, \", \xNN) are honoured in text.

Options:
` + waitHelp + `  -c         wait until the server has completed the write (put callback)
  -t         terse: print only the new value
  -l         long: print the values in the wide format of get -a
  -a         write an array; the first VALUE is the number of values
  -S         write the text of the VALUEs to a CHAR array (a "long string")
  -n         take VALUEs for an ENUM as indexes only
  -s         take VALUEs for an ENUM as state strings only
  -F C       separate the fields of a line with the character C, not a blank
  -h         print this help

Options end at the PV name, so VALUEs may start with '-'.
`

// MonitorUsage is the help text of pvhub monitor.
const MonitorUsage = `Usage: pvhub monitor [options] PV...

Subscribe to each PV and print every update until interrupted, as camonitor
does.

Options:
` + waitHelp + `  -m MASK    the events to subscribe to: any of v (value), a (alarm),
             l (log/archive) and p (property); default va
  -# COUNT   subscribe to at most COUNT elements of arrays (0: the current
             length with every update)
` + formatHelp + `  -h         print this help

Options may be grouped (-nS) and may follow the PV names; "--" ends them.
`

// InfoUsage is the help text of pvhub info.
const InfoUsage = `Usage: pvhub info [options] PV...

Connect to each PV and print what the server reports about the channel, as
cainfo does.

Options:
` + waitHelp + `  -h         print this help
`

// GetMode is the output format of pvhub get.
type GetMode uint8

// The formats of pvhub get.
const (
	GetPlain GetMode = iota // "NAME value", caget's default
	GetTerse                // the value only, caget -t
	GetWide                 // name, time stamp, value, alarm, caget -a
	GetDBR                  // a block with everything the type carries, caget -d
)

// GetOptions are the parsed options of pvhub get.
type GetOptions struct {
	Format        Format
	Mode          GetMode
	Type          wire.DBRType  // the type of -d, when Mode is GetDBR
	Count         int           // -#: the element count to read, 0 for all
	Current       bool          // -c: read arrays at their current length
	FloatAsString bool          // -s: read FLOAT and DOUBLE as server-formatted text
	Timeout       time.Duration // -w; 0 means no limit
	PVs           []string
	Warnings      []string // problems that did not stop the parse, for stderr
}

// ParseGet parses the arguments of pvhub get (those after "get"). It returns
// flag.ErrHelp for -h and a *UsageError for a command line it cannot parse.
func ParseGet(args []string, env LookupEnv) (*GetOptions, error) {
	o := &GetOptions{}
	o.Timeout, o.Warnings = defaultTimeout(env)
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.Var(secondsValue{&o.Timeout}, "w", "")
	fs.BoolVar(&o.Current, "c", false, "")
	terse := fs.Bool("t", false, "")
	wide := fs.Bool("a", false, "")
	var typed bool
	fs.Var(dbrValue{&o.Type, &typed}, "d", "")
	fs.Var(countValue{&o.Count}, "#", "")
	fs.BoolVar(&o.FloatAsString, "s", false, "")
	addFormatFlags(fs, &o.Format)
	pvs, err := getopt{bools: "ctanSs", args: "wd#efg0lF", permute: true}.parse(fs, args)
	if err != nil {
		return nil, err
	}
	modes := 0
	for _, set := range []bool{*terse, *wide, typed} {
		if set {
			modes++
		}
	}
	switch {
	case modes > 1:
		return nil, usagef("options -t, -a and -d exclude each other")
	case *terse:
		o.Mode = GetTerse
	case *wide:
		o.Mode = GetWide
	case typed:
		o.Mode = GetDBR
	}
	if len(pvs) == 0 {
		return nil, usagef("no PV name given")
	}
	o.PVs = pvs
	return o, nil
}

// RequestType returns the DBR type get reads from a channel of native type
// native: the -d type, or else the DBR_TIME_ type of the native type, with
// ENUM read as DBR_TIME_STRING (DBR_TIME_SHORT with -n) and FLOAT and DOUBLE
// as DBR_TIME_STRING with -s, as caget does.
func (o *GetOptions) RequestType(native wire.DBRType) wire.DBRType {
	if o.Mode == GetDBR {
		return o.Type
	}
	return valueRequestType(native, o.Format.EnumAsNumber, o.FloatAsString)
}

// RequestCount returns the element count get asks for from a channel of
// count elements: -# capped at count, or count itself. With -c it is -#
// capped at count, 0 (the current length) when -# is not given.
func (o *GetOptions) RequestCount(count int) int {
	if o.Current {
		return min(o.Count, count)
	}
	if o.Count > 0 && o.Count < count {
		return o.Count
	}
	return count
}

// Line returns the output of get for one PV read as d from a channel of
// native type native, in the format the options select.
func (o *GetOptions) Line(name string, native wire.DBRType, d *wire.DBR) string {
	switch o.Mode {
	case GetTerse:
		return o.Format.Terse(d, o.Count)
	case GetWide:
		return o.Format.Wide(name, d, o.Count)
	case GetDBR:
		return o.Format.Block(name, native, d, o.Count)
	}
	return o.Format.Plain(name, d, o.Count)
}

// PutMode is the output format of pvhub put.
type PutMode uint8

// The formats of pvhub put.
const (
	PutPlain PutMode = iota // "Old : NAME value" and "New : NAME value"
	PutTerse                // the new value only, caput -t
	PutWide                 // Old and New lines in the wide format, caput -l
)

// PutOptions are the parsed options of pvhub put.
type PutOptions struct {
	Format  Format // only Separator, EnumAsNumber and CharAsString are set
	Mode    PutMode
	Wait    bool          // -c: wait for the write to complete (put callback)
	Array   bool          // -a: Values[0] is the number of values
	Text    PutText       // how to read the values: -n, -s
	Timeout time.Duration // -w; 0 means no limit
	PV      string
	Values  []string
	// Warnings are problems that did not stop the parse, for stderr.
	Warnings []string
}

// PutText says how put reads values for an ENUM PV.
type PutText uint8

// The ways of reading ENUM values.
const (
	EnumAuto   PutText = iota // a state string, else an index
	EnumIndex                 // an index only (-n)
	EnumString                // a state string only (-s)
)

// ParsePut parses the arguments of pvhub put (those after "put"). Options end
// at the PV name. It returns flag.ErrHelp for -h and a *UsageError for a
// command line it cannot parse.
func ParsePut(args []string, env LookupEnv) (*PutOptions, error) {
	o := &PutOptions{}
	o.Timeout, o.Warnings = defaultTimeout(env)
	fs := flag.NewFlagSet("put", flag.ContinueOnError)
	fs.Var(secondsValue{&o.Timeout}, "w", "")
	fs.BoolVar(&o.Wait, "c", false, "")
	terse := fs.Bool("t", false, "")
	long := fs.Bool("l", false, "")
	fs.BoolVar(&o.Array, "a", false, "")
	fs.BoolVar(&o.Format.CharAsString, "S", false, "")
	index := fs.Bool("n", false, "")
	text := fs.Bool("s", false, "")
	fs.Var(sepValue{&o.Format.Separator}, "F", "")
	rest, err := getopt{bools: "ctlaSns", args: "wF"}.parse(fs, args)
	if err != nil {
		return nil, err
	}
	switch {
	case *terse && *long:
		return nil, usagef("options -t and -l exclude each other")
	case o.Array && o.Format.CharAsString:
		return nil, usagef("options -a and -S exclude each other")
	case *index && *text:
		return nil, usagef("options -n and -s exclude each other")
	}
	switch {
	case *terse:
		o.Mode = PutTerse
	case *long:
		o.Mode = PutWide
	}
	switch {
	case *index:
		o.Text = EnumIndex
		o.Format.EnumAsNumber = true
	case *text:
		o.Text = EnumString
	}
	switch {
	case len(rest) == 0:
		return nil, usagef("no PV name given")
	case len(rest) == 1:
		return nil, usagef("no value given for %s", rest[0])
	case o.Array && len(rest) == 2:
		return nil, usagef("-a: no values after the count")
	}
	o.PV, o.Values = rest[0], rest[1:]
	return o, nil
}

// RequestType returns the DBR type in which put reads the old and new values
// of a channel of native type native: its DBR_TIME_ type, ENUM as
// DBR_TIME_STRING (DBR_TIME_SHORT with -n).
func (o *PutOptions) RequestType(native wire.DBRType) wire.DBRType {
	return valueRequestType(native, o.Format.EnumAsNumber, false)
}

// Line returns put's line for the value d read from the PV before the write
// (old) or after it. Terse output prints only the new value; the old one
// gives "".
func (o *PutOptions) Line(d *wire.DBR, old bool) string {
	prefix := "New : "
	if old {
		prefix = "Old : "
	}
	switch o.Mode {
	case PutTerse:
		if old {
			return ""
		}
		return o.Format.Terse(d, 0)
	case PutWide:
		return prefix + o.Format.Wide(o.PV, d, 0)
	}
	return prefix + o.Format.Plain(o.PV, d, 0)
}

// MonitorOptions are the parsed options of pvhub monitor.
type MonitorOptions struct {
	Format        Format
	Mask          uint16        // -m: the DBE_ event mask
	Count         int           // -#: the element count, 0 for the current length
	FloatAsString bool          // -s
	Timeout       time.Duration // -w: how long to wait before reporting a PV as not found
	PVs           []string
	Warnings      []string // problems that did not stop the parse, for stderr
}

// ParseMonitor parses the arguments of pvhub monitor (those after "monitor").
// It returns flag.ErrHelp for -h and a *UsageError for a command line it
// cannot parse.
func ParseMonitor(args []string, env LookupEnv) (*MonitorOptions, error) {
	o := &MonitorOptions{Mask: wire.DBEValue | wire.DBEAlarm}
	o.Timeout, o.Warnings = defaultTimeout(env)
	fs := flag.NewFlagSet("monitor", flag.ContinueOnError)
	fs.Var(secondsValue{&o.Timeout}, "w", "")
	fs.Var(maskValue{&o.Mask}, "m", "")
	fs.Var(countValue{&o.Count}, "#", "")
	fs.BoolVar(&o.FloatAsString, "s", false, "")
	addFormatFlags(fs, &o.Format)
	pvs, err := getopt{bools: "nSs", args: "wm#efg0lF", permute: true}.parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pvs) == 0 {
		return nil, usagef("no PV name given")
	}
	o.PVs = pvs
	return o, nil
}

// RequestType returns the DBR type monitor subscribes with for a channel of
// native type native, chosen as for get.
func (o *MonitorOptions) RequestType(native wire.DBRType) wire.DBRType {
	return valueRequestType(native, o.Format.EnumAsNumber, o.FloatAsString)
}

// RequestCount returns the element count monitor subscribes with for a
// channel of count elements: -# capped at count, or 0 (the current length
// with every update).
func (o *MonitorOptions) RequestCount(count int) int { return min(o.Count, count) }

// Line returns monitor's line for an update d.
func (o *MonitorOptions) Line(name string, d *wire.DBR) string {
	return o.Format.Wide(name, d, o.Count)
}

// InfoOptions are the parsed options of pvhub info.
type InfoOptions struct {
	Timeout  time.Duration // -w; 0 means no limit
	PVs      []string
	Warnings []string // problems that did not stop the parse, for stderr
}

// ParseInfo parses the arguments of pvhub info (those after "info"). It
// returns flag.ErrHelp for -h and a *UsageError for a command line it cannot
// parse.
func ParseInfo(args []string, env LookupEnv) (*InfoOptions, error) {
	o := &InfoOptions{}
	o.Timeout, o.Warnings = defaultTimeout(env)
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	fs.Var(secondsValue{&o.Timeout}, "w", "")
	pvs, err := getopt{args: "w", permute: true}.parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pvs) == 0 {
		return nil, usagef("no PV name given")
	}
	o.PVs = pvs
	return o, nil
}
