"""Scheduling over several real workers on loopback, some of them unfit for work.

Each build is a Ninja file of N copies of tests/cases/e2e/many_files's unit (a fifth of a second of
GCC each), written straight into build.ninja so a test pays no CMake configure.  The client's YAML
sets short timeouts so that a hung worker would show as seconds lost per job if it cost that.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import CASES, Client, Worker, free_port, ninja, start_ninja

MANY = CASES / "e2e" / "many_files"


def write_project(folder: Path, units: int, compiler: str = "gcc") -> Path:
    """A build.ninja compiling ``units`` translation units through pumpcc; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    template = (MANY / "unit.c.in").read_text()
    lines = [
        "rule cc",
        f"  command = pumpcc {compiler} -O2 -I{MANY} -c $in -o $out",
        "  description = CC $out",
    ]
    for n in range(1, units + 1):
        source = folder / f"unit{n}.c"
        source.write_text(template.replace("@N@", str(n)))
        lines.append(f"build unit{n}.o: cc {source}")
    (folder / "build.ninja").write_text("\n".join(lines) + "\n")
    return folder


def configure(client: Client, workers: list[tuple[str, int]], **keys: object) -> None:
    """Give ``client`` a YAML with these (url, slots) workers and keys, instead of PUMPCC_HOSTS."""
    lines = ["workers:"] + [f"  - {{url: {url}, slots: {slots}}}" for url, slots in workers]
    lines += [f"{key}: {value}" for key, value in keys.items()]
    Path(client.env["PUMPCC_CONFIG"]).write_text("\n".join(lines) + "\n")
    client.env["PUMPCC_HOSTS"] = ""


def status(worker: Worker) -> dict:
    """The worker's own ``GET /v1/status``."""
    with urllib.request.urlopen(worker.url + "/v1/status", timeout=5) as answer:
        return json.loads(answer.read())


def jobs_of(stats: dict, *workers: Worker) -> list[int]:
    """Jobs per worker from ``pumpcc --stats --json``."""
    return [stats["workers"].get(w.url, {}).get("jobs", 0) for w in workers]


def wait_for(predicate, timeout: float, what: str) -> None:
    """Poll ``predicate`` until true, failing with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class HungWorker:
    """Accepts TCP connections like a worker, notes each request line, and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests: list[str] = []
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._note, args=(conn,), daemon=True).start()

    def _note(self, conn: socket.socket) -> None:
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n" not in data and (chunk := conn.recv(4096)):
                data += chunk
        self.requests.append(data.split(b"\r\n", 1)[0].decode("latin-1"))

    def close(self) -> None:
        """Stop listening and drop every connection."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in self._conns:
            conn.close()


def occupy(worker: Worker) -> socket.socket:
    """Hold a worker's slot with a compile request whose body never comes."""
    sock = socket.create_connection(("127.0.0.1", worker.port))
    sock.sendall(
        b"POST /v1/compile HTTP/1.1\r\nHost: w\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 1000000\r\n\r\n"
    )
    wait_for(lambda: status(worker)["in_flight"] == worker.slots, 10, "the slot to be taken")
    return sock


@pytest.fixture
def make_worker(tmp_path):
    """Start real workers on loopback; all stopped (and resumed first, if paused) at the end."""
    made: list[Worker] = []

    def make(name: str, slots: int, **kw: object) -> Worker:
        worker = Worker(tmp_path / name, slots=slots, **kw)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        if worker.proc and worker.proc.poll() is None:
            os.killpg(worker.proc.pid, signal.SIGCONT)
        worker.stop()


def test_jobs_follow_slots_and_skip_busy_mismatched_and_hung_workers(
    tmp_path, make_worker, client_for
):
    small, large = make_worker("small", 1), make_worker("large", 3)
    busy = make_worker("busy", 1, queue_timeout=0.05, max_queued=0)
    # A worker whose allowlisted `gcc` is really clang: the name matches, the identity does not.
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "gcc").symlink_to("/usr/bin/clang")
    clang_env = dict(os.environ, PATH=f"{fake_bin}:/usr/bin:/bin")
    mismatched = make_worker("mismatched", 4, env=clang_env, compilers="[gcc]")
    assert (
        status(mismatched)["compilers"]["gcc"]["version"]
        != status(small)["compilers"]["gcc"]["version"]
    )
    hung = HungWorker()
    held = occupy(busy)
    client = client_for()
    workers = [small, large, busy, mismatched]
    configure(
        client,
        [(w.url, w.slots) for w in workers] + [(hung.url, 4)],
        connect_timeout=1,
        compile_timeout=5,
    )
    build = write_project(tmp_path / "build", 48)
    try:
        started = time.monotonic()
        ninja(build, client.env, "-j6")
        took = time.monotonic() - started
        assert status(busy)["in_flight"] == 1  # still held all along
    finally:
        held.close()
        hung.close()

    stats = client.stats()
    assert (stats["compiles"], stats["remote"], stats["local"]) == (48, 48, 0), stats["fallbacks"]
    n_small, n_large = jobs_of(stats, small, large)
    assert n_small + n_large == 48
    # In proportion to slots (1 : 3), within 20%.
    assert abs(n_small - 12) <= 12 * 0.2 and abs(n_large - 36) <= 36 * 0.2, (n_small, n_large)
    # The busy worker was tried and said so; nothing ran there and nothing waited on it.
    assert stats["workers"][busy.url].get("jobs", 0) == 0
    assert stats["workers"][busy.url]["busy"] >= 1
    # The mismatched worker was skipped before any job was sent (no 409, not a byte).
    assert mismatched.url not in stats["workers"]
    assert status(mismatched)["jobs"]["compiles"] == 0
    # The hung worker only ever saw status checks, and no job waited for one.
    assert hung.requests and all(r.startswith("GET /v1/status ") for r in hung.requests)
    assert hung.url not in stats["workers"]
    assert took < 48 * 1.0, took  # far less than one connect timeout per job


def test_hung_worker_costs_its_timeout_once(tmp_path, make_worker, client_for):
    steady, hanging = make_worker("steady", 2), make_worker("hanging", 2)
    client = client_for()
    timeout = 3
    configure(
        client,
        [(steady.url, 2), (hanging.url, 2)],
        connect_timeout=1,
        compile_timeout=timeout,
    )
    build = write_project(tmp_path / "build", 40)
    proc = start_ninja(build, client.env, 4)
    wait_for(lambda: jobs_of(client.stats(), hanging)[0] >= 3, 60, "jobs on the second worker")
    os.killpg(hanging.proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
    stopped = time.monotonic()
    out, _ = proc.communicate(timeout=300)
    after_stop = time.monotonic() - stopped
    assert proc.returncode == 0, out

    stats = client.stats()
    assert (stats["remote"], stats["local"]) == (40, 0), stats["fallbacks"]
    # Only the jobs in flight there when it hung timed out (each retried once on the other
    # worker); every later job went straight to the other worker.
    assert 1 <= stats["retries"] <= hanging.slots, stats
    assert stats["workers"][hanging.url]["errors"] == stats["retries"]
    # Waiting per job would take at least (jobs left / slots) timeouts; this is one timeout
    # plus the remaining compiles on one worker, with room for a loaded machine.
    assert after_stop < 40 / 2 * timeout, after_stop


def test_stopped_worker_is_used_again_once_back(tmp_path, make_worker, client_for):
    first, second = make_worker("first", 2), make_worker("second", 2)
    client = client_for()
    configure(client, [(first.url, 2), (second.url, 2)], connect_timeout=1)
    build = write_project(tmp_path / "build", 30)
    proc = start_ninja(build, client.env, 4)
    wait_for(lambda: jobs_of(client.stats(), second)[0] >= 3, 60, "jobs on the second worker")
    second.kill()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    stats = client.stats()
    assert (stats["remote"], stats["local"]) == (30, 0), stats["fallbacks"]

    second.start()  # same port, same config
    client.pumpcc("--zero-stats")

    def back() -> bool:
        frame = client.pumpcc("--monitor", "--once").stdout.decode()
        return bool(re.search(rf"^{re.escape(second.url)}\s+up\b", frame, re.M))

    wait_for(back, 60, "the restarted worker to be found up")  # no --hosts: that would probe
    ninja(build, client.env, "-t", "clean")
    ninja(build, client.env, "-j4")
    stats = client.stats()
    assert (stats["remote"], stats["local"]) == (30, 0), stats["fallbacks"]
    assert all(n >= 5 for n in jobs_of(stats, first, second)), stats["workers"]


def test_j64_with_every_worker_down_runs_at_most_local_slots_compilers(tmp_path, client_for):
    # The compiler notes when each compile starts and ends, independently of pumpcc's counters.
    spans = tmp_path / "spans"
    spans.mkdir()
    wrapper = tmp_path / "bin" / "gcc"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        'start=$(date +%s%N); /usr/bin/gcc "$@"; status=$?\n'
        f'case " $* " in *" -c "*) echo "$start $(date +%s%N)" > {spans}/$$;; esac\n'
        "exit $status\n"
    )
    wrapper.chmod(0o755)
    client = client_for()
    down = [(f"http://127.0.0.1:{free_port()}", 8) for _ in range(3)]
    configure(client, down, local_slots=3, connect_timeout=1)
    build = tmp_path / "build"
    build.mkdir()
    lines = ["rule cc", f"  command = pumpcc {wrapper} -c $in -o $out"]
    for n in range(96):
        (build / f"s{n}.c").write_text(f"int f{n}(int x) {{ return x * {n}; }}\n")
        lines.append(f"build s{n}.o: cc s{n}.c")
    (build / "build.ninja").write_text("\n".join(lines) + "\n")

    ninja(build, client.env, "-j64")

    events = []
    for span in spans.iterdir():
        start, end = map(int, span.read_text().split())
        events += [(start, 1), (end, -1)]
    running = peak = 0
    for _, step in sorted(events):  # an end at the same instant as a start counts first
        running += step
        peak = max(peak, running)
    assert len(events) == 2 * 96
    assert 1 <= peak <= 3, peak
    stats = client.stats()
    assert stats["fallbacks"] == {"no_workers": 96}
    assert stats["server"]["local_peak"] <= 3
