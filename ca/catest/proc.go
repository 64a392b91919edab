package catest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Line is one line of a driver's output: a decoded JSON object. A line that
// is not a JSON object is kept as {"event": "raw", "raw": text}.
type Line map[string]any

func parseLine(b []byte) Line {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return Line{"event": "raw", "raw": string(b)}
	}
	return Line(m)
}

// Event returns the line's "event" field.
func (l Line) Event() string { return l.Str("event") }

// Has reports whether the line has the key and its value is not null.
func (l Line) Has(key string) bool { return l[key] != nil }

// Str returns a string field, or "" when the field is absent or not a string.
func (l Line) Str(key string) string {
	s, _ := l[key].(string)
	return s
}

// Float returns a numeric field as a float64. The strings "NaN", "Inf" and
// "-Inf" become the corresponding values; anything else absent or
// non-numeric is NaN.
func (l Line) Float(key string) float64 { return toFloat(l[key]) }

// Int returns a numeric field as an int64 (truncated), or 0 when absent.
func (l Line) Int(key string) int64 {
	f := toFloat(l[key])
	if math.IsNaN(f) {
		return 0
	}
	return int64(f)
}

// Bool returns a boolean field, or false when absent.
func (l Line) Bool(key string) bool {
	b, _ := l[key].(bool)
	return b
}

// Values returns the "value" field as a slice: arrays as they are, a scalar
// as a one-element slice, and nil when absent.
func (l Line) Values() []any {
	switch v := l["value"].(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

// Floats returns the values as float64s (see [Line.Float] for strings).
func (l Line) Floats() []float64 {
	vs := l.Values()
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = toFloat(v)
	}
	return out
}

// Strings returns the values as strings; numbers are formatted with %v.
func (l Line) Strings() []string {
	vs := l.Values()
	out := make([]string, len(vs))
	for i, v := range vs {
		if s, ok := v.(string); ok {
			out[i] = s
		} else {
			out[i] = fmt.Sprint(v)
		}
	}
	return out
}

// Bytes returns the values of a char array as bytes, or the bytes of a
// string value (the C driver escapes bytes >= 0x7f as \u00XX, so every rune
// below 256 maps back to one byte).
func (l Line) Bytes() []byte {
	vs := l.Values()
	if len(vs) == 1 {
		if s, ok := vs[0].(string); ok {
			b := make([]byte, 0, len(s))
			for _, r := range s {
				b = append(b, byte(r))
			}
			return b
		}
	}
	out := make([]byte, len(vs))
	for i, v := range vs {
		out[i] = byte(toFloat(v))
	}
	return out
}

// String returns the line as compact JSON.
func (l Line) String() string {
	b, err := json.Marshal(map[string]any(l))
	if err != nil {
		return fmt.Sprint(map[string]any(l))
	}
	return string(b)
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case bool:
		if x {
			return 1
		}
		return 0
	case string:
		switch x {
		case "Inf":
			return math.Inf(1)
		case "-Inf":
			return math.Inf(-1)
		}
	}
	return math.NaN()
}

// ExitError reports a driver or process that exited with a non-zero status.
type ExitError struct {
	Args   []string // the command line
	Code   int      // exit status, or -1 when a signal ended the process
	Stderr string   // the tail of its standard error
}

// Error describes the failed command.
func (e *ExitError) Error() string {
	return fmt.Sprintf("%s: exit status %d; stderr:\n%s", strings.Join(e.Args, " "), e.Code, e.Stderr)
}

// ExitCode returns the exit status carried by err: 0 for nil, Code for an
// [*ExitError], and -1 for any other error.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}

// stderrTail keeps the last stderrKeep bytes written to it.
const stderrKeep = 64 << 10

type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > stderrKeep {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-stderrKeep:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Proc is a process started by [StartProcess] or a driver's Start. Its
// standard output is parsed into [Line] values, which arrive in order on
// [Proc.Lines] (the queue between the process and the channel is unbounded,
// so a process never stalls on a slow reader) and are also kept for
// [Proc.All]. The process runs in its own process group; [Proc.Stop], which
// runs at test cleanup, kills the whole group and waits for it.
type Proc struct {
	t    testing.TB
	args []string
	cmd  *exec.Cmd
	pid  int

	lines  chan Line
	notify chan struct{} // wakes the pump; capacity 1
	quit   chan struct{} // closed by Stop
	exited chan struct{} // closed once reaped, group killed, output read
	pumped chan struct{} // closed when the pump goroutine returned

	stopOnce sync.Once
	stderr   tailBuffer

	mu       sync.Mutex
	queue    []Line
	all      []Line
	readDone bool
	killed   bool // Stop killed a running process
	waitErr  error
}

// StartProcess starts name with args and the environment env (nil means no
// variables at all) in a new process group, with standard input from
// /dev/null. Cancelling ctx kills the group. The process is stopped at the
// cleanup of t; if t failed, the tail of its standard error is logged then.
func StartProcess(t testing.TB, ctx context.Context, env []string, name string, args ...string) (*Proc, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, name, args...)
	if env == nil {
		env = []string{}
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	outR, outW, err := os.Pipe()
	if err != nil {
		cancel()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		cancel()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout = outW
	cmd.Stderr = errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		cancel()
		outR.Close()
		errR.Close()
		return nil, err
	}
	p := &Proc{
		t:      t,
		args:   append([]string{name}, args...),
		cmd:    cmd,
		pid:    cmd.Process.Pid,
		lines:  make(chan Line),
		notify: make(chan struct{}, 1),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
		pumped: make(chan struct{}),
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go p.readStdout(outR, &readers)
	go func() {
		defer readers.Done()
		_, _ = io.Copy(&p.stderr, errR) // ends at EOF or at the read deadline
	}()
	go p.pump()
	go p.wait(cancel, outR, errR, &readers)
	t.Cleanup(func() {
		_ = p.Stop() // the exit status was the test's business
		if t.Failed() {
			if s := p.Stderr(); s != "" {
				t.Logf("stderr of %s:\n%s", strings.Join(p.args, " "), s)
			}
		}
	})
	return p, nil
}

// readStdout parses lines until end of file (or the read deadline that wait
// sets once the process group is gone).
func (p *Proc) readStdout(r io.Reader, readers *sync.WaitGroup) {
	defer readers.Done()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadBytes('\n')
		if b = bytes.TrimSpace(b); len(b) > 0 {
			l := parseLine(b)
			p.mu.Lock()
			p.queue = append(p.queue, l)
			p.all = append(p.all, l)
			p.mu.Unlock()
			p.wake()
		}
		if err != nil {
			break
		}
	}
	p.mu.Lock()
	p.readDone = true
	p.mu.Unlock()
	p.wake()
}

func (p *Proc) wake() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// pump moves queued lines to the Lines channel; it returns, closing the
// channel, when the output is exhausted or Stop was called.
func (p *Proc) pump() {
	defer close(p.pumped)
	defer close(p.lines)
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			l := p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
			p.mu.Unlock()
			select {
			case p.lines <- l:
			case <-p.quit:
				return
			}
			continue
		}
		done := p.readDone
		p.mu.Unlock()
		if done {
			return
		}
		select {
		case <-p.notify:
		case <-p.quit:
			return
		}
	}
}

// wait reaps the process, kills whatever is left of its group, and collects
// the rest of the output.
func (p *Proc) wait(cancel context.CancelFunc, outR, errR *os.File, readers *sync.WaitGroup) {
	err := p.cmd.Wait()
	_ = syscall.Kill(-p.pid, syscall.SIGKILL) // ESRCH when the group is already empty
	// A process that left the group could hold the pipes open; the deadline
	// bounds the wait for end of file.
	deadline := time.Now().Add(2 * time.Second)
	_ = outR.SetReadDeadline(deadline)
	_ = errR.SetReadDeadline(deadline)
	readers.Wait()
	outR.Close()
	errR.Close()
	cancel()
	p.mu.Lock()
	p.waitErr = err
	p.mu.Unlock()
	close(p.exited)
}

// Pid returns the process ID, which is also its process group ID.
func (p *Proc) Pid() int { return p.pid }

// Lines returns the channel on which the output lines arrive in order. It is
// closed after the last line once the output ends, or when Stop is called.
func (p *Proc) Lines() <-chan Line { return p.lines }

// All returns a copy of every line read so far, whether or not it was
// received from Lines.
func (p *Proc) All() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Line(nil), p.all...)
}

// Stderr returns the tail (up to 64 KiB) of the process's standard error.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Exited returns a channel that is closed once the process has exited and
// its output has been read.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Signal sends sig to the process group (for example SIGSTOP and SIGCONT to
// freeze a client).
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.exited:
		return os.ErrProcessDone
	default:
	}
	return syscall.Kill(-p.pid, sig)
}

// Next returns the next line, waiting at most timeout. It fails when the
// output ended or the time ran out.
func (p *Proc) Next(timeout time.Duration) (Line, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case l, ok := <-p.lines:
		if !ok {
			return nil, fmt.Errorf("%s: output ended; stderr:\n%s", p.args[0], p.Stderr())
		}
		return l, nil
	case <-timer.C:
		return nil, fmt.Errorf("%s: no line within %v", p.args[0], timeout)
	}
}

// WaitFor receives lines until one satisfies match and returns it; lines that
// do not match are consumed (they stay in All). It fails when the output ends
// or timeout passes first.
func (p *Proc) WaitFor(timeout time.Duration, match func(Line) bool) (Line, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("%s: no matching line within %v; lines so far:\n%s\nstderr:\n%s",
				p.args[0], timeout, formatLines(p.All()), p.Stderr())
		}
		l, err := p.Next(left)
		if err != nil {
			return nil, fmt.Errorf("%w; lines so far:\n%s", err, formatLines(p.All()))
		}
		if match(l) {
			return l, nil
		}
	}
}

// WaitForStderr waits at most timeout until the process's standard error
// contains substr (for example a server's "ready" message).
func (p *Proc) WaitForStderr(timeout time.Duration, substr string) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Stderr(), substr) {
		select {
		case <-p.exited:
			if strings.Contains(p.Stderr(), substr) {
				return nil
			}
			return fmt.Errorf("%s exited before printing %q; stderr:\n%s", p.args[0], substr, p.Stderr())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %q not on stderr within %v; stderr:\n%s", p.args[0], substr, timeout, p.Stderr())
		}
	}
	return nil
}

// Wait waits at most timeout for the process to exit and returns nil for
// exit status 0, an [*ExitError] otherwise.
func (p *Proc) Wait(timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return p.exitErr()
	case <-timer.C:
		return fmt.Errorf("%s: still running after %v", p.args[0], timeout)
	}
}

// Stop kills the process group unless the process has already exited, waits
// for it, and stops the Lines channel. It returns the exit error of a process
// that ended by itself and nil for one that Stop killed. It is safe to call
// more than once and from several goroutines.
func (p *Proc) Stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
		default:
			p.mu.Lock()
			p.killed = true
			p.mu.Unlock()
			_ = syscall.Kill(-p.pid, syscall.SIGKILL) // ESRCH when it just exited
		}
		close(p.quit)
	})
	<-p.exited
	<-p.pumped
	p.mu.Lock()
	killed := p.killed
	p.mu.Unlock()
	if killed {
		return nil
	}
	return p.exitErr()
}

func (p *Proc) exitErr() error {
	p.mu.Lock()
	err := p.waitErr
	p.mu.Unlock()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &ExitError{Args: p.args, Code: ee.ExitCode(), Stderr: p.Stderr()}
	}
	return err
}

// run starts a process, waits for it to exit (bounded by ctx, or by two
// minutes when ctx has no deadline) and returns all its lines.
func run(t testing.TB, ctx context.Context, env []string, name string, args ...string) ([]Line, error) {
	t.Helper()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	p, err := StartProcess(t, ctx, env, name, args...)
	if err != nil {
		return nil, err
	}
	<-p.exited
	_ = p.Stop() // exitErr below reports the status
	lines := p.All()
	if err := ctx.Err(); err != nil {
		return lines, fmt.Errorf("%s: %w", strings.Join(p.args, " "), err)
	}
	return lines, p.exitErr()
}

func formatLines(lines []Line) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Find returns the lines whose event is event and, when pv is not empty,
// whose "pv" field is pv.
func Find(lines []Line, event, pv string) []Line {
	var out []Line
	for _, l := range lines {
		if l.Event() == event && (pv == "" || l.Str("pv") == pv) {
			out = append(out, l)
		}
	}
	return out
}
