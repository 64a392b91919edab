// pvhub's page: live PVs over the WebSocket transport's own dialect (/api/v1/ws),
// whose messages are the event model as JSON (connection, metadata, value, put_result).
"use strict";

const HISTORY = 300;          // points kept per numeric PV for its chart
const MAX_BACKOFF_MS = 30000; // longest wait between reconnection attempts

const rows = document.getElementById("rows");
const statusEl = document.getElementById("status");
const emptyEl = document.getElementById("empty");
const relayList = document.getElementById("relay-list");
const relayHint = document.getElementById("relay-hint");
const token = new URLSearchParams(location.search).get("token");

const pvs = new Map(); // name → PV view
let ws = null;
let backoff = 1000;
let relayPrefix = "";
let nextPutID = 1;
const pendingPuts = new Map(); // put id → PV name

// ---- the list of PVs lives in the address ----

function namesFromURL() {
  return new URLSearchParams(location.search).getAll("pv").filter(n => n !== "");
}

function saveURL() {
  const q = new URLSearchParams();
  if (token) q.set("token", token);
  for (const name of pvs.keys()) q.append("pv", name);
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
}

// ---- rows ----

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function addPV(name) {
  if (pvs.has(name)) return;
  const tr = el("tr");
  tr.dataset.pv = name;
  tr.dataset.conn = "unknown";
  const pv = {
    name, tr, conn: null, meta: null, value: null, history: [],
    cells: {
      name: el("td", "name", name), value: el("td", "value", "…"), units: el("td", "units"),
      sev: el("span", "sev", "—"), conn: el("span", "conn", "waiting"), time: el("td", "time"),
      canvas: el("canvas"), input: el("input"), button: el("button", "", "Set"), result: el("span", "put-result"),
    },
  };
  const c = pv.cells;
  c.conn.dataset.state = "unknown";
  c.canvas.width = 160; c.canvas.height = 34;
  c.input.placeholder = "value";
  c.input.setAttribute("aria-label", "new value of " + name);
  const form = el("form", "put");
  form.append(c.input, c.button, c.result);
  form.addEventListener("submit", ev => { ev.preventDefault(); put(pv); });
  const remove = el("button", "remove", "×");
  remove.title = "remove " + name;
  remove.addEventListener("click", () => removePV(name));
  const td = (...kids) => { const t = el("td"); t.append(...kids); return t; };
  tr.append(c.name, c.value, c.units, td(c.sev), td(c.conn), c.time, td(c.canvas), td(form), td(remove));
  rows.append(tr);
  pvs.set(name, pv);
  updateAccess(pv);
  emptyEl.hidden = true;
  send({ type: "subscribe", pvs: [name] });
}

function removePV(name) {
  const pv = pvs.get(name);
  if (!pv) return;
  pv.tr.remove();
  pvs.delete(name);
  send({ type: "unsubscribe", pvs: [name] });
  emptyEl.hidden = pvs.size > 0;
  saveURL();
}

function setConn(pv, state, text) {
  pv.tr.dataset.conn = state;
  pv.cells.conn.dataset.state = state;
  pv.cells.conn.textContent = text;
  if (state !== "connected") {         // the last value stays, greyed; its alarm no longer holds
    pv.cells.sev.textContent = "—";
    pv.cells.sev.dataset.sev = "";
  }
}

function updateAccess(pv) {
  let reason = "";
  if (!ws || ws.readyState !== WebSocket.OPEN) reason = "not connected to pvhub";
  else if (!pv.conn || !pv.conn.connected) reason = pv.name + " is not connected";
  else if (!pv.conn.write) reason = pv.conn.write_denied || "writes are not allowed";
  const c = pv.cells;
  c.input.disabled = c.button.disabled = reason !== "";
  c.input.title = c.button.title = reason || "write a new value";
  c.button.dataset.denied = reason;
}

// ---- values ----

function formatNumber(x, meta) {
  if (typeof x !== "number") return String(x); // "NaN", "Infinity"
  const p = meta && meta.precision;
  if (meta && meta.native_type !== "DBF_DOUBLE" && meta.native_type !== "DBF_FLOAT") return String(x);
  // PREC, when set; a PV with PREC 0 (the relay's default) shows its value in full.
  if (Number.isInteger(p) && p > 0 && p <= 17 && Math.abs(x) < 1e15) return x.toFixed(p);
  return String(x);
}

function showValue(pv, m) {
  pv.value = m;
  const c = pv.cells;
  let text;
  if (m.text !== undefined) text = m.text;              // an enum's label
  else if (Array.isArray(m.value)) text = "[" + m.value.length + " elements] " + m.value.slice(0, 8).map(x => formatNumber(x, pv.meta)).join(" ");
  else if (typeof m.value === "string" && pv.meta && (pv.meta.native_type === "DBF_CHAR" || pv.meta.native_type === "DBF_STRING")) text = m.value;
  else text = formatNumber(m.value, pv.meta);
  c.value.textContent = text;
  c.value.title = text;
  c.value.dataset.raw = JSON.stringify(m.value);
  c.sev.textContent = m.severity === "NO_ALARM" ? "OK" : (m.severity || "—") + (m.status && m.status !== "NO_ALARM" ? " " + m.status : "");
  c.sev.dataset.sev = m.severity;
  const t = new Date(m.seconds * 1000 + Math.floor(m.nanos / 1e6));
  c.time.textContent = t.toLocaleTimeString([], { hour12: false }) + "." + String(t.getMilliseconds()).padStart(3, "0");
  c.time.title = m.time;
  if (typeof m.value === "number" && m.text === undefined) {
    pv.history.push([t.getTime(), m.value]);
    if (pv.history.length > HISTORY) pv.history.splice(0, pv.history.length - HISTORY);
  }
  draw(pv);
}

function draw(pv) {
  const cv = pv.cells.canvas, g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  let pts;
  if (pv.value && Array.isArray(pv.value.value)) {
    pts = pv.value.value.map((y, i) => [i, y]);                 // an array: its curve
  } else if (pv.history.length > 1) {
    pts = pv.history;                                             // a scalar: recent history
  } else return;
  pts = pts.filter(p => typeof p[1] === "number" && isFinite(p[1]));
  if (pts.length < 2) return;
  let x0 = pts[0][0], x1 = pts[pts.length - 1][0], y0 = Infinity, y1 = -Infinity;
  for (const p of pts) { y0 = Math.min(y0, p[1]); y1 = Math.max(y1, p[1]); }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  g.strokeStyle = getComputedStyle(document.body).getPropertyValue("--fg") || "#000";
  g.lineWidth = 1.2;
  g.beginPath();
  pts.forEach((p, i) => {
    const x = 2 + (p[0] - x0) / (x1 - x0) * (cv.width - 4);
    const y = cv.height - 2 - (p[1] - y0) / (y1 - y0) * (cv.height - 4);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
}

// ---- writes ----

function parseInput(pv, text) {
  const t = text.trim();
  const meta = pv.meta || {};
  if (meta.count > 1 && meta.native_type !== "DBF_CHAR") {
    return t.split(/[\s,]+/).filter(s => s !== "").map(s => (s !== "" && !isNaN(Number(s))) ? Number(s) : s);
  }
  if (meta.native_type === "DBF_CHAR" || meta.native_type === "DBF_STRING") return text;
  return (t !== "" && !isNaN(Number(t))) ? Number(t) : t; // a label for an enum, or text the server refuses clearly
}

function put(pv) {
  const c = pv.cells;
  if (c.button.disabled) return;
  const id = nextPutID++;
  pendingPuts.set(id, pv.name);
  c.result.textContent = "…";
  delete c.result.dataset.ok;
  send({ type: "put", pv: pv.name, value: parseInput(pv, c.input.value), id });
}

function putResult(m) {
  const name = pendingPuts.get(m.id);
  pendingPuts.delete(m.id);
  const pv = pvs.get(name || m.pv);
  if (!pv) return;
  const r = pv.cells.result;
  r.dataset.ok = String(m.ok);
  r.textContent = m.ok ? "✓" : "✗";
  r.title = m.ok ? "written" : m.error;
  if (!m.ok) r.textContent = "✗ " + m.error;
}

// ---- the relay panel ----

function showRelayList(text) {
  relayList.replaceChildren();
  const names = (text || "").split(",").filter(n => n !== "").sort();
  relayHint.textContent = names.length ? names.length + " PV" + (names.length > 1 ? "s" : "") + " — click to add" : "none yet: a put to " + relayPrefix + "<name>_f1 creates one";
  for (const n of names) {
    const b = el("button", "", n);
    b.addEventListener("click", () => { addPV(n); saveURL(); });
    const li = el("li");
    li.append(b);
    relayList.append(li);
  }
}

// ---- the connection to pvhub ----

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

async function loadInfo() {
  try {
    const r = await fetch("api/v1/info" + (token ? "?token=" + encodeURIComponent(token) : ""));
    if (r.ok) relayPrefix = (await r.json()).relay_prefix || "";
  } catch (e) { /* the socket's failure says it */ }
  if (!relayPrefix) relayHint.textContent = "the relay is disabled";
}

function connect() {
  const url = new URL("api/v1/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  setStatus("connecting", "connecting…");
  ws = new WebSocket(url);
  ws.onopen = async () => {
    backoff = 1000;
    setStatus("open", "connected");
    await loadInfo();
    const names = [...pvs.keys()];
    if (relayPrefix) names.push(relayPrefix + "pvlist");
    if (names.length) send({ type: "subscribe", pvs: names });
    for (const pv of pvs.values()) updateAccess(pv);
  };
  ws.onmessage = ev => {
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    if (relayPrefix && m.pv === relayPrefix + "pvlist") {
      if (m.type === "value") showRelayList(m.value);
      return;
    }
    if (m.type === "put_result") { putResult(m); return; }
    if (m.type === "error") { setStatus("open", "connected — " + m.error); return; }
    const pv = pvs.get(m.pv);
    if (!pv) return;
    switch (m.type) {
      case "connection":
        pv.conn = m;
        if (m.connected) setConn(pv, "connected", "connected");
        else setConn(pv, "disconnected", "disconnected");
        updateAccess(pv);
        break;
      case "metadata":
        pv.meta = m;
        pv.cells.units.textContent = m.units || "";
        pv.history = [];
        break;
      case "value":
        showValue(pv, m);
        break;
    }
  };
  ws.onclose = () => {
    ws = null;
    const wait = backoff;
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    setStatus("closed", "connection to pvhub lost — reconnecting in " + Math.round(wait / 1000) + " s");
    for (const pv of pvs.values()) { setConn(pv, "unknown", "unknown (pvhub unreachable)"); updateAccess(pv); }
    setTimeout(connect, wait);
  };
}

// ---- start ----

document.getElementById("add").addEventListener("submit", ev => {
  ev.preventDefault();
  const ta = document.getElementById("names");
  for (const n of ta.value.split(/[\s,]+/)) if (n !== "") addPV(n);
  ta.value = "";
  saveURL();
});
document.getElementById("names").addEventListener("keydown", ev => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); document.getElementById("add").requestSubmit(); }
});
for (const n of namesFromURL()) addPV(n);
emptyEl.hidden = pvs.size > 0;
connect();
