"""A worker whose system header differs from ours, or that lacks it, is never compiled on silently.

System headers (files under the compiler's default folders, here those of a --sysroot) travel
by digest only, and a worker whose own copy differs answers 409 system_header_mismatch.  The
workers are real ones with their own view of the sysroot: each runs in a mount namespace of its
own (unshare -m) where another folder is bind-mounted over the sysroot's include folder.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Worker

pytestmark = pytest.mark.skipif(
    subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0,
    reason="unshare -m (a mount namespace for a worker) is not permitted here",
)

SOURCE = "#include <x.h>\nint value(void) { return X_VALUE; }\n"
OURS, THEIRS = "#define X_VALUE 1\n", "#define X_VALUE 2\n"
MountedWorker = Callable[[str, int, Path | None], Worker]


def bind_mounted(over: Path, onto: Path) -> tuple[str, ...]:
    """A wrapper that gives the worker ``over`` at ``onto``, seen by no other process."""
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    return (
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        *map(str, (over, onto)),
    )


@pytest.fixture
def sysroot(tmp_path: Path) -> Path:
    """A sysroot holding one header, usr/include/x.h, and a source in a folder beside it."""
    root = tmp_path / "sysroot"
    (root / "usr" / "include").mkdir(parents=True)
    (root / "usr" / "include" / "x.h").write_text(OURS)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.c").write_text(SOURCE)
    return root


@pytest.fixture
def mounted_worker(tmp_path: Path, sysroot: Path) -> Iterator[MountedWorker]:
    """Start workers that compare headers under the sysroot; with ``include``, that folder is
    their usr/include.  Stopped at the end of the test."""
    started: list[Worker] = []

    def start(name: str, slots: int, include: Path | None) -> Worker:
        wrapper = bind_mounted(include, sysroot / "usr" / "include") if include else ()
        prefixes = f"[/usr/, /opt/, {sysroot}/]"
        worker = Worker(tmp_path / name, slots=slots, wrapper=wrapper, system_prefixes=prefixes)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def other_copies(tmp_path: Path) -> tuple[Path, Path]:
    """Include folders for two workers: one whose x.h differs, one without x.h."""
    differs, lacks = tmp_path / "differs", tmp_path / "lacks"
    differs.mkdir()
    lacks.mkdir()
    (differs / "x.h").write_text(THEIRS)
    return differs, lacks


def compile_args(sysroot: Path) -> list[str]:
    return ["gcc", f"--sysroot={sysroot}", "-O2", "-c", "main.c", "-o", "out.o"]


def local_object(tmp_path: Path, sysroot: Path) -> bytes:
    """The reference: the same compile run here, against our x.h."""
    src = tmp_path / "src"
    subprocess.run(compile_args(sysroot), cwd=src, check=True, capture_output=True)
    data = (src / "out.o").read_bytes()
    (src / "out.o").unlink()
    return data


def test_mismatching_workers_are_skipped(tmp_path, sysroot, mounted_worker, client_for):
    """The scheduler tries the biggest workers first: the two without our x.h, then the match."""
    differs, lacks = other_copies(tmp_path)
    workers = [
        mounted_worker("differs", 8, differs),
        mounted_worker("lacks", 6, lacks),
        mounted_worker("matches", 4, None),
    ]
    client = client_for(*workers, PUMPCC_FALLBACK="0")
    client.pumpcc("--hosts")  # every worker's status is in: the ranking alone decides the order
    expected = local_object(tmp_path, sysroot)

    client.pumpcc(*compile_args(sysroot), cwd=tmp_path / "src")

    assert (tmp_path / "src" / "out.o").read_bytes() == expected
    stats = client.stats()
    assert (stats["remote"], stats["local"]) == (1, 0)
    per_worker = [stats["workers"][w.url] for w in workers]
    assert [w.get("system_header_mismatch", 0) for w in per_worker] == [1, 1, 0]
    assert [w.get("jobs", 0) for w in per_worker] == [0, 0, 1]


def test_no_matching_worker_compiles_here(tmp_path, sysroot, mounted_worker, client_for):
    differs, lacks = other_copies(tmp_path)
    workers = [mounted_worker("differs", 4, differs), mounted_worker("lacks", 4, lacks)]
    client = client_for(*workers)
    expected = local_object(tmp_path, sysroot)

    client.pumpcc(*compile_args(sysroot), cwd=tmp_path / "src")

    assert (tmp_path / "src" / "out.o").read_bytes() == expected
    stats = client.stats()
    assert (stats["remote"], stats["local"]) == (0, 1)
    assert stats["fallbacks"] == {"system_header_mismatch": 1}
    assert all(stats["workers"][w.url]["system_header_mismatch"] == 1 for w in workers)


def test_a_known_mismatch_is_not_asked_again(tmp_path, sysroot, mounted_worker, client_for):
    """The second compile skips the workers that lacked our x.h: no second 409 from them."""
    differs, lacks = other_copies(tmp_path)
    workers = [mounted_worker("differs", 8, differs), mounted_worker("matches", 4, None)]
    client = client_for(*workers, PUMPCC_FALLBACK="0")
    client.pumpcc("--hosts")
    for _ in range(3):
        client.pumpcc(*compile_args(sysroot), cwd=tmp_path / "src")

    stats = client.stats()
    assert (stats["remote"], stats["local"]) == (3, 0)
    assert stats["workers"][workers[0].url]["system_header_mismatch"] == 3  # each compile counts
    assert stats["workers"][workers[1].url]["jobs"] == 3
    metrics = urllib.request.urlopen(workers[0].url + "/metrics").read().decode()
    assert 'pumpcc_worker_requests_total{path="/v1/compile",code="409"} 1' in metrics


PROBING = (
    "#if __has_include(<pumpcc-probed.h>)\n#include <pumpcc-probed.h>\n#endif\n"
    "#ifndef PROBED\n#define PROBED 0\n#endif\nint value(void) { return PROBED; }\n"
)
LOCAL_INCLUDE = Path("/usr/local/include")  # one of GCC's default folders, empty on Debian


@pytest.mark.skipif(not LOCAL_INCLUDE.is_dir(), reason=f"{LOCAL_INCLUDE} is absent")
def test_a_worker_with_a_header_we_lack_is_skipped(tmp_path, client_for):
    """We probe <pumpcc-probed.h> and have none; a worker that has one (in its own
    /usr/local/include) would compile the other branch, so it answers 409 and is remembered."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "pumpcc-probed.h").write_text("#define PROBED 40\n")
    has_it = Worker(tmp_path / "has-it", slots=8, wrapper=bind_mounted(extra, LOCAL_INCLUDE))
    plain = Worker(tmp_path / "plain", slots=4)
    try:
        client = client_for(has_it, plain, PUMPCC_FALLBACK="0")
        client.pumpcc("--hosts")
        src = tmp_path / "src"
        src.mkdir()
        (src / "main.c").write_text(PROBING)
        args = ["gcc", "-O2", "-c", "main.c", "-o", "out.o"]
        subprocess.run(args, cwd=src, check=True)
        expected = (src / "out.o").read_bytes()
        for _ in range(2):
            (src / "out.o").unlink()
            client.pumpcc(*args, cwd=src)
            assert (src / "out.o").read_bytes() == expected

        stats = client.stats()
        assert (stats["remote"], stats["local"]) == (2, 0)
        assert stats["workers"][has_it.url]["system_header_mismatch"] == 2
        assert stats["workers"][has_it.url].get("jobs", 0) == 0
        metrics = urllib.request.urlopen(has_it.url + "/metrics").read().decode()
        assert 'code="409"} 1' in metrics, "the second compile skipped it without asking"
    finally:
        has_it.stop()
        plain.stop()
