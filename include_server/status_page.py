"""The status page: the live view of ``pumpcc --monitor`` in a browser, served on loopback.

A small read-only HTTP server in a daemon thread of the local server:

- ``GET /`` is one self-contained HTML page (no external assets) whose script polls
  ``/live.json`` every second and renders workers, compiles in progress, recent local runs with
  their reasons, and the main counters.  Every string reaches the page through ``textContent``,
  never as markup, so a source path cannot inject HTML; the Content-Security-Policy allows only
  the page's own inline script and style (by hash) and fetches to the same origin.
- ``GET /live.json`` is ``Server.live()`` plus ``now`` (the server's clock, so ages are right).

It listens on 127.0.0.1 only and answers only requests whose ``Host`` names loopback (a web page
elsewhere cannot read it through DNS rebinding).  Other local users can still connect to a TCP
port, so the page shows nothing a build log would not: paths, worker URLs, counters; never tokens.

``PUMPCC_STATUS_PORT``: a port number, ``0`` (the default) for any free port, or ``off``.  The
chosen URL is written to ``<runtime dir>/status.url`` for users and ``pumpcc --monitor --url``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

URL_FILE = "status.url"

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; min-width: 40em; }
th, td { text-align: left; padding: .2em .8em .2em 0; border-bottom: 1px solid #ddd; }
th { font-weight: 600; color: #555; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.empty { color: #888; font-style: italic; }
.up { color: #1a7f37; font-weight: 600; }
.down { color: #c62828; font-weight: 600; }
#error { color: #c62828; font-weight: 600; }
#updated { color: #666; }
meter { width: 10em; vertical-align: middle; }
dl { display: grid; grid-template-columns: max-content max-content; gap: .1em 1.2em; margin: 0; }
dd { margin: 0; font-variant-numeric: tabular-nums; }
"""

_SCRIPT = """
"use strict";
const $ = (id) => document.getElementById(id);

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(tbodyId, items, renderRow, emptyText) {
  const tbody = $(tbodyId);
  tbody.replaceChildren();
  if (!items.length) {
    const columns = tbody.parentElement.tHead.rows[0].cells.length;
    cell(tbody.insertRow(), emptyText, "empty").colSpan = columns;
    return;
  }
  for (const item of items) renderRow(tbody.insertRow(), item);
}

function bar(row, used, total) {
  const meter = document.createElement("meter");
  meter.min = 0;
  meter.max = Math.max(total, 1);
  meter.value = used;
  row.insertCell().append(meter, " " + used + " / " + total);
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString();
}

function workerRow(row, w) {
  cell(row, w.url);
  cell(row, w.state, w.state === "up" ? "up" : "down");
  cell(row, w.slots, "num");
  bar(row, w.in_flight, w.slots);
  cell(row, w.jobs, "num");
}

function counters(d) {
  const s = d.stats;
  const pairs = [
    ["compiles", s.compiles], ["remote", s.remote], ["local", s.local],
    ["compile errors", s.compile_errors], ["analyses", s.include_server.analyses],
    ["analysis gave up", s.include_server.gave_up],
    ["bytes sent", s.bytes_sent], ["bytes received", s.bytes_received],
  ];
  for (const [reason, n] of Object.entries(s.fallbacks)) pairs.push(["local: " + reason, n]);
  const dl = $("counters");
  dl.replaceChildren();
  for (const [name, value] of pairs) {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = String(value ?? 0);
    dl.append(dt, dd);
  }
}

function render(d) {
  $("error").textContent = d.config_error || "";
  fill("workers", d.workers, workerRow, "no workers configured");
  const local = $("workers").insertRow();
  cell(local, "local");
  cell(local, "");
  cell(local, d.local_slots, "num");
  bar(local, d.local_running, d.local_slots);
  cell(local, "");
  fill("jobs", d.jobs, (row, j) => {
    cell(row, j.source);
    cell(row, j.where);
    cell(row, (d.now - j.since).toFixed(1), "num");
  }, "no compile in progress");
  const recent = d.stats.recent_local.slice(-15).reverse();
  fill("recent", recent, (row, r) => {
    cell(row, clock(r.time));
    cell(row, r.source);
    cell(row, r.reason);
    cell(row, r.detail);
  }, "no local runs");
  counters(d);
}

async function poll() {
  const status = $("updated");
  try {
    const answer = await fetch("live.json", {cache: "no-store"});
    if (!answer.ok) throw new Error("HTTP " + answer.status);
    const d = await answer.json();
    render(d);
    status.textContent = "updated " + clock(d.now);
    status.className = "";
  } catch (e) {
    status.textContent = "local server unreachable (" + e.message + ")";
    status.className = "down";
  }
}

poll();
setInterval(poll, 1000);
"""

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pumpcc: live</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>pumpcc: live</h1>
<div id="updated">loading…</div>
<div id="error"></div>
<h2>Workers</h2>
<table>
<thead><tr>
<th>worker</th><th>state</th><th>slots</th><th>in flight</th><th>jobs done</th>
</tr></thead>
<tbody id="workers"></tbody>
</table>
<h2>Compiles in progress</h2>
<table>
<thead><tr><th>source</th><th>where</th><th>seconds</th></tr></thead>
<tbody id="jobs"></tbody>
</table>
<h2>Recent local runs</h2>
<table>
<thead><tr><th>time</th><th>source</th><th>reason</th><th>detail</th></tr></thead>
<tbody id="recent"></tbody>
</table>
<h2>Counters</h2>
<dl id="counters"></dl>
<script>{_SCRIPT}</script>
</body>
</html>
""".encode()


def _csp_hash(text: str) -> str:
    """The CSP source expression that allows exactly this inline block."""
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


_CSP = (
    f"default-src 'none'; script-src {_csp_hash(_SCRIPT)}; style-src {_csp_hash(_STYLE)}; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class _Handler(BaseHTTPRequestHandler):
    """Serves the page and its data; everything else is 404."""

    server: _StatusServer

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        if not self._host_is_loopback():
            self._send(421, "text/plain", b"wrong host\n")
        elif self.path == "/":
            self._send(200, "text/html; charset=utf-8", _PAGE)
        elif self.path.split("?", 1)[0] == "/live.json":
            self._send_live()
        else:
            self._send(404, "text/plain", b"not found\n")

    def _host_is_loopback(self) -> bool:
        """Refuse names other than loopback: defeats DNS rebinding from a web page."""
        port = self.server.server_address[1]
        allowed = {f"127.0.0.1:{port}", f"localhost:{port}"}
        return self.headers.get("Host", "") in allowed

    def _send_live(self) -> None:
        try:
            body = json.dumps({"now": time.time(), **self.server.live()}).encode()
        except Exception as e:  # the page says so; the local server carries on
            body = json.dumps({"error": f"{type(e).__name__}: {e}"}).encode()
            self._send(500, "application/json", body)
            return
        self._send(200, "application/json", body)

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: a page polling every second would otherwise fill server.log."""


class _StatusServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, live: Callable[[], dict]) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.live = live


def _port(env: Mapping[str, str]) -> int | None:
    """The port asked for by ``PUMPCC_STATUS_PORT``: None for ``off``; 0 for any."""
    value = env.get("PUMPCC_STATUS_PORT", "0").strip().lower()
    if value == "off":
        return None
    if not value.isdigit() or int(value) > 65535:
        raise ValueError(f"PUMPCC_STATUS_PORT: {value!r} is not a port number, 0 or off")
    return int(value)


def start_status_page(live: Callable[[], dict], folder: str, env: Mapping[str, str]) -> str | None:
    """Serve the status page in a daemon thread; return its URL, or None if off or failed.

    ``live`` returns what the page shows.  The local server passes ``Server.live`` bound to its
    own start-up cwd and environment (the config is looked up per cwd, and a status page has no
    cwd of its own), so the workers shown are those of the config the server was started under.
    A page that cannot start never stops the local server: it prints why (to server.log).
    """
    url_file = os.path.join(folder, URL_FILE)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(url_file)  # never leave a previous server's URL behind
    try:
        port = _port(env)
        if port is None:
            return None
        server = _StatusServer(port, live)
    except (ValueError, OSError) as e:
        print(f"pumpcc: status page not started: {e}", file=sys.stderr, flush=True)
        return None
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    threading.Thread(target=server.serve_forever, name="status-page", daemon=True).start()
    with open(url_file + ".tmp", "w") as f:
        f.write(url + "\n")
    os.replace(url_file + ".tmp", url_file)
    print(f"pumpcc status page on {url}", flush=True)
    return url
