"""Counters for /v1/status and /metrics, kept in the one gunicorn worker process."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    """Thread-safe counters; read as a consistent snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()  # (path, status) -> count
        self.counts: Counter[str] = Counter()  # compiles, failed, busy, limits, bytes ...
        self.job_seconds = 0.0
        self.compile_seconds = 0.0

    def request(self, path: str, status: int) -> None:
        with self._lock:
            self.requests[(path, status)] += 1

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def job(self, total: float, compile_seconds: float) -> None:
        with self._lock:
            self.job_seconds += total
            self.compile_seconds += compile_seconds

    def snapshot(self) -> tuple[dict[tuple[str, int], int], dict[str, int], float, float]:
        with self._lock:
            return (
                dict(self.requests),
                dict(self.counts),
                self.job_seconds,
                self.compile_seconds,
            )


def prometheus(metrics: Metrics, gauges: dict[str, float]) -> str:
    """The Prometheus text exposition of the counters and the given gauges."""
    requests, counts, job_seconds, compile_seconds = metrics.snapshot()
    lines = [
        "# HELP pumpcc_worker_requests_total HTTP requests by path and status code.",
        "# TYPE pumpcc_worker_requests_total counter",
    ]
    for (path, status), n in sorted(requests.items()):
        lines.append(f'pumpcc_worker_requests_total{{path="{path}",code="{status}"}} {n}')
    counters = {
        "compiles": "Compiles run (any exit status).",
        "compile_failures": "Compiles that exited non-zero.",
        "limits_exceeded": "Compiles stopped by a resource limit.",
        "busy": "Requests answered 503 busy.",
        "bytes_received": "Request body bytes received.",
        "bytes_sent": "Response body bytes sent.",
        "blob_hits": "Job inputs already in the blob store.",
        "blob_misses": "Job inputs that had to be sent.",
    }
    for name, help_text in counters.items():
        metric = f"pumpcc_worker_{name}_total"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        lines.append(f"{metric} {counts.get(name, 0)}")
    for name, value, help_text in (
        ("job_seconds", job_seconds, "Wall time of compile requests, end to end."),
        ("compiler_seconds", compile_seconds, "Wall time of the compiler processes."),
    ):
        metric = f"pumpcc_worker_{name}_total"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        lines.append(f"{metric} {value:.6f}")
    for name, value in gauges.items():
        metric = f"pumpcc_worker_{name}"
        lines += [f"# TYPE {metric} gauge", f"{metric} {value}"]
    return "\n".join(lines) + "\n"
