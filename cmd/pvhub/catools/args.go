package catools

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pvhub/pvhub/ca/wire"
)

// Exit statuses of the tools.
const (
	ExitOK      = 0 // everything worked
	ExitFailure = 1 // a PV was not found, an operation failed, a value did not convert
	ExitUsage   = 2 // the command line could not be parsed
)

// DefaultTimeout is the wait time when neither -w nor EPICS_CLI_TIMEOUT sets
// one, as in the EPICS tools.
const DefaultTimeout = time.Second

// LookupEnv reads an environment variable; os.LookupEnv is one. The tools
// take their environment through it so that tests can supply their own.
type LookupEnv func(key string) (string, bool)

// UsageError reports a command line that the tool cannot parse. The tools
// print it with the tool's usage text and exit with ExitUsage.
type UsageError struct {
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// ReportUsage prints the outcome of a failed option parse and returns the exit
// status: for flag.ErrHelp (-h) the usage text on stdout and ExitOK, for any
// other error "cmd: error" and the usage text on stderr and ExitUsage.
func ReportUsage(err error, cmd, usage string, stdout, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: %v\n\n%s", cmd, err, usage)
	return ExitUsage
}

// getopt describes a tool's single-letter options in the manner of C's getopt:
// bools are the letters that take no argument, args those that do.
type getopt struct {
	bools, args string
	// permute lets options follow the operands, as GNU getopt does for
	// caget, camonitor and cainfo. Without it the first operand ends the
	// options, as for caput, whose values may start with '-'.
	permute bool
}

// split rewrites args from getopt syntax (clusters such as -at, arguments
// attached as in -f3 or -w0.5, options after operands) into the one-option-
// per-word form flag.FlagSet parses, and separates the operands. "--" ends
// the options; "-" alone is an operand. -h, -help and --help give
// flag.ErrHelp.
func (g getopt) split(args []string) (flags, operands []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flags, append(operands, args[i+1:]...), nil
		case a == "--help" || a == "-help":
			return nil, nil, flag.ErrHelp
		case len(a) < 2 || a[0] != '-':
			operands = append(operands, a)
			if !g.permute {
				return flags, append(operands, args[i+1:]...), nil
			}
			continue
		case strings.HasPrefix(a, "--"):
			return nil, nil, usagef("unknown option %s", a)
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch {
			case c == 'h':
				return nil, nil, flag.ErrHelp
			case strings.IndexByte(g.bools, c) >= 0:
				flags = append(flags, "-"+string(c))
			case strings.IndexByte(g.args, c) >= 0:
				var v string
				switch {
				case j+1 < len(a):
					v = a[j+1:]
				case i+1 < len(args):
					i++
					v = args[i]
				default:
					return nil, nil, usagef("option -%c needs an argument", c)
				}
				// "-x=v" keeps flag from reading v as another option.
				flags = append(flags, "-"+string(c)+"="+v)
				j = len(a)
			default:
				return nil, nil, usagef("unknown option -%c", c)
			}
		}
	}
	return flags, operands, nil
}

// parse splits args with g and parses the options into fs.
func (g getopt) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	flags, operands, err := g.split(args)
	if err != nil {
		return nil, err
	}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(flags); err != nil {
		msg := strings.Replace(err.Error(), " for flag ", " for option ", 1)
		return nil, &UsageError{Msg: msg}
	}
	return operands, nil
}

// secondsValue is a flag.Value for a wait time in seconds (-w). Zero means
// no limit.
type secondsValue struct{ d *time.Duration }

func (v secondsValue) String() string {
	if v.d == nil {
		return ""
	}
	return Seconds(*v.d)
}

func (v secondsValue) Set(s string) error {
	d, err := parseSeconds(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

// parseSeconds reads a non-negative number of seconds.
func parseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || math.IsNaN(f) || f > math.MaxInt64/float64(time.Second) {
		return 0, errors.New("not a number of seconds")
	}
	return time.Duration(f * float64(time.Second)), nil
}

// Seconds formats a wait time as the tools print it in messages: "1.0",
// "0.25", "30.0".
func Seconds(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// defaultTimeout returns the wait time from EPICS_CLI_TIMEOUT, or
// DefaultTimeout with a warning when it is set but not a number of seconds.
func defaultTimeout(env LookupEnv) (time.Duration, []string) {
	if env == nil {
		return DefaultTimeout, nil
	}
	s, ok := env("EPICS_CLI_TIMEOUT")
	if !ok || s == "" {
		return DefaultTimeout, nil
	}
	d, err := parseSeconds(s)
	if err != nil {
		return DefaultTimeout, []string{fmt.Sprintf("EPICS_CLI_TIMEOUT=%q is not a number of seconds; using %s s", s, Seconds(DefaultTimeout))}
	}
	return d, nil
}

// countValue is a flag.Value for an element count (-#); 0 means all.
type countValue struct{ n *int }

func (v countValue) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.Itoa(*v.n)
}

func (v countValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("not an element count")
	}
	*v.n = n
	return nil
}

// floatValue is the flag.Value of -e, -f and -g, which all set the float
// conversion of a Format.
type floatValue struct {
	f    *Format
	verb byte
}

func (v floatValue) String() string { return "" }

func (v floatValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > MaxFloatDigits {
		return fmt.Errorf("not a number of digits from 0 to %d", MaxFloatDigits)
	}
	v.f.FloatVerb, v.f.FloatPrec = v.verb, n
	return nil
}

// baseValue is the flag.Value of -0 and -l: x, o or b.
type baseValue struct{ b *IntBase }

func (v baseValue) String() string { return "" }

func (v baseValue) Set(s string) error {
	switch s {
	case "x":
		*v.b = Hex
	case "o":
		*v.b = Octal
	case "b":
		*v.b = Binary
	default:
		return errors.New("not x, o or b")
	}
	return nil
}

// sepValue is the flag.Value of -F, the field separator: one character.
type sepValue struct{ b *byte }

func (v sepValue) String() string { return "" }

func (v sepValue) Set(s string) error {
	if len(s) != 1 {
		return errors.New("not a single character")
	}
	*v.b = s[0]
	return nil
}

// dbrValue is the flag.Value of get's -d: a readable DBR type by name or
// number.
type dbrValue struct {
	t   *wire.DBRType
	set *bool
}

func (v dbrValue) String() string { return "" }

func (v dbrValue) Set(s string) error {
	t, err := wire.ParseDBRType(s)
	if err != nil {
		return err
	}
	if !t.Readable() {
		return fmt.Errorf("%s cannot be read", t)
	}
	*v.t, *v.set = t, true
	return nil
}

// maskValue is the flag.Value of monitor's -m: any of v (value), a (alarm),
// l (log/archive) and p (property).
type maskValue struct{ m *uint16 }

func (v maskValue) String() string { return "" }

func (v maskValue) Set(s string) error {
	var m uint16
	for _, c := range s {
		switch c {
		case 'v':
			m |= wire.DBEValue
		case 'a':
			m |= wire.DBEAlarm
		case 'l':
			m |= wire.DBELog
		case 'p':
			m |= wire.DBEProperty
		default:
			return errors.New("not a combination of v, a, l and p")
		}
	}
	if m == 0 {
		return errors.New("empty event mask")
	}
	*v.m = m
	return nil
}

// addFormatFlags defines the value-format options shared by get and monitor.
func addFormatFlags(fs *flag.FlagSet, f *Format) {
	fs.BoolVar(&f.EnumAsNumber, "n", false, "")
	fs.BoolVar(&f.CharAsString, "S", false, "")
	for _, verb := range []byte("efg") {
		fs.Var(floatValue{f, verb}, string(verb), "")
	}
	fs.Var(baseValue{&f.IntBase}, "0", "")
	fs.Var(baseValue{&f.FloatBase}, "l", "")
	fs.Var(sepValue{&f.Separator}, "F", "")
}

// valueRequestType returns the DBR_TIME_ type in which the tools read a
// channel of native type native: ENUM as DBR_TIME_STRING (the state string)
// or, with enumAsNumber, DBR_TIME_SHORT; FLOAT and DOUBLE as DBR_TIME_STRING
// when floatAsString asks for the server's formatting (-s).
func valueRequestType(native wire.DBRType, enumAsNumber, floatAsString bool) wire.DBRType {
	switch native.Base() {
	case wire.DBREnum:
		if enumAsNumber {
			return wire.DBRTimeShort
		}
		return wire.DBRTimeString
	case wire.DBRFloat, wire.DBRDouble:
		if floatAsString {
			return wire.DBRTimeString
		}
	}
	return native.Time()
}
