package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/pvhub/pvhub/ca/catest"
)

// browser starts a headless Chromium (Debian's chromium, no sandbox, a fresh
// profile) that resolves no host name but 127.0.0.1, and returns a context
// driving one tab. Chromium's background services are off. The tab's uncaught
// script errors are appended to errs.
func browser(t *testing.T, parent context.Context, errs *lockedList) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	catest.Require(t, "chromium", err == nil, "install Debian's chromium (`make test-deps` as root)")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to exit
	})
	err = chromedp.Listen(ctx, func(ev any) { // starts the browser
		if e, ok := ev.(*cdpruntime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
			text := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				text += " " + e.ExceptionDetails.Exception.Description
			}
			errs.add(text)
		}
	})
	if err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

type lockedList struct {
	mu   sync.Mutex
	list []string
}

func (l *lockedList) add(s string) { l.mu.Lock(); l.list = append(l.list, s); l.mu.Unlock() }

func (l *lockedList) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.list...)
}

// rowState is what the page shows of one PV.
type rowState struct {
	Raw      string `json:"raw"`   // the value as JSON
	Text     string `json:"text"`  // the value as shown
	Units    string `json:"units"` //
	Conn     string `json:"conn"`  // connected, disconnected, unknown
	Severity string `json:"sev"`
	Disabled bool   `json:"disabled"` // the put field
	Denied   string `json:"denied"`   // why, shown on hover
	Result   string `json:"result"`   // the last put's result
}

const rowJS = `(() => {
  const tr = document.querySelector('tr[data-pv=' + JSON.stringify(%q) + ']');
  if (!tr) return null;
  const q = s => tr.querySelector(s);
  return {raw: q('td.value').dataset.raw || "", text: q('td.value').textContent, units: q('td.units').textContent,
    conn: tr.dataset.conn, sev: q('.sev').dataset.sev || "", disabled: q('.put button').disabled,
    denied: q('.put button').dataset.denied || "", result: q('.put-result').textContent};
})()`

type page struct {
	t   *testing.T
	ctx context.Context
	dir string // screenshots
}

// row returns the state of the row of name, nil when there is none.
func (p *page) row(name string) *rowState {
	p.t.Helper()
	out, err := chromedp.Run(p.ctx, chromedp.Evaluate[*rowState](fmt.Sprintf(rowJS, name)))
	if err != nil {
		p.t.Fatalf("reading the row of %s: %v", name, err)
	}
	return out
}

// wait polls the page until cond holds, failing with what the page shows after 20 s.
func (p *page) wait(what string, cond func() bool, show func() any) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			p.shot("failed")
			p.t.Fatalf("the page never showed %s; it shows %+v", what, show())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *page) waitRow(name, what string, cond func(*rowState) bool) *rowState {
	p.t.Helper()
	var r *rowState
	p.wait(name+": "+what, func() bool { r = p.row(name); return r != nil && cond(r) }, func() any { return r })
	return r
}

// eval returns the value of the JavaScript expression js on the page.
func eval[T any](p *page, js string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("%s: %v", js, err)
	}
	return v
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.shot("failed")
		p.t.Fatal(err)
	}
}

func (p *page) status() string {
	return eval[string](p, `document.getElementById("status").dataset.state + " " + document.getElementById("status").textContent`)
}

// shot saves a screenshot as <module root>/artifacts/web/<name>.png (git ignores it).
func (p *page) shot(name string) {
	buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(p.dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p.t.Logf("screenshot %s", path)
}

// TestIntegrationWebPage loads the page from pvhub serve in headless Chromium:
// it shows a relay PV's values as a CA client puts them, a put typed on the page
// reaches a CA client, a PV added by typing its name gets a disabled put field
// with the write rule as the reason, the relay panel lists the relay PVs, a PV
// whose IOC goes away shows as disconnected and recovers, the list survives a
// reload through the address, and the page reconnects by itself after the
// WebSocket plugin is killed.
func TestIntegrationWebPage(t *testing.T) {
	ioc := newIOCStandIn(t)
	addr := "127.0.0.1:" + strconv.Itoa(catest.FreePort(t))
	r := newRelay(t,
		"PVHUB_TRANSPORTS__WEBSOCKET__ENABLED=true",
		"PVHUB_TRANSPORTS__WEBSOCKET__LISTEN="+addr,
		"PVHUB_CA__ADDR_LIST=127.0.0.1:"+strconv.Itoa(ioc.port),
		"PVHUB_WRITE__ALLOW=RELAY:* IOC:temp")
	r.start()
	if err := r.proc.WaitForStderr(30*time.Second, `msg="transport plugin running" transport=websocket`); err != nil {
		t.Fatal(err)
	}
	r.putc("RELAY:web_f1", "1")
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	scriptErrs := &lockedList{}
	p := &page{t: t, ctx: browser(t, r.ctx, scriptErrs), dir: filepath.Join(root, "artifacts", "web")}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}

	start := "http://" + addr + "/?pv=RELAY:web_f1&pv=IOC:temp"
	p.do(chromedp.Navigate(start))
	p.wait("connected to pvhub", func() bool { return strings.HasPrefix(p.status(), "open") }, func() any { return p.status() })
	p.waitRow("RELAY:web_f1", "the value 1", func(s *rowState) bool { return s.Raw == "1" && s.Conn == "connected" })
	temp := p.waitRow("IOC:temp", "the IOC's value", func(s *rowState) bool { return s.Raw == "20.5" })
	if temp.Text != "20.5" || temp.Units != "degC" || temp.Severity != "NO_ALARM" || temp.Disabled {
		t.Errorf("IOC:temp row: %+v", temp)
	}

	// A CA client's puts appear.
	r.putc("RELAY:web_f1", "42")
	p.waitRow("RELAY:web_f1", "the CA client's 42", func(s *rowState) bool { return s.Raw == "42" })
	r.putc("RELAY:web_f1", "43")
	p.waitRow("RELAY:web_f1", "the CA client's 43", func(s *rowState) bool { return s.Raw == "43" })
	ioc.post("IOC:temp", 25.25)
	p.waitRow("IOC:temp", "the IOC's update", func(s *rowState) bool { return s.Raw == "25.25" })

	// A put typed on the page reaches a CA client.
	sel := `tr[data-pv="RELAY:web_f1"] .put `
	p.do(chromedp.SetValue(sel+"input", "7.5"), chromedp.Click(sel+"button"))
	p.waitRow("RELAY:web_f1", "the put's result", func(s *rowState) bool { return s.Result == "✓" && s.Raw == "7.5" })
	checkFloats(t, "RELAY:web_f1 after the page's put", r.get("RELAY:web_f1"), 7.5)

	// A PV added by typing: its put field is disabled, the rule on hover; the address follows.
	p.do(chromedp.SendKeys("#names", "IOC:wave\n"))
	wave := p.waitRow("IOC:wave", "the array", func(s *rowState) bool { return s.Raw == "[1,2,3,4]" })
	if !wave.Disabled || wave.Denied != "write denied by no write.allow pattern matches" {
		t.Errorf("IOC:wave's put field: %+v", wave)
	}
	loc := eval[string](p, `location.search`)
	if q, _ := url.ParseQuery(strings.TrimPrefix(loc, "?")); strings.Join(q["pv"], " ") != "RELAY:web_f1 IOC:temp IOC:wave" {
		t.Errorf("the address holds %q", loc)
	}

	// An enum shows its label; text shows as text.
	r.putc("RELAY:msg_c40", "beam on")
	p.do(chromedp.SendKeys("#names", "IOC:mode, RELAY:msg_c40\n"))
	if m := p.waitRow("IOC:mode", "the enum", func(s *rowState) bool { return s.Raw == "1" }); m.Text != "On" {
		t.Errorf("IOC:mode shows %q, want its label On", m.Text)
	}
	p.waitRow("RELAY:msg_c40", "the text", func(s *rowState) bool { return s.Text == "beam on" })

	// The relay panel lists the relay PVs, live.
	r.putc("RELAY:web2_f1", "5")
	var listed []string
	p.wait("the relay PVs in the panel", func() bool {
		listed = eval[[]string](p, `[...document.querySelectorAll("#relay-list button")].map(b => b.textContent)`)
		return strings.Join(listed, " ") == "RELAY:msg_c40 RELAY:web2_f1 RELAY:web_f1"
	}, func() any { return listed })
	p.shot("live")

	// The IOC goes away and comes back.
	ioc.stop()
	p.waitRow("IOC:temp", "disconnected", func(s *rowState) bool { return s.Conn == "disconnected" && s.Disabled })
	p.shot("ioc-disconnected")
	ioc.start()
	p.waitRow("IOC:temp", "connected again", func(s *rowState) bool { return s.Conn == "connected" && s.Raw == "25.25" && !s.Disabled })

	// A reload restores the list from the address.
	p.do(chromedp.Reload())
	p.waitRow("IOC:wave", "the array after a reload", func(s *rowState) bool { return s.Raw == "[1,2,3,4]" })
	p.waitRow("RELAY:web_f1", "the value after a reload", func(s *rowState) bool { return s.Raw == "7.5" })

	// The WebSocket plugin dies: the page says so, reconnects and resubscribes.
	pids := pluginPIDs(r.proc.Stderr())
	if err := syscall.Kill(pids[len(pids)-1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait("the lost connection", func() bool { return strings.HasPrefix(p.status(), "closed") }, func() any { return p.status() })
	p.shot("pvhub-unreachable")
	p.wait("the connection again", func() bool { return strings.HasPrefix(p.status(), "open") }, func() any { return p.status() })
	r.putc("RELAY:web_f1", "99")
	p.waitRow("RELAY:web_f1", "a value after the reconnection", func(s *rowState) bool { return s.Raw == "99" && s.Conn == "connected" })
	p.waitRow("IOC:temp", "the IOC after the reconnection", func(s *rowState) bool { return s.Conn == "connected" && s.Raw == "25.25" })
	p.shot("reconnected")

	if errs := scriptErrs.get(); len(errs) > 0 {
		b, _ := json.Marshal(errs)
		t.Errorf("script errors on the page: %s", b)
	}
	r.stop()
}
