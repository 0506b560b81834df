"""Helpers for worker tests: real `pumpcc-worker` processes and real jobs built from files."""

from __future__ import annotations

import functools
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml
import zstandard

from worker import wire
from worker.rewrite import depfile_inputs

WORKER = str(Path(sys.executable).with_name("pumpcc-worker"))
TOKEN = "s3cret-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Worker:
    """A running worker process and what a test needs to talk to it."""

    proc: subprocess.Popen
    url: str
    token: str | None
    scratch: Path
    log: Path
    session: requests.Session = field(default_factory=requests.Session)

    def headers(self, token: str | None = "default") -> dict[str, str]:
        token = self.token if token == "default" else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def post_job(self, body: bytes, token: str | None = "default", **kw) -> requests.Response:
        return self.session.post(
            self.url + wire.PATH_COMPILE, data=body, headers=self.headers(token), timeout=120, **kw
        )

    def get(self, path: str, token: str | None = "default") -> requests.Response:
        return self.session.get(self.url + path, headers=self.headers(token), timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            self.session.close()


def start_worker(
    tmp: Path, *, token: bool = True, env: dict | None = None, **settings: object
) -> Worker:
    """Start a worker with a YAML holding `settings`; returns once /v1/health answers."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    scratch = tmp / "scratch"
    conf: dict[str, object] = {
        "listen": f"127.0.0.1:{port}",
        "slots": 2,
        "scratch_dir": str(scratch),
        "sandbox": "none",
    }
    if token:
        (tmp / "token").write_text(TOKEN + "\n")
        conf["token_file"] = str(tmp / "token")
    conf.update(settings)
    (tmp / "worker.yaml").write_text(yaml.safe_dump(conf))
    log = tmp / "worker.log"
    proc = subprocess.Popen(
        [WORKER, "--config", str(tmp / "worker.yaml")],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited {proc.returncode}: {log.read_text()}")
        try:
            if requests.get(url + wire.PATH_HEALTH, timeout=1).ok:
                return Worker(proc, url, TOKEN if token else None, scratch, log)
        except requests.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"worker did not answer: {log.read_text()}")


@functools.cache
def identity(compiler: str) -> tuple[str, str]:
    def ask(*flags: str) -> str:
        for flag in flags:
            run = subprocess.run([compiler, flag], capture_output=True, text=True)
            if run.returncode == 0 and run.stdout.strip():
                return run.stdout.strip()
        raise RuntimeError(f"{compiler} does not answer {flags}")

    return ask("-dumpfullversion", "-dumpversion"), ask("-dumpmachine")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Options that say where headers are found and which macros are predefined (-O defines
# __OPTIMIZE__): all that system_inputs passes on to -M, since a job under test may carry hostile
# options (plugins, specs files), which must not run here.
_SEARCH_OPTIONS = ("-I", "-D", "-U", "-std", "-nostdinc", "-isystem", "-iquote", "-idirafter")
_MACRO_OPTIONS = ("-O", "-m", "-f", "-g")
_SOURCES = (".c", ".cc", ".cpp", ".cxx", ".S")
_WITH_VALUE = frozenset({"-isystem", "-iquote", "-idirafter", "-include", "-x", "-I", "-D"})


def system_inputs(compiler: str, args: list[str], cwd: str, files: list[str]) -> list[str]:
    """The files outside ``files`` that the compile reads, from the compiler's own ``-M``: the
    job's system_files as the include analysis lists them (the worker refuses a compile that read
    an unlisted file).  A compile -M cannot follow reads at least what an empty source does."""
    kept: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in _WITH_VALUE:
            kept += [arg, next(it, "")]
        elif arg.startswith("-fplugin"):
            continue
        elif arg.startswith((*_SEARCH_OPTIONS, *_MACRO_OPTIONS, "-x")) or arg.endswith(_SOURCES):
            kept.append(arg)
    done = subprocess.run([compiler, *kept, "-M"], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        empty = [compiler, "-M", "-x", "c", "/dev/null"]
        done = subprocess.run(empty, capture_output=True, text=True)
    names = depfile_inputs(done.stdout.encode())
    shipped = {os.path.normpath(os.path.join(cwd, f)) for f in files}
    found = (os.path.normpath(os.path.join(cwd, n)) for n in names if n != "/dev/null")
    return sorted({path for path in found if path not in shipped})


def make_job(
    compiler: str,
    args: list[str],
    cwd: Path | str,
    files: list[Path | str],
    outputs: list[str],
    *,
    system_files: list[str] | None = None,
    dirs: list[str] = (),  # type: ignore[assignment]
    symlinks: list[tuple[str, str]] = (),  # type: ignore[assignment]
    env: dict[str, str] | None = None,
    send: bool = True,
    **extra: object,
) -> tuple[dict, list[tuple[str, bytes]]]:
    """A job header and its blobs from real files, as the local server would send it.

    ``system_files`` defaults to the other files the compiler reads (see system_inputs).
    """
    version, target = identity(compiler)
    if system_files is None:
        system_files = system_inputs(compiler, list(args), str(cwd), [str(f) for f in files])
    file_list, blobs = [], []
    for f in files:
        data = Path(f).read_bytes()
        d = digest(data)
        file_list.append([str(f), d])
        if send and all(b[0] != d for b in blobs):
            blobs.append((d, zstandard.ZstdCompressor().compress(data)))
    header = {
        "compiler": {"name": compiler, "version": version, "target": target},
        "args": list(args),
        "cwd": str(cwd),
        "env": env if env is not None else {"LANG": "C"},
        "files": file_list,
        "system_files": [[p, digest(Path(p).read_bytes())] for p in system_files],
        "dirs": sorted({str(cwd), *dirs, *(os.path.dirname(str(f)) for f in files)}),
        "symlinks": [list(s) for s in symlinks],
        "absent": [],
        "outputs": list(outputs),
        **extra,
    }
    return header, blobs


def encode(header: dict, blobs: list[tuple[str, bytes]]) -> bytes:
    return wire.encode_job(header, blobs)


def local_compile(compiler: str, args: list[str], cwd: Path | str) -> tuple[int, bytes, bytes]:
    run = subprocess.run(
        [compiler, *args], cwd=cwd, capture_output=True, env={**os.environ, "LANG": "C"}
    )
    return run.returncode, run.stdout, run.stderr


def remote_compile(worker: Worker, header: dict, blobs: list) -> tuple[dict, bytes, bytes, dict]:
    resp = worker.post_job(encode(header, blobs))
    assert resp.status_code == 200, resp.text
    return wire.decode_result(resp.content)
