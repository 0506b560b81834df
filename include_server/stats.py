"""The counters behind ``pumpcc --stats``: what ran where, why, and what it cost.

Every local run has a reason, and every reason is a counter (README: "Why a compile ran locally").
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

# Result cache outcomes per level (README "Result cache"); hits of both levels add to cache_hits.
_CACHE_COUNTERS = (
    "local_hits",
    "local_misses",
    "remote_hits",
    "remote_misses",
    "remote_stores",
    "uncacheable",
)


class Stats:
    """Thread-safe counters since the server started or was last zeroed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.zero()

    def zero(self) -> None:
        """Reset every counter (``pumpcc --zero-stats``)."""
        with self._lock:
            self.since = time.time()
            self.counts: Counter[str] = Counter()
            self.fallbacks: Counter[str] = Counter()
            self.gave_up: Counter[str] = Counter()
            self.times_ms: Counter[str] = Counter()
            self.workers: dict[str, Counter[str]] = {}
            self.recent: deque[dict] = deque(maxlen=50)
            self.recent_remote: deque[dict] = deque(maxlen=50)

    def add(self, **counts: int) -> None:
        """Add to top-level counters (compiles, remote, local, analyses, bytes_sent, ...)."""
        with self._lock:
            self.counts.update(counts)

    def local(self, reason: str, detail: str = "", source: str = "") -> None:
        """Count a compile that ran here, under its reason."""
        with self._lock:
            self.counts["local"] += 1
            self.fallbacks[reason] += 1
            self.recent.append(
                {"time": time.time(), "reason": reason, "detail": detail, "source": source}
            )

    def remote(
        self, source: str, worker: str, exit_code: int, total_ms: float, times: dict
    ) -> None:
        """Count a compile a worker ran, its phase times, and keep it among the recent ones
        (whose per-phase times show where a slow compile spent its time)."""
        with self._lock:
            self.counts["remote"] += 1
            self.counts["compile_errors"] += exit_code != 0
            phases = {"total": total_ms}
            for phase in ("compile", "transfer"):
                phases[phase] = times.get(f"{phase}_ms", 0.0)
            self.times_ms.update({k: int(v) for k, v in phases.items()})
            self.recent_remote.append(
                {
                    "time": time.time(),
                    "source": source,
                    "worker": worker,
                    "total_ms": total_ms,
                    "times": times,
                }
            )

    def analysis_gave_up(self, reason: str) -> None:
        """Count an include analysis that could not cover its compile."""
        with self._lock:
            self.counts["gave_up"] += 1
            self.gave_up[reason.split(":", 1)[0]] += 1

    def timing(self, **ms: float) -> None:
        """Add time spent per phase (analysis, transfer, compile), in milliseconds."""
        with self._lock:
            self.times_ms.update({k: int(v) for k, v in ms.items()})

    def worker(self, url: str, **counts: int) -> None:
        """Add to one worker's counters (jobs, errors, bytes sent and received)."""
        with self._lock:
            self.workers.setdefault(url, Counter()).update(counts)

    def snapshot(self) -> dict:
        """The JSON document of ``pumpcc --stats --json`` (CONTRACT.md keys first)."""
        with self._lock:
            c = self.counts
            return {
                "compiles": c["compiles"],
                "remote": c["remote"],
                "local": c["local"],
                "cache_hits": c["cache_hits"],
                "cache": {k: c[f"cache_{k}"] for k in _CACHE_COUNTERS},
                "fallbacks": dict(self.fallbacks),
                "include_server": {
                    "analyses": c["analyses"],
                    "gave_up": c["gave_up"],
                    "gave_up_reasons": dict(self.gave_up),
                    "plain": c["plain"],  # of those, compiled remotely in plain mode
                },
                "compile_errors": c["compile_errors"],
                "retries": c["retries"],
                "bytes_sent": c["bytes_sent"],
                "bytes_received": c["bytes_received"],
                "time_ms": dict(self.times_ms),
                "workers": {url: dict(v) for url, v in self.workers.items()},
                "recent_local": list(self.recent),
                "recent_remote": list(self.recent_remote),
                "since": self.since,
            }
