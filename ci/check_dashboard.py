#!/usr/bin/env python3
"""Use a running fleet's live dashboard in headless Chromium as an operator would.

Usage: check_dashboard.py --admin ORIGIN --login-url URL --token-file PATH [--servers N]
                          [--screenshot PATH] [--chromium BIN] [--timeout S] [--workdir DIR]
Normally run through ci/check-dashboard.sh, which starts the fleet and installs Chromium first.
Standard library only; the DevTools protocol plumbing (a pipe, not a port), the flags that keep
Chromium off the network, the PNG decoder and the NetLog reading are ci/check_report.py's.

The page contract checked (ORIGIN is the admin API, e.g. http://127.0.0.1:7900):
  - the login URL (ORIGIN/#token=...) signs the page in: it trades the one-time token for a
    session secret (kept in its origin's localStorage as `mcpfleet-session`), says "actions
    enabled" in #auth and takes the token out of the address bar;
  - one element per server, [data-server="<id>"][data-state="<state>"], state one of starting,
    healthy, unhealthy, restarting, stopped, paused, faulted; every one on the first screen;
  - clicking a cell selects it and shows [data-action="kill"|"pause"|"resume"] for it; an
    action's error shows in [data-role="action-error"];
  - document.body.dataset.frames counts the server-sent-event frames applied (about 1 a second);
  - a POST with the session (header X-Mcpfleet-Session) is honoured only with the dashboard's
    own Origin.
Checks, each printed as one PASS/FAIL line:
  login       the login URL ends on ORIGIN/ (the token gone from the address bar), signed in;
  cells       exactly N [data-server] cells, all healthy, within 20 s;
  layout      every cell has a box and the grid fits the 1600x1000 viewport (no scrolling);
  screenshot  (with --screenshot) the viewport as a PNG, decoded here, not blank;
  frames      document.body.dataset.frames grows by >= 2 in 3 s;
  kill-api    a server killed through the admin API (bearer token) shows not healthy on its cell
              within 5 s and healthy again within 15 s after that;
  kill-page   the same through the page: click a cell, click its kill button (real mouse
              events), no action error;
  origin      from Python, the page's session with Origin http://127.0.0.1:1 gets 403 (or
              401), with no Origin anything but 2xx, sent as a cookie 401: the secret alone,
              away from the page, is not enough;
  console     no console.error/assert, uncaught exception, error-level log entry or failed load;
  network     every request the page made went to ORIGIN (or data:/blob:), and the NetLog shows
              nothing else asked for, no DNS lookup, no connection off the machine.
A cell's states are recorded by a MutationObserver (attribute old values included), so a
restart that is over in 40 ms, as in task isolation, still counts if the page showed it at all.
Exit status: 0 if every check passed, 1 if one failed, 2 if the browser session or the fleet
broke.
"""

import argparse
import base64
import json
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ left in ci/
sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_report import (  # noqa: E402  (ci/ is not a package)
    Cdp, Fail, close, console_problems, decode_png, end, launch, netlog_findings, open_page,
    print_stderr_tail, region_stats,
)

WIDTH, HEIGHT = 1600, 1000
SESSION_HEADER = "X-Mcpfleet-Session"
FOREIGN_ORIGIN = "http://127.0.0.1:1"
CELLS_WAIT, DOWN_WAIT, UP_WAIT, FRAMES_WINDOW = 20.0, 5.0, 15.0, 3.0
# check_report's flags map every host name and IP literal to "not found"; the fleet's admin API
# is on the loopback literal, so that one is let through (a later switch replaces the earlier).
RESOLVER_RULES = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


# ---------------------------------------------------------------------------------------------
# The admin API from Python (no proxy, redirects not followed: the status is the answer)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def post(url, headers):
    """(status, body text) of an empty POST; Fail (the fleet broke) if nothing answers."""
    req = urllib.request.Request(url, data=b"", method="POST", headers=headers)
    try:
        with HTTP.open(req, timeout=10) as r:
            return r.status, r.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(2000).decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        raise Fail("the admin API did not answer POST %s: %s" % (url, getattr(e, "reason", e)))


def history(admin, sid):
    """The fleet's own record of a server's transitions, for a failure's detail."""
    try:
        with HTTP.open("%s/servers/%s/history" % (admin, sid), timeout=5) as r:
            tr = json.load(r).get("transitions", [])[-5:]
        return ", ".join("%s (%s)" % (t.get("state"), t.get("reason")) for t in tr) or "none"
    except Exception as e:  # a diagnostic only
        return "unavailable (%s)" % e


# ---------------------------------------------------------------------------------------------
# Page probes

CELLS = r"""(() => {
  const cells = [...document.querySelectorAll('[data-server]')];
  const by = {};
  let bottom = 0, right = 0, boxless = 0;
  for (const c of cells) {
    const s = c.getAttribute('data-state');
    by[s] = (by[s] || 0) + 1;
    const r = c.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) { boxless++; continue; }
    bottom = Math.max(bottom, r.bottom + scrollY);
    right = Math.max(right, r.right + scrollX);
  }
  return JSON.stringify({n: cells.length, by, bottom, right, boxless,
    vh: innerHeight, vw: innerWidth, url: location.href,
    cells: WITH_IDS ? cells.map(c => [c.getAttribute('data-server'), c.getAttribute('data-state')]) : null});
})()"""

# Records every value a cell's data-state takes from now on, with page-clock times (ms) since
# the watch began: attribute old values give the ones a page set and reset within one task, and
# a cell replaced by a new element is looked up again.
WATCH = r"""((id) => {
  const sel = '[data-server="' + CSS.escape(id) + '"]';
  const cur = () => { const e = document.querySelector(sel); return e ? e.getAttribute('data-state') : null; };
  const w = {t0: performance.now(), log: [[0, cur()]]};
  const add = (s) => { if (s !== w.log[w.log.length - 1][1]) w.log.push([performance.now() - w.t0, s]); };
  w.obs = new MutationObserver(recs => {
    const mine = recs.filter(r => r.type === 'attributes' && r.attributeName === 'data-state'
                                  && r.target.getAttribute('data-server') === id);
    for (let i = 1; i < mine.length; i++) add(mine[i].oldValue);
    add(cur());
  });
  w.obs.observe(document.documentElement, {subtree: true, childList: true, attributes: true,
    attributeOldValue: true, attributeFilter: ['data-state', 'data-server']});
  (window.__dashboardCheck = window.__dashboardCheck || {})[id] = w;
  return w.log[0][1];
})(ID)"""

BOX = r"""((sel) => {
  const e = document.querySelector(sel);
  if (!e) return null;
  let r = e.getBoundingClientRect();
  if (r.width > 0 && (r.bottom > innerHeight || r.right > innerWidth || r.top < 0 || r.left < 0)) {
    e.scrollIntoView({block: 'center', inline: 'center'});
    r = e.getBoundingClientRect();
  }
  const s = getComputedStyle(e);
  return {x: r.left + r.width / 2, y: r.top + r.height / 2, w: r.width, h: r.height,
          shown: r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && !e.disabled};
})(SEL)"""


class Page:
    def __init__(self, cdp, sid):
        self.cdp, self.sid = cdp, sid

    def eval(self, expr):
        res = self.cdp.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, self.sid)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise Fail("page probe failed: %s" % ((d.get("exception") or {}).get("description") or d.get("text")))
        return res["result"].get("value")

    def cells(self, with_ids=False):
        return json.loads(self.eval(CELLS.replace("WITH_IDS", "true" if with_ids else "false")))

    def box(self, selector):
        return self.eval(BOX.replace("SEL", json.dumps(selector)))

    def click(self, x, y):
        """A real left click (move, press, release) at viewport coordinates."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            p = {"type": kind, "x": x, "y": y}
            if kind != "mouseMoved":
                p.update(button="left", buttons=1 if kind == "mousePressed" else 0, clickCount=1)
            self.cdp.call("Input.dispatchMouseEvent", p, self.sid)

    def watch(self, server):
        return self.eval(WATCH.replace("ID", json.dumps(server)))

    def watched(self, server):
        return self.eval("JSON.stringify((window.__dashboardCheck || {})[%s]?.log ?? null)" % json.dumps(server))

    def action_error(self):
        return self.eval("(() => { const e = document.querySelector('[data-role=\"action-error\"]');"
                         " return e ? e.textContent.trim() : ''; })()")

    def frames(self):
        v = self.eval("document.body ? document.body.dataset.frames ?? null : null")
        try:
            return int(v)
        except (TypeError, ValueError):
            return None


def down_and_up(page, server, started, admin):
    """Wait for a watched cell to leave healthy (DOWN_WAIT) and come back (UP_WAIT after that).
    Returns (ok, detail)."""
    down = up = None
    log = []
    until = started + DOWN_WAIT
    while time.monotonic() < until:
        page.cdp.pump(0.1)
        log = json.loads(page.watched(server) or "null")
        if log is None:
            return False, "the page was reloaded or replaced while %s was watched" % server
        for i, (t, s) in enumerate(log[1:], 1):
            if down is None and s != "healthy":
                down = (t, s, i)
            elif down is not None and up is None and i > down[2] and s == "healthy":
                up = t
        if down is not None and up is not None:
            break
        if down is not None:
            until = max(until, started + down[0] / 1000 + UP_WAIT)
    states = " -> ".join("%s@%.2fs" % (s, t / 1000) for t, s in log)
    if down is None:
        return False, ("%s: its cell stayed healthy for %.0f s after the kill (cell states: %s; "
                       "the fleet's history: %s)" % (server, DOWN_WAIT, states, history(admin, server)))
    if up is None:
        return False, ("%s: not healthy after %.2f s (%s) but not healthy again within %.0f s "
                       "(cell states: %s)" % (server, down[0] / 1000, down[1], UP_WAIT, states))
    return True, ("%s: cell not healthy after %.2f s (%s), healthy again after %.2f s (states: %s)"
                  % (server, down[0] / 1000, down[1], up / 1000, states))


# ---------------------------------------------------------------------------------------------


def check(args, work, record):
    """Drive the session, recording each check; returns (cdp events, admin origin)."""
    admin = args.admin.rstrip("/")
    token = Path(args.token_file).read_text().strip()
    if not token:
        raise Fail("the admin token file %s is empty" % args.token_file)
    args.chromium_flag = [RESOLVER_RULES, "--window-size=%d,%d" % (WIDTH, HEIGHT)]
    proc, wfd, rfd = launch(args, work)
    deadline = time.monotonic() + args.timeout
    try:
        cdp = Cdp(proc, wfd, rfd, deadline)
        sid = open_page(cdp, args.chromium, WIDTH, HEIGHT)
        page = Page(cdp, sid)

        # --- login: the one-time link signs the page in and leaves the address bar -------------
        nav = cdp.call("Page.navigate", {"url": args.login_url}, sid)
        if nav.get("errorText"):
            raise Fail("opening the login URL failed: %s" % nav["errorText"])
        if not cdp.wait_event("Page.loadEventFired", sid, 15):
            raise Fail("the dashboard did not finish loading within 15 s")
        statuses = {p["response"]["url"]: p["response"]["status"] for m, p, s in cdp.events
                    if m == "Network.responseReceived" and s == sid and p.get("type") == "Document"}
        session, auth, final = "", "", ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            session = page.eval("localStorage.getItem('mcpfleet-session') || ''")
            auth = page.eval("(document.getElementById('auth') || {}).textContent || ''")
            final = page.eval("location.href")
            if session and auth == "actions enabled":
                break
            cdp.pump(0.2)
        document = statuses.get(admin + "/", "no document response")
        ok = final == admin + "/" and document == 200 and bool(session) and auth == "actions enabled"
        record("login", ok, "login URL -> %s (document %s), page says %r, session %s" % (
            redact(final), document, auth, "kept by the page" if session else "none")
            + ("" if final == admin + "/" else "; want %s/" % admin))

        # --- cells: N of them, all healthy; the grid on one screen ----------------------------
        t0 = time.monotonic()
        while True:
            dom = page.cells()
            if dom["n"] == args.servers and dom["by"].get("healthy", 0) == args.servers:
                break
            if time.monotonic() - t0 > CELLS_WAIT:
                break
            cdp.pump(0.25)
        waited = time.monotonic() - t0
        dom = page.cells(with_ids=True)
        counts = ", ".join("%s %d" % (k, v) for k, v in sorted(dom["by"].items(), key=lambda kv: -kv[1]))
        all_healthy = dom["n"] == args.servers and dom["by"].get("healthy", 0) == args.servers
        record("cells", all_healthy, "%d [data-server] cells (want %d) after %.1f s: %s" % (
            dom["n"], args.servers, waited, counts or "none")
            + ("" if all_healthy else "; waited %.0f s for all %d healthy" % (CELLS_WAIT, args.servers)))
        fits = dom["n"] > 0 and not dom["boxless"] and dom["bottom"] <= dom["vh"] + 0.5 \
            and dom["right"] <= dom["vw"] + 0.5
        record("layout", fits, "grid of %d cells spans %.0fx%.0f px of the %dx%d viewport%s" % (
            dom["n"], dom["right"], dom["bottom"], dom["vw"], dom["vh"],
            "; %d cell(s) without a box" % dom["boxless"] if dom["boxless"] else "")
            + ("" if fits else "; the last cell is off the first screen" if dom["n"] else ""))

        # --- screenshot of the viewport -------------------------------------------------------
        if args.screenshot:
            shot = Path(args.screenshot)
            shot.parent.mkdir(parents=True, exist_ok=True)
            data = cdp.call("Page.captureScreenshot", {"format": "png", "optimizeForSpeed": True}, sid)["data"]
            shot.write_bytes(base64.b64decode(data))
            img = decode_png(shot.read_bytes())
            colours, nonwhite = region_stats(img, 0, 0, img[0], img[1])
            record("screenshot", colours >= 4 and nonwhite >= 0.01,
                   "%s %dx%d, %d bytes, %d colours, %.1f %% non-white" % (
                       shot, img[0], img[1], shot.stat().st_size, colours, 100 * nonwhite))

        # --- frames: live updates keep arriving -----------------------------------------------
        f0, t0 = page.frames(), time.monotonic()
        cdp.pump(FRAMES_WINDOW)
        f1, dt = page.frames(), time.monotonic() - t0
        ok = f0 is not None and f1 is not None and f1 - f0 >= 2
        record("frames", ok, "document.body.dataset.frames %s -> %s in %.1f s (want +2 or more)"
               % ("missing" if f0 is None else f0, "missing" if f1 is None else f1, dt))

        # --- which servers to kill: healthy cells, different ones ----------------------------
        healthy = [i for i, s in (dom["cells"] or []) if s == "healthy"]
        picks = [healthy[min(2, len(healthy) - 1)]] if healthy else []
        rest = [i for i in healthy if i not in picks]
        if rest:
            picks.append(rest[len(rest) // 2])
        rest = [i for i in healthy if i not in picks]
        origin_target = rest[-1] if rest else (picks[-1] if picks else "no-such-server")

        # --- kill through the admin API with the bearer token --------------------------------
        if not picks:
            record("kill-api", False, "no healthy cell to kill")
        else:
            server = picks[0]
            page.watch(server)
            started = time.monotonic()
            status, body = post("%s/servers/%s/kill" % (admin, server), {"Authorization": "Bearer " + token})
            if status != 200:
                record("kill-api", False, "POST /servers/%s/kill with the token: %d %s" % (server, status, body[:200]))
            else:
                ok, detail = down_and_up(page, server, started, admin)
                record("kill-api", ok, "POST /servers/%s/kill 200; %s" % (server, detail))

        # --- kill from the page: click the cell, then its kill button -------------------------
        if len(picks) < 2:
            record("kill-page", False, "no second healthy cell to kill")
        else:
            record("kill-page", *kill_from_page(page, picks[1], admin))

        # --- the page's session counts only from the page's origin ---------------------------
        if not session:
            record("origin", False, "no session to try: the sign-in gave the page none")
        else:
            url = "%s/servers/%s/kill" % (admin, origin_target)
            foreign, fbody = post(url, {SESSION_HEADER: session, "Origin": FOREIGN_ORIGIN})
            bare, bbody = post(url, {SESSION_HEADER: session})
            as_cookie, cbody = post(url, {"Cookie": "mcpfleet-session=" + session, "Origin": admin})
            ok = foreign in (401, 403) and not 200 <= bare < 300 and as_cookie == 401
            record("origin", ok, "POST /servers/%s/kill with the page's session: Origin %s -> %d "
                   "(want 403/401), no Origin -> %d (want not 2xx), as a cookie -> %d (want 401)%s" % (
                       origin_target, FOREIGN_ORIGIN, foreign, bare, as_cookie,
                       "" if ok else "; answers: %r, %r, %r" % (fbody[:120], bbody[:120], cbody[:120])))

        cdp.pump(0.3)  # late console messages and request events
        events = list(cdp.events)
        close(cdp, proc, deadline)
        return events, admin
    finally:
        end(proc, wfd, rfd)


def kill_from_page(page, server, admin):
    """Select `server` by clicking its cell, press the kill button; (ok, detail)."""
    sel = '[data-server="%s"]' % server.replace("\\", "\\\\").replace('"', '\\"')
    cell = page.box(sel)
    if not cell or not cell["shown"]:
        return False, "%s: its cell is not shown, nothing to click" % server
    page.click(cell["x"], cell["y"])
    button, until = None, time.monotonic() + 3
    while time.monotonic() < until:
        button = page.box('[data-action="kill"]')
        if button and button["shown"]:
            break
        page.cdp.pump(0.1)
    if not button or not button["shown"]:
        return False, ("%s: clicked its cell at (%.0f, %.0f); no visible [data-action=\"kill\"] "
                       "button within 3 s" % (server, cell["x"], cell["y"]))
    page.watch(server)
    started = time.monotonic()
    mark = len(page.cdp.events)
    page.click(button["x"], button["y"])
    ok, detail = down_and_up(page, server, started, admin)
    posts = [(p["response"]["url"], p["response"]["status"]) for m, p, s in page.cdp.events[mark:]
             if m == "Network.responseReceived" and s == page.sid and "/kill" in p["response"]["url"]]
    err = page.action_error()
    sent = ", ".join("%s %d" % (u.replace(admin, "") or "/", st) for u, st in posts) or "no kill request seen"
    if err:
        return False, "%s; the page shows an action error: %r (requests: %s)" % (detail, err[:300], sent)
    return ok, "clicked cell and kill button (%s); %s" % (sent, detail)


def redact(url):
    return re.sub(r"([?&#]token=)[^&#]*", r"\1...", url)


def run(args, work):
    results = []

    def record(name, ok, detail):
        results.append((name, ok))
        print("%s  %-10s %s" % ("PASS" if ok else "FAIL", name, detail), flush=True)

    t0 = time.monotonic()
    events, admin = check(args, work, record)
    browser_s = time.monotonic() - t0

    urls = {p.get("requestId"): p["request"]["url"] for m, p, _ in events if m == "Network.requestWillBeSent"}
    problems, warnings = console_problems(events, urls, redact)
    record("console", not problems,
           "no errors" if not problems else "%d error(s): %s" % (len(problems), " | ".join(problems[:6])))
    for w in warnings[:6]:
        print("      warning (not failing): %s" % w)

    urls = set()
    for m, p, _ in events:
        if m == "Network.requestWillBeSent":
            urls.add(p["request"]["url"])
        elif m == "Network.webSocketCreated":
            urls.add(p.get("url", "?"))
    own = lambda u: u == admin or u.startswith(admin + "/") or u.lower().startswith(("data:", "blob:", "about:"))
    foreign = sorted(redact(u) for u in urls if not own(u))
    netlog = work / "netlog.json"
    net, notes = ["NetLog missing (Chromium did not write %s)" % netlog], []
    if netlog.exists():
        try:
            net, notes = netlog_findings(netlog)
        except (json.JSONDecodeError, OSError) as e:
            net = ["NetLog unreadable: %s" % e]
    # check_report counts any http: request (and Chromium's preconnect ahead of a navigation) as
    # going off the machine; the dashboard's own origin is not.
    own_net = re.compile(r"(page request|preconnect to) %s(/|\s|$)" % re.escape(admin))
    net = [f for f in net if not own_net.match(f)]
    ok = not foreign and not net
    record("network", ok, "the page's %d distinct URL(s) were all on %s; NetLog: nothing else "
           "requested, no DNS lookup, no remote connect" % (len(urls), admin) if ok else "; ".join(filter(None, [
               "page requested (DevTools): " + ", ".join(foreign[:6]) if foreign else "",
               "NetLog: " + ", ".join(redact(n) for n in net[:6]) if net else ""])))
    for n in notes:
        if admin + "/" not in n:  # Chromium fetching the dashboard is no news
            print("      note: %s" % n)

    failed = [n for n, ok in results if not ok]
    if failed and args.verbose:
        print_stderr_tail(work, 15)
    return failed, len(results), browser_s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--admin", required=True, help="the admin API's origin, http://127.0.0.1:PORT")
    ap.add_argument("--login-url", required=True, help="the dashboard URL `fleet up` printed")
    ap.add_argument("--token-file", required=True, help="the admin token file `fleet up` wrote")
    ap.add_argument("--servers", type=int, default=500, help="cells the page must show")
    ap.add_argument("--screenshot", help="save a PNG of the viewport here")
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--timeout", type=float, default=90.0, help="browser session limit, seconds")
    ap.add_argument("--workdir", help="scratch directory (profile, NetLog); default: a new temp dir")
    ap.add_argument("--started-at", type=float, help="epoch seconds the caller started (for the total time)")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    started = time.monotonic() - (time.time() - args.started_at if args.started_at else 0)

    def stop(*_):
        raise Fail("stopped by SIGTERM")
    signal.signal(signal.SIGTERM, stop)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="check-dashboard."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        failed, total, browser_s = run(args, work)
    except Fail as e:
        print("FAIL  browser    %s" % e)
        print_stderr_tail(work, 10)
        print("check-dashboard: BROKEN, the browser session or the fleet failed - %s" % args.admin)
        return 2
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    took = "%.1f s (browser %.1f s)" % (time.monotonic() - started, browser_s)
    shot = " - screenshot: %s" % args.screenshot if args.screenshot else ""
    if failed:
        print("check-dashboard: FAILED %d of %d checks (%s) in %s%s"
              % (len(failed), total, ", ".join(failed), took, shot))
        return 1
    print("check-dashboard: OK, all %d checks passed in %s%s" % (total, took, shot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
