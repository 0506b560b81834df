"""`pumpcc-worker`: the command line, start-up checks, and gunicorn.

Everything that can be wrong with the set-up (the YAML, the token, the compilers, the sandbox) is
checked before gunicorn starts, and reported as one line with exit status 2.  gunicorn runs ONE
worker process with the threaded worker class: slot accounting, the blob index and the counters
are in-process state, and the threads cover every slot, every queued request and some status
requests.  SIGTERM is gunicorn's graceful stop: in-flight compiles finish, then exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from gunicorn.app.base import BaseApplication

from worker import config as config_mod
from worker.app import WorkerApp
from worker.blobs import BlobStore
from worker.compilers import discover
from worker.job import Engine, sweep
from worker.sandbox import Limits, choose
from worker.sysfiles import SystemFiles

log = logging.getLogger("pumpcc.worker")
STATUS_THREADS = 8  # beyond slots and queue: /v1/status, /metrics and busy answers stay prompt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pumpcc-worker", description="Run a pumpcc worker in the foreground."
    )
    parser.add_argument("--config", metavar="FILE", help="worker YAML (see configs/worker.yaml)")
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to listen on")
    parser.add_argument("--slots", type=int, metavar="N", help="compiles run at once")
    parser.add_argument("--token-file", metavar="FILE", help="file holding the shared secret")
    return parser.parse_args(argv)


class _Server(BaseApplication):
    """gunicorn driven from Python: our settings, our WSGI callable, built in the worker."""

    def __init__(self, options: dict, make_app: object) -> None:
        self.options = options
        self.make_app = make_app
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # older gunicorns lack some (control_socket_disable)
                self.cfg.set(key, value)

    def load(self) -> WorkerApp:
        # Runs in the forked worker process: the blob index and threads live there.
        return self.make_app()  # type: ignore[operator]


def build(cfg: config_mod.Config) -> tuple[dict, object]:
    """Check the set-up and return gunicorn's options and the app factory; raises on problems."""
    token = config_mod.read_token(cfg)
    search_path = os.environ.get("PATH", os.defpath)
    compilers = discover(cfg.compilers, search_path)
    if not compilers:
        raise config_mod.ConfigError(
            f"compilers: none of {', '.join(cfg.compilers)} found on PATH {search_path}"
        )
    extra_ro = tuple(
        sorted({os.path.dirname(p) for c in compilers.values() for p in (c.path, c.real_path)})
    )
    sandbox = choose(cfg.sandbox, extra_ro, cfg.job_processes)
    scratch = os.path.realpath(cfg.scratch_dir)  # job roots are checked against resolved paths
    jobs_dir = os.path.join(scratch, "jobs")
    swept = sweep(jobs_dir)
    if swept:
        log.info("removed %d job folders left by an earlier run", swept)
    limits = Limits(
        cfg.job_cpu_seconds,
        cfg.job_memory_bytes,
        cfg.job_output_bytes,
        cfg.job_wall_seconds,
        cfg.job_processes,
    )

    def make_app() -> WorkerApp:
        blobs = BlobStore(
            os.path.join(scratch, "blobs"), cfg.blob_store_max_bytes, cfg.max_blob_bytes
        )
        engine = Engine(
            compilers,
            blobs,
            SystemFiles(cfg.system_prefixes),
            sandbox,
            limits,
            jobs_dir,
            search_path,
        )
        return WorkerApp(cfg, engine, token)

    host, port = cfg.host_port
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": cfg.slots + cfg.queue_limit + STATUS_THREADS,
        # The gthread worker heartbeats from its main loop, so a long compile is not a hang;
        # a graceful stop waits for the longest compile we allow.
        "timeout": 60,
        "graceful_timeout": int(cfg.job_wall_seconds) + 30,
        "keepalive": 30,
        "limit_request_line": 8190,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "pumpcc-worker",
        # gunicorn >= 25.1 opens a control socket in $HOME: shared by every worker on the host.
        "control_socket_disable": True,
    }
    if cfg.tls_cert:
        options.update(certfile=cfg.tls_cert, keyfile=cfg.tls_key)
    return options, make_app


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="pumpcc-worker: %(message)s")
    args = parse_args(argv)
    overrides = {
        key: value
        for key, value in (
            ("listen", args.listen),
            ("slots", args.slots),
            ("token_file", args.token_file),
        )
        if value is not None
    }
    try:
        cfg = config_mod.load(args.config, overrides)
        options, make_app = build(cfg)
    except (config_mod.ConfigError, RuntimeError) as e:
        print(f"pumpcc-worker: {e}", file=sys.stderr)
        return 2
    log.info("listening on %s with %d slots", cfg.listen, cfg.slots)
    _Server(options, make_app).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
