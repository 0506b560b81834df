"""Resource limits, with a fake `gcc` first on the worker's PATH to misbehave on demand.

The fake answers the identity questions like the real GCC, so jobs reach it; the behaviour is
chosen per job with -DMODE=...  After every misbehaviour the worker must still compile.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.worker.support import Worker, make_job, remote_compile, start_worker

FAKE_GCC = r"""#!/bin/sh
case "$1" in
  -dumpfullversion|-dumpversion) /usr/bin/gcc "$1"; exit 0;;
  -dumpmachine) /usr/bin/gcc -dumpmachine; exit 0;;
  --version) echo "gcc (fake for pumpcc tests)"; exit 0;;
esac
out=a.o
for a in "$@"; do case "$a" in -DMODE=*) mode=${a#-DMODE=};; esac; done
case "$mode" in
  hang) sleep 1000;;
  flood) yes "flooding stdout with garbage";;
  cpu) while :; do :; done;;
  fork) for i in 1 2 3 4 5 6 7 8; do sleep 1234.5 & done; echo forked;;
  bomb) b() { b | b & }; b; sleep 2;;
  escape) setsid sleep 1234.6 & echo escaped;;
  bigfile) head -c 2147483648 /dev/zero > "$out";;
  slow) sleep 2; echo done > "$out";;
esac
"""


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Worker, Path]:
    tmp = tmp_path_factory.mktemp("limits")
    bindir = tmp / "bin"
    bindir.mkdir()
    (bindir / "gcc").write_text(FAKE_GCC)
    (bindir / "gcc").chmod(0o755)
    (tmp / "a.c").write_text("int main(void) { return 0; }\n")
    (tmp / "loop.h").write_text('#include "loop.h"\n')
    (tmp / "loop.c").write_text('#include "loop.h"\n')
    env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    w = start_worker(
        tmp / "w",
        env=env,
        compilers=["gcc", "clang"],
        slots=2,
        job_wall_seconds=5,  # well above the 1 s of CPU, even on a loaded machine
        job_cpu_seconds=1,
        job_output_bytes=1 << 20,
        job_processes=40,
    )
    yield w, tmp
    assert w.stop() == 0


def _run(w: Worker, tmp: Path, mode: str, compiler: str = "gcc"):
    args = [f"-DMODE={mode}", "-c", str(tmp / "a.c"), "-o", "a.o"]
    header, blobs = make_job(compiler, args, tmp, [tmp / "a.c"], ["a.o"])
    return remote_compile(w, header, blobs)


def _still_serving(w: Worker, tmp: Path) -> None:
    result, _, stderr, outputs = _run(w, tmp, "none", compiler="clang")
    assert result["exit"] == 0, stderr
    assert outputs["a.o"].startswith(b"\x7fELF")
    assert list((w.scratch / "jobs").iterdir()) == []


@pytest.mark.parametrize(
    "mode,limit",
    [
        ("hang", "wall_seconds"),
        ("flood", "output_bytes"),
        ("cpu", "cpu_seconds"),
        ("bigfile", "output_bytes"),
    ],
)
def test_limit_stops_compile(fake, mode: str, limit: str):
    w, tmp = fake
    start = time.monotonic()
    result, stdout, stderr, outputs = _run(w, tmp, mode)
    assert time.monotonic() - start < 15
    assert result["exit"] != 0
    assert result.get("limit_exceeded") == limit
    assert f"{limit} limit".encode() in stderr
    assert len(stdout) <= (1 << 20) and all(len(d) <= (1 << 20) for d in outputs.values())
    _still_serving(w, tmp)


def _sleepers(mark: str = "1234.5") -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid.isdigit() and cmd.startswith(b"sleep\x00" + mark.encode()):
            found.append(int(pid))
    return found


def _job_cgroups() -> list[Path]:
    """Job cgroups of any worker still present (each job's is removed when it ends)."""
    return [p for p in Path("/sys/fs/cgroup").glob("**/pumpcc-worker-*/job-*") if p.is_dir()]


def test_children_left_behind_are_killed(fake):
    w, tmp = fake
    result, stdout, _, _ = _run(w, tmp, "fork")
    assert result["exit"] == 0 and stdout == b"forked\n"
    deadline = time.monotonic() + 5
    while _sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sleepers() == []
    _still_serving(w, tmp)


def _process_limit(w: Worker) -> None:
    """Skip -- before anything forks -- where the worker found no pids cgroup to count in."""
    if w.get("/v1/status").json()["job_processes"] is None:
        pytest.skip("no writable pids cgroup here (see the worker's start-up log)")


def test_fork_bomb_is_bounded_and_killed(fake):
    w, tmp = fake
    _process_limit(w)
    result, _, stderr, _ = _run(w, tmp, "bomb")
    assert b"fork" in stderr.lower(), stderr  # the shell met the limit: "Cannot fork"
    assert _job_cgroups() == []
    _still_serving(w, tmp)


def test_processes_that_leave_the_session_are_killed(fake):
    w, tmp = fake
    _process_limit(w)
    result, stdout, _, _ = _run(w, tmp, "escape")
    assert stdout == b"escaped\n"
    assert _sleepers("1234.6") == []
    _still_serving(w, tmp)


def test_endless_include_loop_with_real_gcc(worker: Worker, tmp_path: Path):
    (tmp_path / "loop.h").write_text('#include "loop.h"\n')
    (tmp_path / "loop.c").write_text('#include "loop.h"\n')
    args = ["-c", str(tmp_path / "loop.c"), "-o", "loop.o"]
    files = [tmp_path / "loop.c", tmp_path / "loop.h"]
    header, blobs = make_job("gcc", args, tmp_path, files, ["loop.o"])
    result, _, stderr, outputs = remote_compile(worker, header, blobs)
    assert result["exit"] != 0 and b"nested depth" in stderr
    assert b"/jobs/" not in stderr and outputs == {}
