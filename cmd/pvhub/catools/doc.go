// Package catools holds the command-line layer of pvhub's Channel Access tools
// (pvhub get, put, monitor and info): their option parsing and their output,
// which follows EPICS base's caget, caput, camonitor and cainfo closely enough
// that scripts and habits written for those tools keep working.
//
// The package does no I/O of its own beyond writing to the io.Writer it is
// given: it formats wire.DBR values as the EPICS tools print them, parses the
// tools' getopt-style options with a flag.FlagSet, and converts the text
// arguments of put into a value of the PV's native type. The subcommands in
// package main connect these pieces to the CA client.
//
// # Output formats
//
// Values print as caget prints them: a scalar as the PV name padded to 30
// columns, a blank and the value; an array as the name, the element count and
// the elements, separated by single blanks. FLOAT and DOUBLE values use C's %g
// (six significant digits) unless -e, -f or -g choose another conversion and
// precision; CHAR elements print as signed decimal numbers, or as text with
// -S; strings are escaped the way EPICS escapes them (\n, \t, \", \xNN).
// Time stamps print in local time (or the Location given) as
// "2006-01-02 15:04:05.000000", and as "<undefined>" for the zero stamp.
// The wide format of caget -a and camonitor appends the alarm status and
// severity, or two blank columns when there is no alarm.
//
// # Exit statuses
//
// The tools exit with ExitOK (0) on success, ExitFailure (1) when a PV is not
// found, a read or write fails, a value does not convert or access is denied,
// and ExitUsage (2) for a command line they cannot parse. The EPICS tools use
// 1 for usage errors too; pvhub follows the Go convention of 2.
package catools
