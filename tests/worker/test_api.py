"""The HTTP contract: auth, blobs, compiler identity, refusals and escapes."""

from __future__ import annotations

from pathlib import Path

import pytest
import zstandard

from tests.worker.support import Worker, encode, make_job, remote_compile, start_worker
from worker import wire


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("api")
    (root / "build").mkdir()
    (root / "inc").mkdir()
    (root / "outside").mkdir()
    (root / "a.c").write_text('#include "h.h"\nint f(void) { return H; }\n')
    (root / "inc" / "h.h").write_text("#define H 7\n")
    return root


def _job(src: Path, args: list[str] | None = None, outputs=("a.o",), **kw):
    args = args if args is not None else [f"-I{src}/inc", "-c", f"{src}/a.c", "-o", "a.o"]
    return make_job(
        "gcc", args, src / "build", [src / "a.c", src / "inc" / "h.h"], list(outputs), **kw
    )


def _nothing_outside(src: Path) -> None:
    assert list((src / "outside").iterdir()) == []
    assert not Path("/tmp/pumpcc-pwned.o").exists()


def test_health_needs_no_token(worker: Worker):
    resp = worker.get(wire.PATH_HEALTH, token=None)
    assert resp.status_code == 200 and resp.json()["ok"] is True


@pytest.mark.parametrize("path", [wire.PATH_STATUS, wire.PATH_METRICS])
@pytest.mark.parametrize("token", [None, "wrong"])
def test_auth_required(worker: Worker, path: str, token):
    resp = worker.get(path, token=token)
    assert resp.status_code == 401 and resp.json() == {"error": "unauthorized"}


@pytest.mark.parametrize("token", [None, "wrong", "s3cret-test-token-but-longer"])
def test_compile_auth_required(worker: Worker, src: Path, token):
    resp = worker.post_job(encode(*_job(src)), token=token)
    assert resp.status_code == 401 and resp.json()["error"] == wire.UNAUTHORIZED


def test_missing_blobs_round_trip(tmp_path: Path, src: Path):
    w = start_worker(tmp_path / "w")
    try:
        header, blobs = _job(src, send=False)
        resp = w.post_job(encode(header, []))
        assert resp.status_code == 409
        body = resp.json()
        assert body["error"] == wire.MISSING_BLOBS
        assert sorted(body["missing"]) == sorted(d for _, d in header["files"])
        header, blobs = _job(src)
        result, _, _, outputs = remote_compile(w, header, blobs)
        assert result["exit"] == 0 and outputs["a.o"]
        # The inputs are cached now: the same job without blobs compiles.
        result, _, _, _ = remote_compile(w, *_job(src, send=False))
        assert result["exit"] == 0
        assert w.get(wire.PATH_STATUS).json()["blobs"]["count"] == 2
    finally:
        assert w.stop() == 0
    # A restart rebuilds the index from disk: still no need to send them.
    w = start_worker(tmp_path / "w")
    try:
        result, _, _, _ = remote_compile(w, *_job(src, send=False))
        assert result["exit"] == 0
    finally:
        assert w.stop() == 0


def test_wrong_digest_is_refused(worker: Worker, src: Path):
    header, blobs = _job(src)
    wrong = [(d, zstandard.ZstdCompressor().compress(b"not the content")) for d, _ in blobs]
    resp = worker.post_job(encode(header, wrong))
    assert resp.status_code == 400 and "sha256" in resp.json()["message"]


def test_unknown_compiler(worker: Worker, src: Path):
    header, blobs = _job(src)
    header["compiler"]["name"] = "tcc"
    resp = worker.post_job(encode(header, blobs))
    assert resp.status_code == 404 and resp.json()["error"] == wire.UNKNOWN_COMPILER


def test_compiler_mismatch_names_ours(worker: Worker, src: Path):
    header, blobs = _job(src)
    version = header["compiler"]["version"]
    header["compiler"]["version"] = "1.0"
    resp = worker.post_job(encode(header, blobs))
    body = resp.json()
    assert resp.status_code == 409 and body["error"] == wire.COMPILER_MISMATCH
    assert body["version"] == version and body["target"] == header["compiler"]["target"]


def test_system_header_mismatch(worker: Worker, src: Path):
    header, blobs = _job(src, system_files=["/usr/include/stdc-predef.h", "/usr/include/stdio.h"])
    result, _, _, _ = remote_compile(worker, header, blobs)
    assert result["exit"] == 0
    header["system_files"] = [["/usr/include/stdio.h", "0" * 64]]
    resp = worker.post_job(encode(header, blobs))
    assert resp.status_code == 409
    assert resp.json() == {"error": wire.SYSTEM_HEADER_MISMATCH, "path": "/usr/include/stdio.h"}
    header["system_files"] = [["/etc/shadow", "0" * 64]]
    assert worker.post_job(encode(header, blobs)).status_code == 400


@pytest.fixture(scope="module")
def stdio_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stdio")
    (root / "b.c").write_text('#include <stdio.h>\nint main(void) { return puts("b") < 0; }\n')
    return root


@pytest.mark.parametrize(
    ("compiler", "deps", "listed"),
    [
        ("gcc", [], ["/usr/include/stdc-predef.h"]),  # no dependency file: the worker asks
        ("gcc", ["-MD", "-MF", "b.d"], ["/usr/include/stdc-predef.h"]),  # the job's own
        ("clang", [], []),
    ],
)
def test_a_system_file_the_job_did_not_list_is_refused(
    worker: Worker, stdio_src: Path, compiler: str, deps: list[str], listed: list[str]
):
    """The client's analysis 'missed' stdio.h: the compile read the worker's unchecked copy."""
    args = ["-O2", "-c", f"{stdio_src}/b.c", "-o", "b.o", *deps]
    outputs = ["b.o", "b.d"] if deps else ["b.o"]
    header, blobs = make_job(
        compiler, args, stdio_src, [stdio_src / "b.c"], outputs, system_files=listed
    )
    resp = worker.post_job(encode(header, blobs))
    assert (resp.status_code, resp.json()) == (
        409,
        {"error": wire.UNLISTED_INPUT, "path": "/usr/include/stdio.h"},
    )
    # Listed in full, the same compile is answered (and its .d is the job's own, untouched).
    header, blobs = make_job(compiler, args, stdio_src, [stdio_src / "b.c"], outputs)
    result, _, stderr, files = remote_compile(worker, header, blobs)
    assert result["exit"] == 0, stderr
    assert sorted(files) == sorted(outputs)


def test_unlisted_files_are_not_checked_with_mmd_or_a_failed_compile(
    worker: Worker, stdio_src: Path
):
    """-MMD's list leaves system headers out; a failed compile's errors are answered as they are."""
    predef = ["/usr/include/stdc-predef.h"]
    args = ["-c", f"{stdio_src}/b.c", "-o", "b.o", "-MMD", "-MF", "b.d"]
    header, blobs = make_job(
        "gcc", args, stdio_src, [stdio_src / "b.c"], ["b.o", "b.d"], system_files=predef
    )
    assert remote_compile(worker, header, blobs)[0]["exit"] == 0
    (stdio_src / "c.c").write_text("#include <stdio.h>\nint x = ;\n")
    args = ["-c", f"{stdio_src}/c.c", "-o", "c.o"]
    header, blobs = make_job(
        "gcc", args, stdio_src, [stdio_src / "c.c"], ["c.o"], system_files=predef
    )
    result, _, stderr, _ = remote_compile(worker, header, blobs)
    assert result["exit"] == 1 and b"expected expression" in stderr


def test_a_system_file_the_client_lacks_must_be_absent(worker: Worker, stdio_src: Path):
    """A probe the client answered 'absent' (__has_include) must be answered alike here."""
    args = ["-c", f"{stdio_src}/b.c", "-o", "b.o"]
    for absent, status in (
        ("/usr/include/pumpcc-no-such-header.h", 200),
        ("/usr/include/stdio.h", 409),
        ("/etc/passwd", 400),
    ):
        header, blobs = make_job("gcc", args, stdio_src, [stdio_src / "b.c"], ["b.o"])
        header["system_absent"] = [absent]
        resp = worker.post_job(encode(header, blobs))
        assert resp.status_code == status, resp.text
        if status == 409:
            assert resp.json() == {"error": wire.SYSTEM_HEADER_MISMATCH, "path": absent}


@pytest.mark.parametrize(
    "option",
    [
        ["-fplugin=/tmp/evil.so"],
        ["-B/tmp/evil"],
        ["-B", "/tmp/evil"],
        ["-specs=/tmp/evil.specs"],
        ["--specs=/tmp/evil.specs"],
        ["-wrapper", "/bin/sh,-c,touch /tmp/pumpcc-pwned.o"],
        ["-fdump-tree-all"],
        ["-save-temps"],
        ["-Xclang", "-load"],
        ["@/etc/passwd"],
        ["-"],
    ],
)
def test_refused_options(worker: Worker, src: Path, option: list[str]):
    header, blobs = _job(src, [*option, f"-I{src}/inc", "-c", f"{src}/a.c", "-o", "a.o"])
    resp = worker.post_job(encode(header, blobs))
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == wire.REFUSED_OPTION
    _nothing_outside(src)


@pytest.mark.parametrize(
    "change",
    [
        {"args": ["-c", "a.c", "-o", "../../../../../../../../../../tmp/pumpcc-pwned.o"]},
        {"args": ["-c", "a.c", "-o", "/../../../tmp/pumpcc-pwned.o"]},
        {"outputs": ["../../../../../../../../../../tmp/pumpcc-pwned.o"]},
        {"cwd": "/tmp/../etc"},
        {"cwd": "relative"},
        {"dirs": ["/a/../../b"]},
        {"files": [["/x/../../etc/passwd", "0" * 64]]},
        {"files": [["/x/a\0b", "0" * 64]]},
        {"files": [["/x/a", "not-a-digest"]]},
        {"symlinks": [["/p/l", "../../../../../../../../../.."]]},
        {"args": ["-c", "a.c", "-MF", "../../../../../../../../tmp/pumpcc-pwned.o"]},
        {"env": {"CPATH": "/a/../../../etc"}},
        {"args": "not a list"},
        {"compiler": "gcc"},
    ],
)
def test_bad_paths_are_refused(worker: Worker, src: Path, change: dict):
    header, blobs = _job(src)
    header.update(change)
    resp = worker.post_job(encode(header, blobs))
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == wire.BAD_REQUEST
    _nothing_outside(src)


def test_symlink_escape_through_folder(worker: Worker, src: Path):
    """A symlinked folder that leads out of the root cannot receive an output."""
    outside = src / "outside"
    up = "../" * 40
    header, blobs = _job(
        src,
        [f"-I{src}/inc", "-c", f"{src}/a.c", "-o", f"{src}/build/evil/a.o"],
        outputs=[f"{src}/build/evil/a.o"],
        symlinks=[(f"{src}/build/evil", up + str(outside).lstrip("/"))],
    )
    resp = worker.post_job(encode(header, blobs))
    assert resp.status_code == 400, resp.text
    _nothing_outside(src)


def _compiles_through_absolute_link(worker: Worker, src: Path) -> None:
    """A job whose include folder is a client symlink with an absolute target compiles."""
    header, blobs = _job(
        src,
        [f"-I{src}/linked", "-c", f"{src}/a.c", "-o", "a.o"],
        symlinks=[(f"{src}/linked", f"{src}/inc")],
    )
    result, _, stderr, outputs = remote_compile(worker, header, blobs)
    assert result["exit"] == 0, stderr
    assert "a.o" in outputs


def test_absolute_symlink_maps_into_root(worker: Worker, src: Path):
    """Client symlinks with absolute targets point at the same client path inside the root."""
    _compiles_through_absolute_link(worker, src)


def test_scratch_dir_reached_through_a_symlink(tmp_path: Path, src: Path):
    """A scratch_dir whose path goes through a symlink (/var/tmp -> /data/tmp) still takes
    jobs with client symlinks: the job root is checked against its resolved path."""
    (tmp_path / "real").mkdir()
    (tmp_path / "via").symlink_to(tmp_path / "real")
    worker = start_worker(tmp_path / "w", scratch_dir=str(tmp_path / "via" / "scratch"))
    try:
        _compiles_through_absolute_link(worker, src)
    finally:
        assert worker.stop() == 0


def test_output_over_input_is_refused(worker: Worker, src: Path):
    header, blobs = _job(src, [f"-I{src}/inc", "-c", f"{src}/a.c", "-o", f"{src}/inc/h.h"])
    assert worker.post_job(encode(header, blobs)).status_code == 400
    assert (src / "inc" / "h.h").read_text() == "#define H 7\n"


def test_too_large(tmp_path: Path, src: Path):
    w = start_worker(tmp_path / "w", max_request_bytes=1000)
    try:
        resp = w.post_job(b"PJ1\n" + b"\0" * 5000)
        assert resp.status_code == 413 and resp.json()["error"] == wire.TOO_LARGE
    finally:
        assert w.stop() == 0


def test_env_is_scrubbed(worker: Worker, src: Path):
    """CPATH is mapped into the root; LD_PRELOAD and the like never reach the compiler."""
    args = ["-c", f"{src}/a.c", "-o", "a.o"]
    env = {"CPATH": f"{src}/inc", "LD_PRELOAD": "/nonexistent/evil.so", "LANG": "C"}
    header, blobs = _job(src, args, env=env)
    result, _, stderr, outputs = remote_compile(worker, header, blobs)
    assert result["exit"] == 0, stderr  # h.h was found through the rewritten CPATH
    assert b"LD_PRELOAD" not in stderr and b"evil" not in stderr


def test_status_and_metrics(worker: Worker):
    status = worker.get(wire.PATH_STATUS).json()
    for key in ("version", "protocol", "slots", "in_flight", "queued", "load", "compilers"):
        assert key in status
    assert status["compilers"]["gcc"]["version"]
    assert set(status["blobs"]) == {"count", "bytes", "max_bytes"}
    assert status["jobs"]["compiles"] >= 0 and status["bytes_received"] >= 0
    text = worker.get(wire.PATH_METRICS).text
    assert "pumpcc_worker_requests_total" in text and "pumpcc_worker_compiles_total" in text
