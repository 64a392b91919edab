// Package hclogslog adapts an slog.Logger to the hclog.Logger interface that go-plugin logs
// through, so that the host's log receives go-plugin's messages and the lines a plugin writes
// to its stderr.
package hclogslog

import (
	"context"
	"io"
	"log"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// LevelTrace is the slog level hclog's trace level maps to.
const LevelTrace = slog.LevelDebug - 4

// New returns an hclog.Logger writing to l. go-plugin's own Info messages (the root logger's)
// are logged at Debug; the loggers returned by Named, which go-plugin uses for the lines a
// plugin writes to its stderr, keep the level the plugin chose.
func New(l *slog.Logger) hclog.Logger {
	return &logger{l: l, quiet: true}
}

type logger struct {
	l     *slog.Logger
	quiet bool // demote Info to Debug
	name  string
	args  []any
}

var _ hclog.Logger = (*logger)(nil)

func (g *logger) level(lv hclog.Level) slog.Level {
	switch lv {
	case hclog.Trace:
		return LevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		if g.quiet {
			return slog.LevelDebug
		}
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		if g.quiet {
			// go-plugin's own errors are about plugin exits, which the
			// supervisor handles and reports itself.
			return slog.LevelWarn
		}
		return slog.LevelError
	default:
		return slog.LevelError
	}
}

func (g *logger) Log(lv hclog.Level, msg string, args ...any) {
	if lv == hclog.Off {
		return
	}
	level := g.level(lv)
	ctx := context.Background()
	if !g.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]any, 0, len(g.args)+len(args))
	attrs = append(attrs, g.args...)
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == "timestamp" {
			continue // go-plugin's copy of the plugin's clock; slog stamps its own
		}
		attrs = append(attrs, args[i], args[i+1])
	}
	if len(args)%2 == 1 {
		attrs = append(attrs, "EXTRA_VALUE", args[len(args)-1])
	}
	g.l.Log(ctx, level, msg, attrs...)
}

func (g *logger) Trace(msg string, args ...any) { g.Log(hclog.Trace, msg, args...) }
func (g *logger) Debug(msg string, args ...any) { g.Log(hclog.Debug, msg, args...) }
func (g *logger) Info(msg string, args ...any)  { g.Log(hclog.Info, msg, args...) }
func (g *logger) Warn(msg string, args ...any)  { g.Log(hclog.Warn, msg, args...) }
func (g *logger) Error(msg string, args ...any) { g.Log(hclog.Error, msg, args...) }

func (g *logger) enabled(lv hclog.Level) bool {
	return g.l.Enabled(context.Background(), g.level(lv))
}

func (g *logger) IsTrace() bool { return g.enabled(hclog.Trace) }
func (g *logger) IsDebug() bool { return g.enabled(hclog.Debug) }
func (g *logger) IsInfo() bool  { return g.enabled(hclog.Info) }
func (g *logger) IsWarn() bool  { return g.enabled(hclog.Warn) }
func (g *logger) IsError() bool { return g.enabled(hclog.Error) }

func (g *logger) ImpliedArgs() []any { return g.args }

func (g *logger) With(args ...any) hclog.Logger {
	c := *g
	c.args = append(append([]any(nil), g.args...), args...)
	return &c
}

func (g *logger) Name() string { return g.name }

func (g *logger) Named(name string) hclog.Logger {
	c := *g
	c.quiet = false
	if c.name != "" {
		c.name += "." + name
	} else {
		c.name = name
	}
	return &c
}

func (g *logger) ResetNamed(name string) hclog.Logger {
	c := *g
	c.quiet = false
	c.name = name
	return &c
}

func (g *logger) SetLevel(hclog.Level) {}

func (g *logger) GetLevel() hclog.Level {
	for _, lv := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn} {
		if g.enabled(lv) {
			return lv
		}
	}
	return hclog.Error
}

func (g *logger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(g.l.Handler(), g.level(hclog.Info))
}

func (g *logger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return g.StandardLogger(opts).Writer()
}
