"""``pumpcc --stats``, ``--hosts``, ``--jobs`` and the other commands that are not a compile.

Not on the per-compile path, so it may import what it likes.
"""

from __future__ import annotations

import json
import os
import sys

from adapter import launcher, local_wire

VERSION = "0.1.0"

USAGE = """\
usage: pumpcc COMPILER ARGS...        compile through pumpcc (set as CMAKE_<LANG>_COMPILER_LAUNCHER)
       pumpcc --stats [--json]        counters of the local server
       pumpcc --zero-stats            reset those counters
       pumpcc --hosts                 the configured workers and their state
       pumpcc --jobs                  the -j that keeps every worker busy
       pumpcc --monitor [--once]      live view: workers, compiles in progress, local runs
       pumpcc --start-server          start the local server if it is not running
       pumpcc --stop-server           stop the local server
       pumpcc --version | --help

Environment: PUMPCC_CONFIG, PUMPCC_HOSTS, PUMPCC_FALLBACK, PUMPCC_DISABLE, PUMPCC_VERBOSE,
PUMPCC_STATUS_PORT (see README.md).
"""


def request(kind: str, start: bool = True) -> dict:
    """Send a control request to the local server and return its JSON answer."""
    sock = launcher.connect_server(os.environ, start=start)
    try:
        sock.sendall(local_wire.encode_request(kind, os.getcwd(), 0o22, [], dict(os.environ)))
        reply = launcher._recv_message(sock)
    finally:
        sock.close()
    if not reply or reply[0] != local_wire.JSON:
        raise OSError("the local server gave no answer")
    return json.loads(reply[1:])


def format_stats(stats: dict) -> str:
    """The human-readable ``pumpcc --stats``."""
    lines = [
        f"compiles           {stats['compiles']}",
        f"  remote           {stats['remote']}",
        f"  local            {stats['local']}",
        f"  cache hits       {stats['cache_hits']}",
        *_cache_levels(stats.get("cache")),
        f"compile errors     {stats.get('compile_errors', 0)}",
        f"analyses           {stats['include_server']['analyses']}",
        f"  gave up          {stats['include_server']['gave_up']}",
        f"bytes sent         {stats.get('bytes_sent', 0)}",
        f"bytes received     {stats.get('bytes_received', 0)}",
        f"retries            {stats.get('retries', 0)}",
    ]
    times = stats.get("time_ms", {})
    phases = ("analysis", "transfer", "compile")
    spent = "  ".join(f"{p} {times.get(p, 0) / 1000:.1f}" for p in phases)
    lines.append(f"time (s)           {spent}")
    if stats["fallbacks"]:
        lines.append("local, by reason:")
        for reason, count in sorted(stats["fallbacks"].items(), key=lambda kv: -kv[1]):
            lines.append(f"  {reason:<17}{count}")
    if stats.get("workers"):
        lines.append("workers:")
        for url, counts in sorted(stats["workers"].items()):
            jobs, errors = counts.get("jobs", 0), counts.get("errors", 0)
            busy = counts.get("busy", 0)
            lines.append(f"  {url:<30} jobs {jobs:<6} errors {errors:<4} busy {busy}")
    return "\n".join(lines)


def _cache_levels(cache: dict | None) -> list[str]:
    """Hits and misses of each result cache level, when the cache was asked at all."""
    if not cache or not any(cache.values()):
        return []
    return [
        f"    local          {cache['local_hits']} hits, {cache['local_misses']} misses",
        f"    shared         {cache['remote_hits']} hits, {cache['remote_misses']} misses"
        f", {cache['remote_stores']} stored",
    ]


def format_hosts(answer: dict) -> str:
    """The rows of ``pumpcc --hosts``."""
    if "error" in answer:
        return answer["error"]
    rows = [f"{'worker':<32} {'slots':>5} {'in flight':>9}  state"]
    for h in answer["hosts"]:
        rows.append(f"{h['url']:<32} {h['slots']:>5} {h['in_flight']:>9}  {h['state']}")
    rows.append(f"{'local':<32} {answer['local_slots']:>5}")
    return "\n".join(rows)


def main(args: list[str]) -> int:
    """Run one of the non-compile commands; returns the exit status."""
    if not args or args[0] in ("--help", "-h"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    command = args[0]
    if command == "--monitor":
        from adapter import monitor

        return monitor.main(args[1:])
    try:
        if command == "--version":
            print(f"pumpcc {VERSION}")
        elif command == "--stats":
            stats = request("stats")
            print(json.dumps(stats, indent=1) if "--json" in args[1:] else format_stats(stats))
        elif command == "--zero-stats":
            request("zero")
        elif command == "--hosts":
            answer = request("hosts")
            print(format_hosts(answer))
            return 1 if "error" in answer else 0
        elif command == "--jobs":
            answer = request("jobs")
            if "error" in answer:
                print(answer["error"], file=sys.stderr)
                return 1
            print(answer["jobs"])
        elif command == "--start-server":
            request("ping")
        elif command == "--stop-server":
            try:
                request("stop", start=False)
            except OSError:
                print("pumpcc: no local server is running")
        else:
            print(f"pumpcc: unknown option {command!r}; see pumpcc --help", file=sys.stderr)
            return 2
    except OSError as e:
        print(f"pumpcc: cannot reach the local server: {e}", file=sys.stderr)
        return 1
    return 0
