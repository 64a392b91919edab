package mqtt

// Helpers that run Debian's mosquitto broker and its command-line clients as real peers, on
// free loopback ports, with configurations written by the test.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pvhub/pvhub/ca/catest"
)

const mosquittoHint = "install Debian's mosquitto and mosquitto-clients (make test-deps as root)"

// requireMosquitto returns the paths of mosquitto, mosquitto_sub and mosquitto_pub, or
// skips the test (fails it under CI=true) when one is missing.
func requireMosquitto(t *testing.T) (broker, sub, pub string) {
	t.Helper()
	find := func(name string, dirs ...string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, d := range dirs {
			if p := filepath.Join(d, name); fileExists(p) {
				return p
			}
		}
		return ""
	}
	broker = find("mosquitto", "/usr/sbin")
	sub = find("mosquitto_sub")
	pub = find("mosquitto_pub")
	catest.Require(t, "mosquitto", broker != "", mosquittoHint)
	catest.Require(t, "mosquitto_sub and mosquitto_pub", sub != "" && pub != "", mosquittoHint)
	return broker, sub, pub
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// mosquitto is a broker process on a loopback port of its own.
type mosquitto struct {
	t     *testing.T
	bin   string
	port  int
	conf  string
	proc  *catest.Proc
	extra string // further configuration lines (TLS)
}

// startMosquitto starts a broker on port (0: a free one) with persistence off and
// anonymous clients allowed; it is stopped at the test's cleanup.
func startMosquitto(t *testing.T, bin string, port int, extra string) *mosquitto {
	t.Helper()
	if port == 0 {
		port = catest.FreePort(t)
	}
	m := &mosquitto{t: t, bin: bin, port: port, extra: extra, conf: filepath.Join(t.TempDir(), "mosquitto.conf")}
	// Started as root, mosquitto drops to the user "mosquitto", which could not read the
	// test's files: it stays the user running the test (the option is ignored otherwise).
	self := "root"
	if u, err := user.Current(); err == nil {
		self = u.Username
	}
	conf := fmt.Sprintf("user %s\nlistener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type all\n%s",
		self, port, extra)
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	return m
}

func (m *mosquitto) addr() string { return "127.0.0.1:" + strconv.Itoa(m.port) }

// start runs the broker and waits until it accepts connections.
func (m *mosquitto) start() {
	m.t.Helper()
	p, err := catest.StartProcess(m.t, context.Background(), os.Environ(), m.bin, "-c", m.conf)
	if err != nil {
		m.t.Fatalf("starting mosquitto: %v", err)
	}
	m.proc = p
	deadline := time.Now().Add(waitTimeout)
	for {
		c, err := net.DialTimeout("tcp", m.addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-p.Exited():
			m.t.Fatalf("mosquitto exited at start:\n%s", p.Stderr())
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto does not accept connections on %s:\n%s", m.addr(), p.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the broker with SIGKILL (by its pid), as a crash would, and waits for it.
func (m *mosquitto) kill() {
	m.t.Helper()
	if err := syscall.Kill(m.proc.Pid(), syscall.SIGKILL); err != nil {
		m.t.Fatalf("kill mosquitto: %v", err)
	}
	select {
	case <-m.proc.Exited():
	case <-time.After(waitTimeout):
		m.t.Fatal("mosquitto did not exit after SIGKILL")
	}
}

// subProc is a mosquitto_sub process printing each message as a JSON line (-F %j).
type subProc struct {
	t    *testing.T
	proc *catest.Proc
	mu   sync.Mutex
	seen []subMsg
}

// subMsg is one message mosquitto_sub printed.
type subMsg struct {
	Topic   string `json:"topic"`
	Payload string `json:"payload"`
	Retain  int    `json:"retain"`
}

func (s subMsg) json() map[string]any {
	var v map[string]any
	if json.Unmarshal([]byte(s.Payload), &v) != nil {
		return nil
	}
	return v
}

// startSub runs mosquitto_sub on the broker at addr for topics, with further arguments.
func startSub(t *testing.T, bin, addr string, topics []string, args ...string) *subProc {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	a := []string{"-h", host, "-p", port, "-F", "%j", "-i", fmt.Sprintf("sub-%d", time.Now().UnixNano())}
	for _, tp := range topics {
		a = append(a, "-t", tp)
	}
	p, err := catest.StartProcess(t, context.Background(), os.Environ(), bin, append(a, args...)...)
	if err != nil {
		t.Fatalf("starting mosquitto_sub: %v", err)
	}
	return &subProc{t: t, proc: p}
}

// next returns the first message that match accepts, consuming the lines before it.
func (s *subProc) next(what string, match func(subMsg) bool) subMsg {
	s.t.Helper()
	var last []string
	for {
		l, err := s.proc.Next(waitTimeout)
		if err != nil {
			s.t.Fatalf("mosquitto_sub waiting for %s: %v (last lines: %s)\nstderr: %s", what, err, strings.Join(last, "; "), s.proc.Stderr())
		}
		b, _ := json.Marshal(l)
		var m subMsg
		if err := json.Unmarshal(b, &m); err != nil || m.Topic == "" {
			last = append(last, string(b))
			continue
		}
		if match(m) {
			return m
		}
		if last = append(last, fmt.Sprintf("%s %s", m.Topic, m.Payload)); len(last) > 8 {
			last = last[1:]
		}
	}
}

// subState matches a message of topic whose JSON payload has every key of want with that
// value (compared as printed).
func subState(topic string, want map[string]any) func(subMsg) bool {
	return func(m subMsg) bool {
		if m.Topic != topic {
			return false
		}
		v := m.json()
		if v == nil {
			return false
		}
		for k, w := range want {
			if fmt.Sprint(v[k]) != fmt.Sprint(w) {
				return false
			}
		}
		return true
	}
}

// pubOnce runs mosquitto_pub once and checks its exit status.
func pubOnce(t *testing.T, bin, addr, topic, payload string, args ...string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port, "-t", topic, "-m", payload}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub -t %s -m %q: %v\n%s", topic, payload, err, out)
	}
}

// proxy forwards TCP connections from a loopback port to a target, and can cut them all, as a
// network failure would.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}

// cut closes every forwarded connection; new ones are still accepted.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}
