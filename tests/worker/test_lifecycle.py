"""Start-up checks, SIGTERM drain, stale job roots, and the bubblewrap sandbox."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.worker.support import WORKER, free_port, make_job, remote_compile, start_worker
from tests.worker.test_limits import FAKE_GCC
from worker.sandbox import probe_bwrap


def _refused(tmp_path: Path, yaml_text: str | None, *flags: str) -> str:
    args = [WORKER, *flags]
    if yaml_text is not None:
        (tmp_path / "w.yaml").write_text(yaml_text)
        args += ["--config", str(tmp_path / "w.yaml")]
    run = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


@pytest.mark.parametrize(
    "text,words",
    [
        ("listen: 127.0.0.1:1\nbogus: 1\n", ["bogus", "unknown key"]),
        ("listen: 127.0.0.1:1\nslots: many\n", ["slots", "int"]),
        ("listen: 127.0.0.1:1\nslots: 0\n", ["slots", "positive"]),
        ("listen: 127.0.0.1:1\nsandbox: docker\n", ["sandbox", "auto"]),
        ("listen: nowhere\n", ["listen", "HOST:PORT"]),
        ("listen: 0.0.0.0:3634\n", ["token_file", "loopback"]),
        ("listen: 127.0.0.1:1\ncompilers: [/bin/sh]\n", ["compilers"]),
        ("- a list\n", ["mapping"]),
        ("listen: [\n", ["YAML"]),
    ],
)
def test_bad_config_one_line_exit_2(tmp_path: Path, text: str, words: list[str]):
    line = _refused(tmp_path, text)
    assert str(tmp_path / "w.yaml") in line
    for word in words:
        assert word in line


def test_missing_config_and_token_files(tmp_path: Path):
    assert "cannot read" in _refused(tmp_path, None, "--config", str(tmp_path / "nope.yaml"))
    line = _refused(tmp_path, "listen: 127.0.0.1:1\n", "--token-file", str(tmp_path / "nope"))
    assert "token_file" in line
    assert "token_file" in _refused(tmp_path, None, "--listen", "10.1.2.3:3634")


def test_flags_override_file(tmp_path: Path):
    w = start_worker(tmp_path, token=False, slots=2)
    try:
        assert w.get("/v1/status").json()["slots"] == 2
    finally:
        assert w.stop() == 0
    port = w.url.rsplit(":", 1)[1]
    proc = subprocess.Popen(
        [WORKER, "--config", str(tmp_path / "worker.yaml"), "--slots", "3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import requests

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status = requests.get(f"http://127.0.0.1:{port}/v1/status", timeout=1).json()
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        assert status["slots"] == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_stale_job_roots_are_swept(tmp_path: Path):
    stale = tmp_path / "scratch" / "jobs" / "crashed-job" / "r" / "p"
    stale.mkdir(parents=True)
    (stale / "a.o").write_bytes(b"junk")
    w = start_worker(tmp_path)
    try:
        assert list((tmp_path / "scratch" / "jobs").iterdir()) == []
    finally:
        assert w.stop() == 0


def test_sigterm_drains_running_compile(tmp_path: Path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gcc").write_text(FAKE_GCC)
    (bindir / "gcc").chmod(0o755)
    (tmp_path / "a.c").write_text("int x;\n")
    w = start_worker(
        tmp_path / "w", env={"PATH": f"{bindir}:{os.environ['PATH']}"}, compilers=["gcc"]
    )
    header, blobs = make_job(
        "gcc",
        ["-DMODE=slow", "-c", str(tmp_path / "a.c"), "-o", "a.o"],
        tmp_path,
        [tmp_path / "a.c"],
        ["a.o"],
    )
    got = {}

    def compile_in_background() -> None:
        got["result"] = remote_compile(w, header, blobs)

    thread = threading.Thread(target=compile_in_background)
    thread.start()
    deadline = time.monotonic() + 10
    while w.get("/v1/status").json()["in_flight"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    w.proc.send_signal(signal.SIGTERM)
    thread.join(timeout=30)
    assert w.proc.wait(timeout=30) == 0
    result, stdout, _, outputs = got["result"]
    assert result["exit"] == 0 and outputs["a.o"] == b"done\n"


bwrap_problem = probe_bwrap()


@pytest.mark.skipif(bwrap_problem is not None, reason=f"bwrap cannot run: {bwrap_problem}")
def test_bwrap_compile_is_identical_and_confined(tmp_path: Path):
    proj = tmp_path / "proj"
    (proj / "build").mkdir(parents=True)
    (proj / "a.c").write_text("#include <stdio.h>\nint main(void) { puts(__FILE__); return 0; }\n")
    args = ["-g", "-c", str(proj / "a.c"), "-o", "a.o", "-MD", "-MF", "a.d"]
    local = subprocess.run(["gcc", *args], cwd=proj / "build", capture_output=True)
    assert local.returncode == 0
    w = start_worker(tmp_path / "w", sandbox="bwrap")
    try:
        assert w.get("/v1/status").json()["sandbox"] == "bwrap"
        header, blobs = make_job("gcc", args, proj / "build", [proj / "a.c"], ["a.o", "a.d"])
        result, _, stderr, outputs = remote_compile(w, header, blobs)
        assert result["exit"] == 0, stderr
        assert result["sandbox"] == "bwrap"
        assert outputs["a.o"] == (proj / "build" / "a.o").read_bytes()
        assert outputs["a.d"] == (proj / "build" / "a.d").read_bytes()
        # Inside the sandbox the worker's scratch (other jobs, the blob store) is invisible
        # and there is no network.
        (proj / "spy.c").write_text(f'#include "{w.scratch}/blobs/../../worker.yaml"\n')
        header, blobs = make_job(
            "gcc",
            ["-c", str(proj / "spy.c"), "-o", "spy.o"],
            proj / "build",
            [proj / "spy.c"],
            ["spy.o"],
            system_files=[],  # the client has the file; the point is that the worker does not
        )
        result, _, stderr, _ = remote_compile(w, header, blobs)
        assert result["exit"] != 0 and b"No such file" in stderr
    finally:
        assert w.stop() == 0


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed")
def test_sandbox_bwrap_refuses_to_start_without_working_bwrap(tmp_path: Path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "bwrap").write_text("#!/bin/sh\necho 'no namespaces here' >&2\nexit 1\n")
    (bindir / "bwrap").chmod(0o755)
    (tmp_path / "w.yaml").write_text("listen: 127.0.0.1:1\nsandbox: bwrap\n")
    run = subprocess.run(
        [WORKER, "--config", str(tmp_path / "w.yaml")],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"},
        timeout=60,
    )
    assert run.returncode == 2 and "bwrap" in run.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls(tmp_path: Path):
    import requests
    import urllib3

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    (tmp_path / "w.yaml").write_text(
        f"listen: 127.0.0.1:{port}\nscratch_dir: {tmp_path / 's'}\nsandbox: none\n"
        f"tls_cert: {cert}\ntls_key: {key}\n"
    )
    proc = subprocess.Popen(
        [WORKER, "--config", str(tmp_path / "w.yaml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    urllib3.disable_warnings()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = requests.get(f"https://127.0.0.1:{port}/v1/health", verify=False, timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert resp.json()["ok"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
