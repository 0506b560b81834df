"""A bounded load test: 200 concurrent compiles against 4 slots."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.worker.support import encode, make_job, start_worker
from worker import wire

REQUESTS = 200


def _rss_kib(master_pid: int) -> int:
    """Resident memory of the gunicorn worker process (the master's child)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    total = 0
    for pid in [master_pid, *map(int, children)]:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total = max(total, int(line.split()[1]))
    return total


def test_200_concurrent_compiles(tmp_path: Path):
    (tmp_path / "a.c").write_text("int f(int x) { return x * 2; }\n")
    header, blobs = make_job(
        "gcc", ["-c", str(tmp_path / "a.c"), "-o", "a.o"], tmp_path, [tmp_path / "a.c"], ["a.o"]
    )
    body = encode(header, blobs)
    w = start_worker(tmp_path / "w", slots=4, queue_timeout=2.0)
    stop = threading.Event()
    status_times: list[float] = []
    rss: list[int] = []

    def watch_status() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                t = time.monotonic()
                resp = s.get(w.url + wire.PATH_STATUS, headers=w.headers(), timeout=20)
                assert resp.status_code == 200
                status_times.append(time.monotonic() - t)
                rss.append(_rss_kib(w.proc.pid))
                time.sleep(0.1)

    def one(_: int) -> int:
        resp = requests.post(w.url + wire.PATH_COMPILE, data=body, headers=w.headers(), timeout=60)
        if resp.status_code == 200:
            assert wire.decode_result(resp.content)[0]["exit"] == 0
        return resp.status_code

    watcher = threading.Thread(target=watch_status)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
            codes = list(pool.map(one, range(REQUESTS)))
    finally:
        stop.set()
        watcher.join()
    try:
        assert len(codes) == REQUESTS
        assert set(codes) <= {200, 503}, codes
        assert codes.count(200) >= 4
        status = w.get(wire.PATH_STATUS).json()
        assert status["jobs"]["compiles"] == codes.count(200)
        assert status["jobs"]["busy"] == codes.count(503)
        assert status["in_flight"] == 0 and status["queued"] == 0
        assert status_times and max(status_times) < 15
        assert max(rss) < 300 * 1024, f"worker RSS peaked at {max(rss)} KiB"
        assert list((w.scratch / "jobs").iterdir()) == []
    finally:
        assert w.stop() == 0
