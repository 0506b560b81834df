"""The two launchers -- native (adapter/launcher.c) and Python (adapter/launcher.py) -- speak the
same framing and behave the same towards the build.

A listener on the launcher's real Unix socket stands in for the local server here, so each test
sees the exact bytes a launcher sends and chooses the answer: that is the contract between the
launchers and the server, and both launchers must keep it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from adapter import local_wire
from tests.helpers import VENV_BIN

NATIVE = VENV_BIN / "pumpcc"
PYTHON = VENV_BIN / "pumpcc.py"
LAUNCHERS = pytest.mark.parametrize("launcher", [NATIVE, PYTHON], ids=["native", "python"])


def test_install_built_the_native_launcher():
    assert NATIVE.read_bytes()[:4] == b"\x7fELF", "tools/install did not compile adapter/launcher.c"
    assert PYTHON.read_text().startswith("#!")


class FakeServer:
    """Accept one launcher connection on ``folder/server.sock``, record its request, answer."""

    def __init__(self, folder: Path, answer: bytes) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(folder / "server.sock"))
        self.listener.listen(1)
        self.request: tuple | None = None
        self.hung_up = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(answer,), daemon=True)
        self.thread.start()

    def _serve(self, answer: bytes) -> None:
        conn, _ = self.listener.accept()
        with conn:
            size = int.from_bytes(_exactly(conn, 4), "big")
            self.request = local_wire.decode_request(_exactly(conn, size))
            conn.sendall(answer)
            while conn.recv(4096):  # the launcher holds the connection while it compiles here
                pass
            self.hung_up.set()


def _exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        assert chunk, "launcher closed the connection early"
        data += chunk
    return data


def _env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPCC_")}
    return {**env, "PUMPCC_DIR": str(folder), "PUMPCC_ODD": "a=b\tc", **extra}


@LAUNCHERS
def test_request_carries_argv_cwd_umask_and_environment(tmp_path, launcher):
    server = FakeServer(tmp_path, local_wire.encode_result(3, b"to stdout\n", b"to stderr\n"))
    argv = ["gcc", "-c", "sp ace.c", '-DX="é"', "-o", "out.o"]
    env = _env(tmp_path)
    done = subprocess.run(
        [str(launcher), *argv], cwd=tmp_path, env=env, capture_output=True, umask=0o027
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, b"to stdout\n", b"to stderr\n")
    kind, cwd, umask, sent_argv, sent_env = server.request
    assert (kind, cwd, umask, sent_argv) == ("compile", str(tmp_path), 0o027, argv)
    assert sent_env == env


@LAUNCHERS
def test_local_answer_runs_the_compiler_here_while_holding_the_connection(tmp_path, launcher):
    (tmp_path / "a.c").write_text("int a(void) { return 1; }\n")
    server = FakeServer(tmp_path, local_wire.encode_local("pumpcc: a.c: local (test: said)\n"))
    done = subprocess.run(
        [str(launcher), "gcc", "-c", "a.c", "-o", "a.o"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
    )
    assert (done.returncode, done.stderr) == (0, b"pumpcc: a.c: local (test: said)\n")
    assert (tmp_path / "a.o").exists()
    assert server.hung_up.wait(5)


@LAUNCHERS
def test_a_local_compile_error_keeps_the_compilers_status_and_words(tmp_path, launcher):
    (tmp_path / "bad.c").write_text("int x = ;\n")
    FakeServer(tmp_path, local_wire.encode_local(""))
    done = subprocess.run(
        [str(launcher), "gcc", "-c", "bad.c"], cwd=tmp_path, env=_env(tmp_path), capture_output=True
    )
    direct = subprocess.run(["gcc", "-c", "bad.c"], cwd=tmp_path, capture_output=True)
    assert (done.returncode, done.stderr) == (direct.returncode, direct.stderr)
    assert done.returncode == 1


@LAUNCHERS
def test_disabled_runs_the_compiler_without_asking_a_server(tmp_path, launcher):
    (tmp_path / "a.c").write_text("int a(void) { return 1; }\n")
    env = _env(tmp_path / "nowhere", PUMPCC_DISABLE="1")
    done = subprocess.run(
        [str(launcher), "gcc", "-c", "a.c"], cwd=tmp_path, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.o").exists()
    assert not (tmp_path / "nowhere").exists()  # no server was started


def test_native_launcher_hands_options_to_the_python_one(tmp_path):
    env = _env(tmp_path)
    native = subprocess.run([str(NATIVE), "--version"], env=env, capture_output=True, text=True)
    python = subprocess.run([str(PYTHON), "--version"], env=env, capture_output=True, text=True)
    assert native.returncode == 0 and native.stdout == python.stdout != ""


def test_masquerade_link_without_a_real_compiler_says_so(tmp_path):
    links = tmp_path / "links"
    links.mkdir()
    (links / "gcc-nowhere").symlink_to(NATIVE)
    env = _env(tmp_path, PATH=str(links))
    done = subprocess.run([str(links / "gcc-nowhere"), "-c", "a.c"], env=env, capture_output=True)
    assert done.returncode == 127
    assert done.stderr == b"pumpcc: no gcc-nowhere on PATH besides pumpcc itself\n"


@LAUNCHERS
def test_local_compiler_gets_default_signals_back(tmp_path, launcher):
    """Python ignores SIGPIPE and SIGXFSZ, the native launcher SIGPIPE; compilers must not."""
    FakeServer(tmp_path, local_wire.encode_local(""))
    probe = tmp_path / "sigpipe-state"
    script = tmp_path / "cc-probe"
    script.write_text(f"#!/bin/sh\ngrep SigIgn /proc/$$/status > {probe}\n")
    script.chmod(0o755)
    done = subprocess.run([str(launcher), str(script)], env=_env(tmp_path), capture_output=True)
    assert done.returncode == 0, done.stderr
    ignored = int(probe.read_text().split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1) | 1 << (signal.SIGXFSZ - 1)), probe.read_text()
