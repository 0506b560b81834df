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


def make_job(
    compiler: str,
    args: list[str],
    cwd: Path | str,
    files: list[Path | str],
    outputs: list[str],
    *,
    system_files: list[str] = (),  # type: ignore[assignment]
    dirs: list[str] = (),  # type: ignore[assignment]
    symlinks: list[tuple[str, str]] = (),  # type: ignore[assignment]
    env: dict[str, str] | None = None,
    send: bool = True,
    **extra: object,
) -> tuple[dict, list[tuple[str, bytes]]]:
    """A job header and its blobs from real files, as the local server would send it."""
    version, target = identity(compiler)
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
