#!/usr/bin/env python3
"""Open an mcpfleet HTML report in headless Chromium and check it as a person would.

Usage: check_report.py [--chromium BIN] [--min-charts N] [--timeout S] [--workdir DIR]
                       REPORT.html ARTIFACT_DIR
Normally run through ci/check-report.sh, which installs Chromium first.  Standard library only
(CI may not reach PyPI).  Chromium is driven over the DevTools protocol through
--remote-debugging-pipe (fds 3 and 4, NUL-terminated JSON): no TCP port, no websocket client.

Checks, each printed as one PASS/FAIL line:
  charts      the page holds >= N <svg> with a non-empty box and drawn shapes, and every such
              chart inside the screenshot is visibly painted (>= 3 colours inside its box);
  screenshot  ARTIFACT_DIR/report.png (the full page) exists and is not blank; decoded here;
  network     (a) static: no src/href/srcset/url()/@import in the HTML points off the machine;
              (b) DevTools: every request the page made was file:/data:/blob:/about:;
              (c) the whole browser's NetLog: no page request off the machine, no preconnect or
              DNS prefetch, no DNS lookup, no TCP connect or UDP packet to a non-loopback address;
  console     no console.error/assert, no uncaught exception, no error-level log entry (such
              as "Failed to load resource", CSP violations), no failed resource load.
Exit status: 0 if every check passed, 1 if one failed, 2 if the browser session broke.
"""

import argparse
import base64
import collections
import fcntl
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:", "chrome-error:")

# Flags that keep Chromium's own machinery off the network.  Measured with Debian's Chromium 156:
# with only --headless --no-sandbox --disable-gpu it looks up and contacts Google hosts within a
# second (update.googleapis.com, clients2.google.com network time, accounts.google.com,
# redirector.gvt1.com spell-check dictionary), which the NetLog check rightly fails.  With the
# list below only the sign-in probe accounts.google.com/ListAccounts remains (no switch stops
# it); the check reports it as a note because its initiator shows it is not the page's.
#  - --component-updater=url-source=file:... stops the on-demand update check that
#    --disable-component-update leaves on (Optimization Guide model manifest, sent as "fg");
#  - --host-resolver-rules=MAP * ~NOTFOUND is the safety net, not the check: every host name and
#    IP literal fails to resolve, so neither Chromium nor a bad report can send a packet off the
#    machine, while the attempt still shows in the DevTools and NetLog evidence.
QUIET_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-field-trial-config",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,SpellCheck,"
    "InterestFeedContentSuggestions,NetworkTimeServiceQuerying",
    "--metrics-recording-only",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
    "--safebrowsing-disable-auto-update",
    "--password-store=basic",
    "--hide-scrollbars",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--component-updater=url-source=file:///nonexistent/",
]


class Fail(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# DevTools protocol over --remote-debugging-pipe


class Cdp:
    def __init__(self, proc, wfd, rfd, deadline):
        self.proc, self.wfd, self.rfd, self.deadline = proc, wfd, rfd, deadline
        self.buf = b""
        self.next_id = 0
        self.events = []  # (method, params, sessionId) in arrival order

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self.wfd, data)
            data = data[n:]
        return self.next_id

    def _read_one(self, until):
        """Next message, or None if `until` passed first."""
        while b"\0" not in self.buf:
            left = min(until, self.deadline) - time.monotonic()
            if left <= 0:
                if time.monotonic() >= self.deadline:
                    raise Fail("timed out talking to Chromium")
                return None
            r, _, _ = select.select([self.rfd], [], [], left)
            if not r:
                continue
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise Fail("Chromium closed the DevTools pipe (exit code %s)" % self.proc.poll())
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, params=None, session=None):
        want = self.send(method, params, session)
        while True:
            msg = self._read_one(self.deadline)
            if msg.get("id") == want:
                if "error" in msg:
                    raise Fail("%s failed: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append((msg["method"], msg.get("params", {}), msg.get("sessionId")))

    def pump(self, seconds):
        """Collect events for `seconds` (bounded by the overall deadline)."""
        until = time.monotonic() + seconds
        while True:
            msg = self._read_one(until)
            if msg is None:
                return
            if "method" in msg:
                self.events.append((msg["method"], msg.get("params", {}), msg.get("sessionId")))

    def wait_event(self, method, session, seconds):
        until = time.monotonic() + seconds
        seen = lambda: any(m == method and s == session for m, _, s in self.events)
        while not seen():
            msg = self._read_one(until)
            if msg is None:
                return False
            if "method" in msg:
                self.events.append((msg["method"], msg.get("params", {}), msg.get("sessionId")))
        return True


# ---------------------------------------------------------------------------------------------
# PNG decoding (8-bit, non-interlaced: what Chromium writes)


def decode_png(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Fail("not a PNG file")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if hdr is None:
        raise Fail("PNG has no IHDR")
    width, height, depth, ctype, _, _, interlace = hdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(ctype)
    if depth != 8 or channels is None or interlace:
        raise Fail("unsupported PNG (depth %d, colour type %d, interlace %d)" % (depth, ctype, interlace))
    raw = zlib.decompress(b"".join(idat))
    bpp, stride = channels, width * channels
    rows, prev, i = [], bytearray(stride), 0
    low7, top1 = int.from_bytes(b"\x7f" * stride, "big"), int.from_bytes(b"\x80" * stride, "big")
    for _ in range(height):
        ftype = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        if ftype == 0:
            pass
        elif ftype == 2:
            # Up: bytewise add of two rows mod 256, done on whole rows as big integers (carries
            # kept inside each byte: add the low 7 bits, then xor in the top bits).  Chromium
            # writes only this filter when asked to optimizeForSpeed, which keeps a tall page
            # decodable in well under a second without numpy or PIL.
            x, y = int.from_bytes(line, "big"), int.from_bytes(prev, "big")
            line = bytearray((((x & low7) + (y & low7)) ^ ((x ^ y) & top1)).to_bytes(stride, "big"))
        elif ftype == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 0xFF
        elif ftype == 3:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((a + prev[x]) >> 1)) & 0xFF
        elif ftype == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        else:
            raise Fail("bad PNG filter type %d" % ftype)
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def region_stats(img, x0, y0, x1, y1, step=2):
    """(distinct colours, fraction of non-white pixels) in a box, sampled every `step` px."""
    width, height, ch, rows = img
    x0, y0 = max(0, int(x0)), max(0, int(y0))
    x1, y1 = min(width, int(x1)), min(height, int(y1))
    hist = collections.Counter()
    n = min(ch, 3)  # ignore alpha
    for y in range(y0, y1, step):
        row = rows[y]
        hist.update([row[o:o + n] for o in range(x0 * ch, x1 * ch, step * ch)])
    total = sum(hist.values())
    nonwhite = sum(c for px, c in hist.items() if min(px) < 0xF0)
    return len(hist), (nonwhite / total if total else 0.0)


# ---------------------------------------------------------------------------------------------
# Network evidence


OFF_MACHINE = re.compile(r"^\s*(?:https?:|wss?:|ftp:|//)", re.I)


def static_refs(html):
    """Attribute and CSS references in the HTML that would load something from off the machine.
    <a href> is a link a reader may follow, not a load, so it is not counted."""
    bad = []
    for m in re.finditer(r"<([a-zA-Z][\w:-]*)([^>]*)>", html):
        tag, attrs = m.group(1).lower(), m.group(2)
        for am in re.finditer(r"""\b(src|href|xlink:href|srcset|poster|data|action|formaction|background|manifest)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", attrs, re.I):
            name, val = am.group(1).lower(), am.group(2).strip("\"'")
            if tag == "a" and name in ("href", "xlink:href"):
                continue
            vals = [v.strip().split(" ")[0] for v in val.split(",")] if name == "srcset" else [val]
            bad += ["<%s %s=%s>" % (tag, name, v) for v in vals if OFF_MACHINE.match(v)]
    # CSS: <style> blocks and style="" attributes (not prose that happens to say "url(").
    css = re.findall(r"<style\b[^>]*>(.*?)</style>", html, re.I | re.S)
    css += re.findall(r"""\bstyle\s*=\s*("[^"]*"|'[^']*')""", html, re.I)
    for block in css:
        for m in re.finditer(r"""url\(\s*['"]?([^'")\s]+)""", block, re.I):
            if OFF_MACHINE.match(m.group(1)):
                bad.append("url(%s)" % m.group(1))
        for m in re.finditer(r"""@import\s+(?:url\(\s*)?['"]?([^'");\s]+)""", block, re.I):
            if OFF_MACHINE.match(m.group(1)):
                bad.append("@import %s" % m.group(1))
    return bad


def load_netlog(path):
    text = Path(path).read_text(errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    # A NetLog cut short (Chromium killed before it closed the file) is not valid JSON.  Chromium
    # writes the constants on the first line and then one event per line, so read it line by
    # line: the constants, then every event up to the first incomplete one.
    lines = text.split("\n")
    head = lines[0].rstrip().rstrip(",")
    constants = json.loads(head + "}").get("constants", {}) if head.startswith("{") else {}
    events = []
    for line in lines[1:]:
        line = line.strip().rstrip(",")
        if not line.startswith("{"):
            continue  # "events": [, or the closing lines
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return {"constants": constants, "events": events}


LOOPBACK = re.compile(r"^\[?(127\.|::1\]?|localhost)", re.I)


def netlog_findings(path):
    """Read Chromium's NetLog (JSON; event and source type numbers are mapped to names through
    the log's own "constants" block, so this follows the Chromium version).

    Returns (failures, notes).  Failures:
      - a URL request made on behalf of the page (its initiator is an origin; Chromium's own
        requests log the initiator "not an origin") to anything but a local scheme;
      - a preconnect or speculative host resolution (<link rel=preconnect/dns-prefetch>), but
        for a speculative resolution in the network context (anonymization key's top site) of
        one of Chromium's own requests: Chromium 148 resolves ahead for its sign-in probe;
      - anything that left the machine: a real DNS lookup (DNS transaction or system resolver
        task), a TCP connect to a non-loopback address, or bytes sent on a UDP socket to one.
    Notes (not failures): Chromium's own URL requests, e.g. the sign-in probe
    accounts.google.com/ListAccounts that no flag turns off; the resolver rules stop them before
    any lookup, and the rules above would fail the check if one got further.
    A UDP connect with no bytes sent is not traffic: Chromium's IPv6 reachability probe
    connects a UDP socket to 2001:4860:4860::8888 only to ask the kernel for a route."""
    log = load_netlog(path)
    consts = log.get("constants", {})
    names = {v: k for k, v in consts.get("logEventTypes", {}).items()}
    src_names = {v: k for k, v in consts.get("logSourceType", {}).items()}
    failures, notes = set(), set()
    if "URL_REQUEST_START_JOB" not in names.values() or not log.get("events"):
        # Evidence that cannot be read is no evidence: fail rather than pass on an empty reading.
        failures.add("NetLog not understood (no event type table or no events)")
    sockets = {}  # source id -> {"type", "addresses", "sent"}
    own_sites = set()  # top sites of Chromium's own requests' network contexts
    speculative = []  # (host, network anonymization key) of speculative resolutions
    for ev in log.get("events", []):
        name = names.get(ev.get("type"), str(ev.get("type")))
        src = ev.get("source") or {}
        p = ev.get("params") or {}
        if not isinstance(p, dict):
            p = {}
        if name == "URL_REQUEST_START_JOB" and "url" in p:
            url = str(p["url"])
            if not url.lower().startswith(LOCAL_SCHEMES):
                if p.get("initiator") == "not an origin":
                    notes.add("Chromium's own request (not the page's): %s" % url.split("?")[0])
                    own_sites.add(str(p.get("network_isolation_key", "")).split(" ")[0])
                else:
                    failures.add("page request %s (initiator %s)" % (url, p.get("initiator")))
        elif name == "HTTP_STREAM_JOB_CONTROLLER" and p.get("is_preconnect"):
            failures.add("preconnect to %s" % p.get("url"))
        elif name == "HOST_RESOLVER_MANAGER_REQUEST" and p.get("is_speculative"):
            speculative.append((p.get("host"), str(p.get("network_anonymization_key", ""))))
        elif name in ("DNS_TRANSACTION", "HOST_RESOLVER_SYSTEM_TASK") and ev.get("phase") != 2:
            failures.add("DNS lookup%s" % (" of " + p["hostname"] if p.get("hostname") else ""))
        stype = src_names.get(src.get("type"), "")
        if stype in ("SOCKET", "UDP_SOCKET", "UDP_CLIENT_SOCKET"):
            sk = sockets.setdefault(src.get("id"), {"type": stype, "addresses": set(), "sent": False})
            for key in ("address", "remote_address"):
                if isinstance(p.get(key), str) and "LOCAL_ADDRESS" not in name:
                    sk["addresses"].add(p[key])
            if isinstance(p.get("address_list"), list):
                sk["addresses"].update(str(a) for a in p["address_list"])
            if "BYTES_SENT" in name:
                sk["sent"] = True
    own_sites.discard("")
    for host, key in speculative:
        # The host is logged after the resolver map, so it usually reads ~NOTFOUND; the network
        # context tells whose it is: the page is a local file, never in a context of Chromium's own.
        site = key.split(" ")[0]
        if site in own_sites:
            notes.add("Chromium's own speculative host resolution (context %s)" % site)
        else:
            failures.add("speculative host resolution (dns-prefetch/preconnect) for %s (context %s)"
                         % (host, key or "none"))
    for sk in sockets.values():
        remote = sorted(a for a in sk["addresses"] if not LOOPBACK.match(a))
        if not remote:
            continue
        if sk["type"] == "SOCKET":
            failures.add("TCP connect to %s" % ", ".join(remote))
        elif sk["sent"]:
            failures.add("UDP packets to %s" % ", ".join(remote))
    return sorted(failures), sorted(notes)


# ---------------------------------------------------------------------------------------------


def launch(args, work):
    """Start Chromium with its DevTools pipe; returns (proc, write_fd, read_fd)."""
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    # Chromium's ends go to fds >= 10 first, so that moving them onto 3 and 4 cannot clobber one
    # with the other; bash's exec then moves them (a preexec_fn dup2 would be undone by Popen
    # closing every fd not in pass_fds, and dash cannot name fds above 9).
    hi_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
    hi_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    cmd = [args.chromium, *QUIET_FLAGS, *args.chromium_flag,
           "--user-data-dir=%s" % (work / "profile"),
           "--log-net-log=%s" % (work / "netlog.json"), "--net-log-capture-mode=Default",
           "--remote-debugging-pipe", "about:blank"]
    trampoline = 'exec "$@" 3<&%d 4>&%d %d<&- %d>&-' % (hi_r, hi_w, hi_r, hi_w)
    env = dict(os.environ)
    env.setdefault("DBUS_SESSION_BUS_ADDRESS", "disabled:")  # there is no session bus here
    with open(work / "chromium.stderr", "wb") as err:
        proc = subprocess.Popen(["bash", "-c", trampoline, "bash", *cmd],
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                pass_fds=(hi_r, hi_w), start_new_session=True, env=env)
    os.close(hi_r)
    os.close(hi_w)
    # Chromium leads its own process group; the shell wrapper kills that group if this script
    # is itself killed before its finally clause runs.
    (work / "chromium.pgid").write_text(str(proc.pid))
    return proc, to_chrome_w, from_chrome_r


def open_page(cdp, chromium, width, height):
    """Prints the browser's version, opens a blank page of `width` x `height` with the DevTools
    domains the checks read (Page, Runtime, Log, Network) enabled; returns its session id."""
    print("browser: %s (%s)" % (cdp.call("Browser.getVersion").get("product", "?"), chromium),
          flush=True)
    target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    sid = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        cdp.call(domain + ".enable", {}, sid)
    cdp.call("Emulation.setDeviceMetricsOverride",
             {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, sid)
    return sid


def close(cdp, proc, deadline):
    """Asks Chromium to exit (a clean exit completes the NetLog file) and waits a little."""
    try:
        cdp.call("Browser.close")
        proc.wait(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
    except (Fail, subprocess.TimeoutExpired):
        print("note: Chromium did not exit after Browser.close; killing it", flush=True)


def end(proc, wfd, rfd):
    """Kills Chromium's process group if it is still there, and closes the DevTools pipe."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    for fd in (wfd, rfd):
        try:
            os.close(fd)
        except OSError:
            pass


PROBE = r"""(() => {
  const shapes = 'rect,path,line,polyline,polygon,circle,ellipse,text,image,use';
  const svgs = [...document.querySelectorAll('svg')].filter(s => !s.parentElement.closest('svg'));
  return JSON.stringify({
    boxes: svgs.map(s => { const r = s.getBoundingClientRect();
      return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height,
              shapes: s.querySelectorAll(shapes).length,
              label: s.getAttribute('aria-label') || ''}; }),
    height: Math.ceil(document.documentElement.scrollHeight),
    width: Math.ceil(document.documentElement.scrollWidth),
  });
})()"""


def drive(args, report, shot, work):
    """Load the report, probe its charts, take the screenshot.  Returns (cdp events, dom)."""
    proc, wfd, rfd = launch(args, work)
    deadline = time.monotonic() + args.timeout
    try:
        cdp = Cdp(proc, wfd, rfd, deadline)
        sid = open_page(cdp, args.chromium, args.width, args.height)
        nav = cdp.call("Page.navigate", {"url": report.as_uri()}, sid)
        if nav.get("errorText"):
            raise Fail("navigation failed: %s" % nav["errorText"])
        if not cdp.wait_event("Page.loadEventFired", sid, max(1.0, deadline - time.monotonic() - 5)):
            raise Fail("the page did not finish loading")
        cdp.pump(args.settle)  # late scripts, timers, failures reported after onload
        res = cdp.call("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, sid)
        if "exceptionDetails" in res:
            raise Fail("DOM probe failed: %s" % res["exceptionDetails"].get("text"))
        dom = json.loads(res["result"]["value"])
        # The whole page (up to 16000 px, a GPU texture limit), at least the requested window.
        # optimizeForSpeed makes Chromium write only the PNG "Up" filter, which decode_png
        # handles on whole rows: a tall page decodes in under a second in pure Python.
        clip = {"x": 0, "y": 0, "width": max(dom["width"], args.width),
                "height": min(max(dom["height"], args.height), 16000), "scale": 1}
        data = cdp.call("Page.captureScreenshot",
                        {"format": "png", "captureBeyondViewport": True, "optimizeForSpeed": True,
                         "clip": clip}, sid)["data"]
        shot.write_bytes(base64.b64decode(data))
        cdp.pump(0.2)
        close(cdp, proc, deadline)
        return cdp.events, dom
    finally:
        end(proc, wfd, rfd)



def console_problems(events, urls, show=lambda url: url):
    """Errors and warnings the page reported: console.error/assert, uncaught exceptions,
    error-level log entries, and failed loads DevTools did not log (e.g. blocked by ORB), which a
    reader would see as a broken image; a load already logged is not counted twice. `urls` maps
    request ids to URLs; `show` renders a URL for the report (e.g. with a secret hidden).
    Returns (problems, warnings)."""
    problems, warnings, logged_urls = [], [], set()
    for m, p, _ in events:
        if m == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", a.get("type")))) for a in p.get("args", []))
            if p.get("type") in ("error", "assert"):
                problems.append("console.%s: %s" % (p["type"], text))
            elif p.get("type") == "warning":
                warnings.append("console.warn: %s" % text)
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = str((d.get("exception") or {}).get("description") or d.get("text"))
            problems.append("uncaught %s (line %s)" % (text.splitlines()[0], d.get("lineNumber", -1) + 1))
        elif m == "Log.entryAdded":
            e = p.get("entry", {})
            line = "%s: %s%s" % (e.get("source"), e.get("text"), " (%s)" % show(e["url"]) if e.get("url") else "")
            if e.get("level") == "error":
                problems.append(line)
                logged_urls.add(e.get("url"))
            elif e.get("level") == "warning":
                warnings.append(line)
    for m, p, _ in events:
        if m == "Network.loadingFailed" and not p.get("canceled"):
            url = urls.get(p.get("requestId"), "?")
            if url not in logged_urls:
                problems.append("failed load: %s %s" % (show(url), p.get("errorText")))
    return problems, warnings

def run(args, work):
    report = Path(args.report).resolve()
    outdir = Path(args.artifact_dir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    shot = outdir / "report.png"
    if shot.exists():
        shot.unlink()
    html = report.read_text(errors="replace")
    results = []

    def record(name, ok, detail):
        results.append((name, ok))
        print("%s  %-10s %s" % ("PASS" if ok else "FAIL", name, detail), flush=True)

    t0 = time.monotonic()
    events, dom = drive(args, report, shot, work)
    browser_s = time.monotonic() - t0

    # --- charts: in the DOM, with a box and shapes, and painted in the screenshot -------------
    img = decode_png(shot.read_bytes())
    drawn = [b for b in dom["boxes"] if b["w"] >= 20 and b["h"] >= 20 and b["shapes"] > 0]
    painted, blank = [], []
    for b in drawn:
        if b["y"] + b["h"] > img[1]:
            continue  # below the captured area: counted in the DOM only
        colours, _ = region_stats(img, b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"])
        (painted if colours >= 3 else blank).append(b)
    ok = len(drawn) >= args.min_charts and len(painted) >= args.min_charts and not blank
    record("charts", ok,
           "%d <svg> in the DOM, %d with a box and shapes, %d visibly painted in the screenshot "
           "(need >= %d)%s" % (len(dom["boxes"]), len(drawn), len(painted), args.min_charts,
                               "; blank: " + ", ".join(repr(b["label"]) for b in blank) if blank else ""))

    # --- screenshot not blank ------------------------------------------------------------------
    colours, nonwhite = region_stats(img, 0, 0, img[0], img[1])
    record("screenshot", colours >= 16 and nonwhite >= 0.005,
           "%s %dx%d, %d colours, %.1f %% non-white" % (shot, img[0], img[1], colours, 100 * nonwhite))

    # --- network -------------------------------------------------------------------------------
    static = static_refs(html)
    urls = {}  # requestId -> url, for the page's requests as DevTools saw them
    for m, p, _ in events:
        if m == "Network.requestWillBeSent":
            urls[p.get("requestId")] = p["request"]["url"]
        elif m == "Network.webSocketCreated":
            urls[p.get("requestId")] = p.get("url", "?")
    remote = sorted({u for u in urls.values() if not u.lower().startswith(LOCAL_SCHEMES)})
    local_extra = sorted({u for u in urls.values() if u.lower().startswith("file:") and u != report.as_uri()})
    netlog, net_notes = work / "netlog.json", []
    if netlog.exists():
        try:
            net, net_notes = netlog_findings(netlog)
        except (json.JSONDecodeError, OSError) as e:
            net = ["NetLog unreadable: %s" % e]
    else:
        net = ["NetLog missing (Chromium did not write %s)" % netlog]
    ok = not static and not remote and not net
    detail = ("HTML has no off-machine reference; the page's %d request(s) were all local; "
              "NetLog: no page request off the machine, no DNS lookup, no remote connect"
              % len(set(urls.values())))
    if not ok:
        detail = "; ".join(filter(None, [
            "HTML references off-machine: " + ", ".join(static[:5]) if static else "",
            "page requested (DevTools): " + ", ".join(remote[:5]) if remote else "",
            "NetLog: " + ", ".join(net[:6]) + (" (+%d more)" % (len(net) - 6) if len(net) > 6 else "") if net else "",
        ]))
    record("network", ok, detail)
    for n in net_notes:
        print("      note: %s" % n)
    if local_extra:
        print("      note: the page also read local files: %s" % ", ".join(local_extra[:5]))

    # --- console -------------------------------------------------------------------------------
    problems, warnings = console_problems(events, urls)
    record("console", not problems,
           "no errors" if not problems else "%d error(s): %s" % (len(problems), " | ".join(problems[:6])))
    for w in warnings[:6]:
        print("      warning (not failing): %s" % w)

    failed = [n for n, ok in results if not ok]
    if failed and args.verbose:
        print_stderr_tail(work, 15)
    if args.keep_netlog and netlog.exists():
        shutil.copy(netlog, outdir / "report-netlog.json")
    return failed, len(results), browser_s, shot


def print_stderr_tail(work, n):
    """The end of Chromium's stderr, for diagnosing a failure.  Lines from dbus/ are dropped:
    this machine has no D-Bus, and Chromium logs a dozen harmless "Failed to connect to the
    bus" errors on every start."""
    path = work / "chromium.stderr"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    tail = [l for l in lines if ":dbus/" not in l][-n:]
    if tail:
        print("      chromium stderr (last lines, dbus noise left out):\n        " + "\n        ".join(tail))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report")
    ap.add_argument("artifact_dir")
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--min-charts", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0, help="browser session limit, seconds")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to keep listening after onload")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=4000, help="minimum screenshot height")
    ap.add_argument("--workdir", help="scratch directory (profile, NetLog); default: a new temp dir")
    ap.add_argument("--chromium-flag", action="append", default=[], metavar="FLAG",
                    help="extra Chromium flag, repeatable (a later --disable-features replaces ours)")
    ap.add_argument("--keep-netlog", action="store_true",
                    help="also keep the NetLog as ARTIFACT_DIR/report-netlog.json")
    ap.add_argument("--started-at", type=float, help="epoch seconds the caller started (for the total time)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    started = time.monotonic() - (time.time() - args.started_at if args.started_at else 0)
    # SIGTERM (from timeout(1), CI cancelling) unwinds through the finally clauses, so Chromium
    # is killed and the scratch directory removed.
    def stop(*_):
        raise Fail("stopped by SIGTERM")
    signal.signal(signal.SIGTERM, stop)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="check-report."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        failed, total, browser_s, shot = run(args, work)
    except Fail as e:
        print("FAIL  browser    %s" % e)
        print_stderr_tail(work, 10)
        print("check-report: BROKEN, the browser session failed - %s" % args.report)
        return 2
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    took = "%.1f s (browser %.1f s)" % (time.monotonic() - started, browser_s)
    if failed:
        print("check-report: FAILED %d of %d checks (%s) in %s - screenshot: %s"
              % (len(failed), total, ", ".join(failed), took, shot))
        return 1
    print("check-report: OK, all %d checks passed in %s - screenshot: %s" % (total, took, shot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
