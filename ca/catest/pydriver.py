#!/usr/bin/python3
"""pydriver: drives Channel Access PVs through pyepics for pvhub's interop tests.

Run with /usr/bin/python3 (Debian's python3-pyepics, which wraps the system
libca). The Go wrapper is PyDriver in package catest (pydriver.go). Every
result is one JSON object per line on stdout, flushed at once.

USAGE
  pydriver.py get     [--form native|time|ctrl] [--as-string] [--count N]
                      [--ctrlvars] [--timeout SEC] PV...
  pydriver.py put     [--wait] [--timeout SEC] [--text] [--array] PV VALUE...
  pydriver.py monitor [--form native|time|ctrl] [--mask N] [--events N]
                      [--seconds SEC] [--timeout SEC] PV...
  pydriver.py info    [--timeout SEC] PV...

  get      PV.get_with_metadata(use_monitor=False) with the given form, count
           and as_string; --ctrlvars adds PV.get_ctrlvars(). Prints the value,
           char_value (text of a char waveform), the metadata and enum_strs.
  put      PV.put. One VALUE is sent as an int or float when it parses as one
           and the PV is not a DBR_STRING PV, else as text (--text: always as
           text, e.g. to a char waveform,
           which pyepics converts to bytes plus a NUL); several VALUEs (or
           --array) are sent as a list of numbers. --wait uses wait=True with
           --timeout and reports whether the completion arrived.
  monitor  PV(auto_monitor=MASK or True, callback, connection_callback,
           access_callback). Prints every value with its timestamp, status and
           severity, every connection change and access change. Ends after
           --events values in total or --seconds (default: never).
  info     connection, native type, element count, host and access.

OUTPUT lines carry "event": conn, access, value (op get/monitor), put, end,
timeout, error. Floats are JSON numbers; NaN and infinities are the strings
"NaN", "Inf", "-Inf".

The driver refuses to run (status 2) unless EPICS_CA_AUTO_ADDR_LIST is NO,
so that it never broadcasts.

EXIT STATUS: 0 success, 1 CA error, 2 usage, 3 timeout or PV not found.
"""

import argparse
import json
import math
import os
import sys
import threading
import time

try:
    import epics
    from epics import ca
except ImportError as exc:  # pragma: no cover - reported to the Go side
    sys.stdout.write(json.dumps({"event": "error", "op": "import", "msg": str(exc)}) + "\n")
    sys.exit(1)

_out_lock = threading.Lock()

META_KEYS = (
    "status", "severity", "timestamp", "posixseconds", "nanoseconds",
    "units", "precision", "enum_strs",
    "upper_disp_limit", "lower_disp_limit", "upper_alarm_limit",
    "upper_warning_limit", "lower_warning_limit", "lower_alarm_limit",
    "upper_ctrl_limit", "lower_ctrl_limit",
)


def clean(v):
    """Converts a pyepics value into something json.dumps can print strictly."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, bytes):
        return list(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Inf" if v > 0 else "-Inf"
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    if hasattr(v, "tolist"):  # numpy arrays and scalars
        return clean(v.tolist())
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    try:  # ctypes arrays (pyepics returns them for empty arrays)
        return [clean(x) for x in v]
    except TypeError:
        return str(v)


def emit(event, **fields):
    rec = {"event": event}
    rec.update({k: clean(v) for k, v in fields.items()})
    line = json.dumps(rec, allow_nan=False)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def native_type(pv):
    """Returns the native DBR type straight from libca.

    ca.field_type waits for pyepics' own connection bookkeeping, which is not
    finished while a connection callback runs, so it would stall there.
    """
    t = ca.libca.ca_field_type(pv.chid)
    return t - 65536 if t >= 32768 else t


def conn_fields(pv):
    # PV properties would issue a CA get while the value is unknown; read
    # pyepics' bookkeeping directly instead.
    args = pv._args
    return dict(
        pv=pv.pvname,
        connected=bool(pv.connected),
        native_type=native_type(pv) if pv.connected else -1,
        type=args.get("type"),
        element_count=args.get("nelm") if pv.connected else 0,
        host=args.get("host"),
        read=bool(args.get("read_access")),
        write=bool(args.get("write_access")),
    )


def connect(names, timeout, form="time", **kw):
    pvs = [epics.PV(n, form=form, auto_monitor=False, connection_timeout=timeout, **kw)
           for n in names]
    rc = 0
    for pv in pvs:
        if pv.wait_for_connection(timeout=timeout):
            emit("conn", **conn_fields(pv))
        else:
            emit("timeout", pv=pv.pvname, what="connect")
            rc = 3
    return pvs, rc


def cmd_get(a):
    pvs, rc = connect(a.pv, a.timeout, form=a.form)
    for pv in pvs:
        if not pv.connected:
            continue
        try:
            md = pv.get_with_metadata(count=a.count, as_string=a.as_string,
                                      as_numpy=False, timeout=a.timeout,
                                      form=a.form, use_monitor=False)
        except ca.ChannelAccessGetFailure as exc:
            emit("error", pv=pv.pvname, op="get", eca=getattr(exc, "status", None), msg=str(exc))
            rc = rc or 1
            continue
        if md is None:
            emit("timeout", pv=pv.pvname, what="get")
            rc = 3
            continue
        fields = {k: md[k] for k in META_KEYS if k in md}
        if a.ctrlvars:
            fields["ctrlvars"] = pv.get_ctrlvars(timeout=a.timeout) or {}
        if pv.enum_strs is not None and "enum_strs" not in fields:
            fields["enum_strs"] = pv.enum_strs
        emit("value", op="get", pv=pv.pvname, value=md.get("value"),
             char_value=pv.char_value, type=pv.type, count=pv.count,
             nelm=pv.nelm, **fields)
    return rc


def parse_value(text, as_text):
    if as_text:
        return text
    for conv in (lambda s: int(s, 0), float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def cmd_put(a):
    pvs, rc = connect([a.pv], a.timeout)
    if rc:
        return rc
    pv = pvs[0]
    # Text stays text for a DBR_STRING PV, whose pyepics put wants a string.
    as_text = a.text or native_type(pv) == 0
    if len(a.values) > 1 or a.array:
        value = [parse_value(v, as_text) for v in a.values]
    else:
        value = parse_value(a.values[0], as_text)
    try:
        ret = pv.put(value, wait=a.wait, timeout=a.timeout)
    except Exception as exc:  # pyepics raises several types for bad values
        emit("error", pv=pv.pvname, op="put", msg=str(exc))
        return 1
    complete = None
    if a.wait:
        complete = ret is not None and ret > 0
    emit("put", pv=pv.pvname, value=value, wait=a.wait, ret=ret, complete=complete)
    if ret is None:
        return 1
    if a.wait and not complete:
        emit("timeout", pv=pv.pvname, what="put_callback")
        return 3
    return 0


def cmd_monitor(a):
    state = {"events": 0, "connected": set()}
    done = threading.Event()

    def on_value(pvname=None, value=None, char_value=None, **kw):
        with _out_lock:
            state["events"] += 1
            seq = state["events"]
        fields = {k: kw[k] for k in META_KEYS if kw.get(k) is not None}
        emit("value", op="monitor", pv=pvname, seq=seq, value=value,
             char_value=char_value, count=kw.get("count"), type=kw.get("type"), **fields)
        if a.events is not None and seq >= a.events:
            done.set()

    def on_conn(pvname=None, conn=None, pv=None, **kw):
        fields = dict(pv=pvname, connected=bool(conn))
        if conn:
            state["connected"].add(pvname)
            if pv is not None:
                args = pv._args  # properties would issue a CA get here
                fields.update(native_type=native_type(pv), type=args.get("type"),
                              element_count=args.get("nelm"), host=args.get("host"))
        emit("conn", **fields)

    def on_access(read_access, write_access, pv=None):
        emit("access", pv=pv.pvname if pv is not None else None,
             read=bool(read_access), write=bool(write_access))

    mon = a.mask if a.mask is not None else True
    pvs = [epics.PV(n, form=a.form, auto_monitor=mon, callback=on_value,
                    connection_callback=on_conn, access_callback=on_access,
                    connection_timeout=a.timeout)
           for n in a.pv]
    deadline = None if a.seconds is None else time.monotonic() + a.seconds
    while not done.is_set():
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            done.wait(min(left, 0.05))
        else:
            done.wait(0.05)
    emit("end", reason="events" if done.is_set() else "time", events=state["events"])
    rc = 0
    for pv in pvs:
        if pv.pvname not in state["connected"]:
            emit("timeout", pv=pv.pvname, what="connect")
            rc = 3
    for pv in pvs:
        pv.clear_callbacks()
        pv.disconnect()
    return rc


def cmd_info(a):
    _, rc = connect(a.pv, a.timeout)
    return rc


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that also reports usage errors as a JSON line."""

    def error(self, message):
        emit("usage", msg=message)
        super().error(message)


def main(argv):
    p = Parser(prog="pydriver.py")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)

    g = sub.add_parser("get")
    g.add_argument("--form", choices=("native", "time", "ctrl"), default="time")
    g.add_argument("--as-string", action="store_true")
    g.add_argument("--count", type=int)
    g.add_argument("--ctrlvars", action="store_true")
    g.add_argument("--timeout", type=float, default=5.0)
    g.add_argument("pv", nargs="+")

    u = sub.add_parser("put")
    u.add_argument("--wait", action="store_true")
    u.add_argument("--timeout", type=float, default=5.0)
    u.add_argument("--text", action="store_true")
    u.add_argument("--array", action="store_true")
    u.add_argument("pv")
    u.add_argument("values", nargs="+", metavar="VALUE")

    m = sub.add_parser("monitor")
    m.add_argument("--form", choices=("native", "time", "ctrl"), default="time")
    m.add_argument("--mask", type=int)
    m.add_argument("--events", type=int)
    m.add_argument("--seconds", type=float)
    m.add_argument("--timeout", type=float, default=5.0)
    m.add_argument("pv", nargs="+")

    i = sub.add_parser("info")
    i.add_argument("--timeout", type=float, default=5.0)
    i.add_argument("pv", nargs="+")

    a = p.parse_args(argv)
    # A test driver must never broadcast: insist on an explicit address list.
    if not os.environ.get("EPICS_CA_AUTO_ADDR_LIST", "").lower().startswith("n"):
        emit("usage", msg="EPICS_CA_AUTO_ADDR_LIST must be NO (the driver never broadcasts)")
        return 2
    run = {"get": cmd_get, "put": cmd_put, "monitor": cmd_monitor, "info": cmd_info}[a.cmd]
    return run(a)


if __name__ == "__main__":
    rc = main(sys.argv[1:])
    sys.stdout.flush()
    # pyepics' atexit handlers can stall when a server vanished; the results
    # are out, so leave at once.
    os._exit(rc)
