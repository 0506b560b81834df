"""``pumpcc --monitor``: a live terminal view of the local server, like ``distccmon-text``.

One frame per ``--interval`` seconds, redrawn in place with plain ANSI sequences (no curses: it
works in any terminal, in ``watch``-less CI logs with ``--once``, and through ``ssh``).  A frame is
what ``Server.live()`` returns for this shell's folder and environment: each worker with its
state and an in-flight bar, the compiles in progress, the recent local runs with their reasons,
and the main counters.

The monitor never starts a local server (watching must not change what it watches): until one
runs it says so and keeps polling.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

from adapter import cli, launcher

USAGE = """\
usage: pumpcc --monitor [--interval SECONDS] [--once] [--url]
  --interval S   seconds between frames (default 1)
  --once         print one frame and exit (for scripts and tests)
  --url          print the URL of the status page the local server serves, and exit
"""
CLEAR_SCREEN = "\x1b[2J"
CURSOR_HOME = "\x1b[H"
CLEAR_TO_END_OF_LINE = "\x1b[K"
CLEAR_BELOW = "\x1b[J"
NO_SERVER = "pumpcc monitor: no local server is running (the first compile starts it)"
RECENT_LINES = 8


def bar(used: int, total: int, width: int = 16) -> str:
    """An in-flight bar like ``[####....]``: full when every slot is busy."""
    total = max(total, 1)
    filled = min(width, round(width * used / total))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def render(live: dict, now: float, width: int | None = None) -> str:
    """One frame of the monitor as text (no escape sequences), lines fitted to ``width``."""
    lines = [f"pumpcc monitor   {time.strftime('%H:%M:%S', time.localtime(now))}"]
    if live.get("config_error"):
        lines.append(f"config error: {live['config_error']}")
    lines += ["", f"{'worker':<32} {'state':<10} {'in flight':>9}  {'':<18} {'jobs':>6}"]
    for w in live["workers"]:
        used = f"{w['in_flight']}/{w['slots']}"
        row = f"{w['url']:<32} {w['state']:<10} {used:>9}  {bar(w['in_flight'], w['slots'])}"
        lines.append(f"{row} {w['jobs']:>6}")
    if not live["workers"]:
        lines.append("(no workers configured)")
    used = f"{live['local_running']}/{live['local_slots']}"
    lines.append(
        f"{'local':<32} {'':<10} {used:>9}  {bar(live['local_running'], live['local_slots'])}"
    )
    lines += ["", f"compiles in progress: {len(live['jobs'])}"]
    for job in live["jobs"]:
        head = f"  {now - job['since']:6.1f}s  {job['where']:<24} "
        lines.append(head + _keep_tail(job["source"], width, len(head)))
    stats = live["stats"]
    recent = stats.get("recent_local", [])[-RECENT_LINES:]
    if recent:
        lines += ["", "recent local runs:"]
        for r in reversed(recent):
            stamp = time.strftime("%H:%M:%S", time.localtime(r["time"]))
            lines.append(f"  {stamp}  {r['reason']:<18} {r['source']}  {r['detail']}")
    lines += ["", _counters(stats)]
    return "\n".join(line[:width] for line in lines)


def _keep_tail(path: str, width: int | None, used: int) -> str:
    """``path`` cut from the left to fit after ``used`` columns: the file name is what tells."""
    room = None if width is None else max(width - used, 8)
    if room is None or len(path) <= room:
        return path
    return "…" + path[-(room - 1) :]


def _counters(stats: dict) -> str:
    """The one-line summary under the tables: what ran where since the counters were zeroed."""
    by_reason = ", ".join(f"{k} {v}" for k, v in sorted(stats["fallbacks"].items()))
    line = (
        f"compiles {stats['compiles']}  remote {stats['remote']}  local {stats['local']}"
        f"  errors {stats.get('compile_errors', 0)}"
    )
    return f"{line}  (local: {by_reason})" if by_reason else line


def frame() -> str | None:
    """The current frame, or None when no local server runs."""
    try:
        live = cli.request("live", start=False)
    except OSError:
        return None
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    return render(live, time.time(), width)


def status_url() -> str | None:
    """The running local server's status page URL, from ``status.url`` in its folder."""
    try:
        cli.request("ping", start=False)  # a URL left by a crashed server is no use
        with open(os.path.join(launcher.runtime_dir(os.environ), "status.url")) as f:
            return f.read().strip() or None
    except OSError:
        return None


def _parse(args: list[str]) -> tuple[float, bool, bool]:
    """``(interval, once, url)`` from the arguments after ``--monitor``; ValueError if bad."""
    interval, once, url = 1.0, False, False
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--once":
            once = True
        elif arg == "--url":
            url = True
        elif arg == "--interval" and rest:
            interval = float(rest.pop(0))
            if not interval > 0:
                raise ValueError("--interval must be a positive number of seconds")
        else:
            raise ValueError(f"unknown argument {arg!r}")
    return interval, once, url


def main(args: list[str]) -> int:
    """Run ``pumpcc --monitor``; Ctrl-C ends it with status 0."""
    try:
        interval, once, url = _parse(args)
    except ValueError as e:
        sys.stderr.write(f"pumpcc --monitor: {e}\n{USAGE}")
        return 2
    if url:
        found = status_url()
        print(found or "pumpcc: no status page (no local server, or PUMPCC_STATUS_PORT=off)")
        return 0 if found else 1
    if once:
        text = frame()
        print(text or NO_SERVER)
        return 0 if text else 1
    try:
        sys.stdout.write(CLEAR_SCREEN)
        while True:
            # Overwrite in place rather than clear each time: no flicker between frames.
            text = (frame() or NO_SERVER).replace("\n", CLEAR_TO_END_OF_LINE + "\n")
            sys.stdout.write(CURSOR_HOME + text + CLEAR_TO_END_OF_LINE + CLEAR_BELOW)
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        return 0
