"""The local server: one per user, on a Unix socket, alive across builds.

Life cycle (the launcher's side is in adapter/launcher.py):

- Started on demand by the first launcher that finds no socket (``python -m include_server.server``,
  detached).  Many launchers may start it at once: each new process takes an exclusive ``flock`` on
  ``server.lock`` and only the holder binds the socket; the others exit at once, and their launchers
  connect to the winner.  The folder is created 0700 and must belong to the user.
- Serves each launcher on its own thread: classify, analyse, dispatch, write the outputs, reply.
  A compile that must run locally is answered "run it here" while the server holds one of the
  ``local_slots`` until the launcher hangs up, which bounds local compiles whatever ``-j`` is.
- Exits after ``PUMPCC_IDLE_TIMEOUT`` seconds (default 3600) without a request, or on
  ``pumpcc --stop-server``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import socketserver
import sys
import threading
import time
import traceback

from adapter import local_wire
from adapter.command import Compile, Local, classify
from adapter.config import Config, ConfigError, load
from adapter.launcher import runtime_dir
from include_server import cache_key, plain
from include_server.analysis import Analyzer
from include_server.cache import Hit, ResultCache
from include_server.compilers import compiler_info
from include_server.dispatch import Dispatcher, Failure
from include_server.files import FileStore
from include_server.stats import Stats
from include_server.status_page import URL_FILE as STATUS_URL_FILE
from include_server.status_page import start_status_page

__version__ = "0.1.0"
FALLBACK_FAILED = 110
# Local runs that are not fallbacks (nothing to distribute): PUMPCC_FALLBACK=0 lets them run.
NOT_FALLBACKS = frozenset({"not_compile"})


class ConfigCache:
    """The config for a (cwd, env), re-read as soon as its file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple, tuple[float, tuple, Config | ConfigError]] = {}

    def get(self, cwd: str, env: dict[str, str]) -> Config:
        """Return the validated config or raise its ConfigError."""
        from adapter.config import find_config_file

        key = (cwd, env.get("PUMPCC_CONFIG"), env.get("PUMPCC_HOSTS"), env.get("HOME"))
        now = time.monotonic()
        path = find_config_file(cwd, env)
        try:
            st = os.stat(path) if path else None
            stamp = (path, st.st_mtime_ns, st.st_size, st.st_ino) if st else (None,)
        except OSError:
            stamp = (path, "missing")
        with self._lock:
            cached = self._cache.get(key)
        if cached is None or cached[1] != stamp:
            try:
                value: Config | ConfigError = load(cwd, env)
            except ConfigError as e:
                value = e
            with self._lock:
                if len(self._cache) > 1000:
                    self._cache.clear()
                self._cache[key] = (now, stamp, value)
        else:
            value = cached[2]
        if isinstance(value, ConfigError):
            raise value
        return value


class LocalSlots:
    """Counts compiles running on this machine; the limit follows the latest config."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.running = 0
        self.peak = 0

    def acquire(self, limit: int) -> None:
        """Wait until fewer than ``limit`` local compiles run, then count one more."""
        with self._cond:
            while self.running >= limit:
                self._cond.wait()
            self.running += 1
            self.peak = max(self.peak, self.running)

    def release(self) -> None:
        """A local compile ended."""
        with self._cond:
            self.running -= 1
            self._cond.notify()


class Server:
    """Everything that lives across compiles: caches, worker states, counters."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.files = FileStore()
        self.analyzer = Analyzer(watch=os.environ.get("PUMPCC_WATCH") != "0")
        self.dispatcher = Dispatcher(self.files, self.stats)
        self.cache = ResultCache(self.stats, self.dispatcher)
        # Held around pure-Python work (analysis, cache key).  The GIL runs one thread at a time
        # anyway; threads that wait on a lock sleep, while threads contending for the GIL switch
        # every few milliseconds, which doubled the CPU per compile at -j4 on two cores.
        self.cpu_bound = threading.Lock()
        self.configs = ConfigCache()
        self.local_slots = LocalSlots()
        self.last_request = time.monotonic()
        self.active = 0
        self.started = time.time()
        self.stopping = threading.Event()
        self._jobs_lock = threading.Lock()
        self.jobs: dict[int, dict] = {}  # compiles in progress, for the live view
        self._next_job = 0

    def _job_begin(self, source: str, where: str) -> int:
        with self._jobs_lock:
            self._next_job += 1
            self.jobs[self._next_job] = {"source": source, "where": where, "since": time.time()}
            return self._next_job

    def _job_update(self, job: int, where: str) -> None:
        with self._jobs_lock:
            if job in self.jobs:
                self.jobs[job]["where"] = where

    def _job_end(self, job: int) -> None:
        with self._jobs_lock:
            self.jobs.pop(job, None)

    def live(self, cwd: str, env: dict[str, str]) -> dict:
        """What the live views show: workers with their load, compiles in progress, stats."""
        try:
            config = self.configs.get(cwd, env)
            workers = [
                {
                    "url": w.url,
                    "slots": w.slots,
                    "in_flight": w.in_flight,
                    "jobs": w.jobs,
                    "state": w.state(time.monotonic()),
                }
                for w in self.dispatcher.workers(config)
            ]
            local_slots, error = config.local_slots, None
        except ConfigError as e:
            workers, local_slots, error = [], 0, str(e)
        with self._jobs_lock:
            jobs = [dict(j) for j in self.jobs.values()]
        return {
            "workers": workers,
            "local_slots": local_slots,
            "local_running": self.local_slots.running,
            "jobs": sorted(jobs, key=lambda j: j["since"]),
            "stats": self.stats.snapshot(),
            "config_error": error,
        }

    # -- one launcher's request -----------------------------------------------------------------

    def handle(self, conn: socket.socket) -> None:
        """Serve one launcher connection from request to reply."""
        payload = _recv_message(conn)
        if payload is None:
            return
        try:
            kind, cwd, umask, argv, env = local_wire.decode_request(payload)
        except ValueError as e:
            conn.sendall(local_wire.encode_result(FALLBACK_FAILED, b"", f"pumpcc: {e}\n".encode()))
            return
        if kind == "compile":
            self.compile(conn, cwd, umask, argv, env)
        else:
            conn.sendall(local_wire.encode_json(json.dumps(self.control(kind, cwd, env))))

    def control(self, kind: str, cwd: str, env: dict[str, str]) -> dict:
        """Answer ``pumpcc --stats`` and friends."""
        if kind == "stats":
            return self.status()
        if kind == "zero":
            self.stats.zero()
            return {"ok": True}
        if kind == "stop":
            self.stopping.set()
            return {"ok": True}
        if kind == "live":
            return self.live(cwd, env)
        if kind in ("hosts", "jobs"):
            try:
                config = self.configs.get(cwd, env)
            except ConfigError as e:
                return {"error": str(e)}
            hosts = self.dispatcher.hosts(config)
            up = sum(h["slots"] for h in hosts if h["state"] == "up")
            return {
                "hosts": hosts,
                "local_slots": config.local_slots,
                "jobs": up + config.local_slots,
            }
        return {"ok": True, "pid": os.getpid(), "version": __version__}

    def status(self) -> dict:
        """The stats document plus what the server itself holds."""
        snapshot = self.stats.snapshot()
        snapshot["server"] = {
            "pid": os.getpid(),
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 1),
            "rss_kb": _rss_kb(),
            "cpu_s": round(sum(os.times()[:2]), 3),
            "local_running": self.local_slots.running,
            "local_peak": self.local_slots.peak,
            "files": self.files.memory(),
        }
        return snapshot

    def compile(
        self, conn: socket.socket, cwd: str, umask: int, argv: list[str], env: dict[str, str]
    ) -> None:
        """Run one compile remotely if at all possible, else hand it back to the launcher."""
        job = self._job_begin(argv[-1] if argv else "", "starting")
        try:
            self._compile(conn, cwd, umask, argv, env, job)
        finally:
            self._job_end(job)

    def _compile(
        self,
        conn: socket.socket,
        cwd: str,
        umask: int,
        argv: list[str],
        env: dict[str, str],
        job: int,
    ) -> None:
        started = time.monotonic()
        self.stats.add(compiles=1)
        verbose = env.get("PUMPCC_VERBOSE") == "1"
        try:
            config = self.configs.get(cwd, env)
        except ConfigError as e:
            self._local(
                conn, env, Config(None, ()), "config_error", str(e), "", job, always_say=True
            )
            return
        decision = classify(argv, cwd, env)
        if isinstance(decision, Local):
            self._local(conn, env, config, decision.reason, decision.detail, argv[-1], job)
            return
        self._job_update(job, "remote")
        try:
            outcome = self._remote(decision, config, umask)
        except Exception as e:  # a pumpcc bug must never break the build
            print(f"pumpcc bug, please report:\n{traceback.format_exc()}", file=sys.stderr)
            outcome = Failure("internal_error", f"{type(e).__name__}: {e}")
        if isinstance(outcome, Failure):
            self._local(conn, env, config, outcome.reason, outcome.detail, decision.source, job)
            return
        missing = missing_input(outcome.stderr) if outcome.exit_code else ""
        if missing and _fallback_allowed(env, config):
            # The worker lacked a file: the analysis missed it, or it is missing here too.  A
            # local compile tells which, with the compiler's own words, and never breaks a build
            # over a gap in the analysis.  (PUMPCC_FALLBACK=0 shows the worker's error as is.)
            self._local(conn, env, config, "missing_header", missing, decision.source, job)
            return
        try:
            _write_outputs(decision, outcome.outputs, umask)
        except OSError as e:
            detail = f"writing {e.filename}: {e.strerror}"
            self._local(conn, env, config, "output_error", detail, decision.source, job)
            return
        if isinstance(outcome, Hit):
            self._reply_hit(conn, decision, outcome, verbose, started)
            return
        total_ms = (time.monotonic() - started) * 1000
        self.stats.remote(
            decision.source, outcome.worker, outcome.exit_code, total_ms, outcome.times
        )
        err = outcome.stderr
        if verbose:
            line = f"pumpcc: {decision.source}: remote on {outcome.worker} ({total_ms:.0f} ms)\n"
            err += line.encode()
        conn.sendall(local_wire.encode_result(outcome.exit_code, outcome.stdout, err))

    def _remote(self, compile: Compile, config: Config, umask: int):
        """Analyse and dispatch; returns a ``Remote`` or a ``Failure``."""
        info = compiler_info(compile.compiler)
        identity = (os.path.basename(compile.argv0), info.version, info.target)
        t0 = time.monotonic()
        with self.cpu_bound:
            closure = self.analyzer.closure(compile)
        analysis_ms = (time.monotonic() - t0) * 1000
        self.stats.add(analyses=1)
        self.stats.timing(analysis=analysis_ms)
        reason = closure.gave_up
        if reason is None and plain.forced(compile.env):
            reason = "forced (PUMPCC_FORCE_PLAIN=1)"
        if reason:
            self.stats.analysis_gave_up(reason)
            return self._plain(compile, identity, config, reason, umask)
        outcome = self._run_cached(compile, closure, identity, config)
        if not isinstance(outcome, Failure):
            outcome.times["analysis_ms"] = analysis_ms
        return outcome

    def _plain(
        self, compile: Compile, identity: tuple[str, str, str], config: Config, why: str, umask: int
    ):
        """Plain mode (include_server/plain.py): preprocess here, compile the .i on a worker."""
        prepared = plain.preprocess(compile, umask)
        if isinstance(prepared, plain.NotPlain):
            return Failure(prepared.reason, prepared.detail)
        try:
            outcome = self.dispatcher.run(prepared.compile, prepared.closure, identity, config)
        finally:
            shutil.rmtree(prepared.tmpdir, ignore_errors=True)
        if not isinstance(outcome, Failure):
            self.stats.add(plain=1)
            outcome.stderr = prepared.stderr + outcome.stderr
            outcome.worker = f"{outcome.worker} in plain mode ({why})"
        return outcome

    def _run_cached(self, compile: Compile, closure, identity: tuple[str, str, str], config):
        """Serve the compile from the result cache, or dispatch it and keep a success there."""
        key = None
        if ResultCache.enabled(config, compile.env):
            try:
                info = compiler_info(compile.compiler)
                with self.cpu_bound:
                    found = cache_key.compute(
                        compile, closure, info, self.files, config.cache.base_dir
                    )
            except OSError:
                found = "file_error"  # the dispatch meets the same error and falls back
            if isinstance(found, str):
                self.stats.add(cache_uncacheable=1)
            else:
                key = found
                hit = self.cache.lookup(key, compile, config)
                if hit is not None:
                    return hit
        outcome = self.dispatcher.run(compile, closure, identity, config)
        if key is not None and not isinstance(outcome, Failure):
            self.cache.store(key, compile, outcome, config)
        return outcome

    def _reply_hit(
        self, conn: socket.socket, compile: Compile, hit: Hit, verbose: bool, started: float
    ) -> None:
        """Answer with the cached compiler output, as the compile itself would have."""
        total_ms = (time.monotonic() - started) * 1000
        self.stats.timing(cache_hit=total_ms)
        err = hit.stderr
        if verbose:
            err += f"pumpcc: {compile.source}: {hit.worker} ({total_ms:.0f} ms)\n".encode()
        conn.sendall(local_wire.encode_result(hit.exit_code, hit.stdout, err))

    def _local(
        self,
        conn: socket.socket,
        env: dict[str, str],
        config: Config,
        reason: str,
        detail: str,
        source: str,
        job: int,
        always_say: bool = False,
    ) -> None:
        """Tell the launcher to compile here (holding a local slot), or refuse under FALLBACK=0."""
        if reason not in NOT_FALLBACKS and not _fallback_allowed(env, config):
            self.stats.add(fallback_refused=1)
            message = f"pumpcc: {source}: cannot compile remotely ({reason}: {detail})\n"
            conn.sendall(local_wire.encode_result(FALLBACK_FAILED, b"", message.encode()))
            return
        self.stats.local(reason, detail, source)
        say = ""
        if always_say or env.get("PUMPCC_VERBOSE") == "1":
            say = f"pumpcc: {source}: local ({reason}: {detail})\n" if source else f"{detail}\n"
        self._job_update(job, f"waiting for a local slot ({reason})")
        self.local_slots.acquire(config.local_slots)
        self._job_update(job, f"local ({reason})")
        try:
            conn.sendall(local_wire.encode_local(say))
            conn.settimeout(None)
            while conn.recv(4096):  # the launcher hangs up when its compiler has finished
                pass
        except OSError:
            pass
        finally:
            self.local_slots.release()


def _fallback_allowed(env: dict[str, str], config: Config) -> bool:
    """PUMPCC_FALLBACK, else the config's ``fallback``: may a compile run here instead?"""
    return env.get("PUMPCC_FALLBACK", "1" if config.fallback else "0") != "0"


# How gcc and clang say that an #include (or -include) names no file they can open.
_MISSING_MARKS = (b": No such file or directory", b"' file not found")


def missing_input(stderr: bytes) -> str:
    """The compiler's line saying an included file is missing, or "" if it says no such thing."""
    for line in stderr.splitlines():
        if b"fatal error: " in line and line.rstrip().endswith(_MISSING_MARKS):
            return line.decode(errors="replace").strip()
    return ""


def _write_outputs(compile: Compile, outputs: dict[str, bytes], umask: int) -> None:
    """Write each output atomically (a killed build never leaves half an object)."""
    for name in compile.outputs:
        data = outputs.get(name)
        if data is None:
            continue
        path = os.path.join(compile.cwd, name)
        tmp = f"{path}.pumpcc-{os.getpid()}-{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o666 & ~umask)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)


def _recv_message(conn: socket.socket) -> bytes | None:
    head = b""
    while len(head) < 4:
        chunk = conn.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    size = int.from_bytes(head, "big")
    if size > 64 << 20:
        return None
    chunks, remaining = [], size
    while remaining:
        chunk = conn.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _rss_kb() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Server = self.server.pumpcc  # type: ignore[attr-defined]
        server.active += 1
        server.last_request = time.monotonic()
        try:
            server.handle(self.request)
        except OSError:
            pass  # the launcher went away; it runs the compiler itself
        except Exception:
            print(f"pumpcc bug, please report:\n{traceback.format_exc()}", file=sys.stderr)
        finally:
            server.active -= 1
            server.last_request = time.monotonic()


class _SocketServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 512


def _prepare_folder(folder: str) -> None:
    """Create the runtime folder 0700 and refuse one that another user could write to."""
    os.makedirs(folder, mode=0o700, exist_ok=True)
    st = os.stat(folder)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise SystemExit(f"pumpcc: {folder}: must belong to you with mode 0700; not starting")


def serve(folder: str, idle_timeout: float) -> int:
    """Run the server in ``folder`` until idle or stopped; 0 if another server already runs."""
    _prepare_folder(folder)
    lock = open(os.path.join(folder, "server.lock"), "a+")  # noqa: SIM115 - held for life
    deadline = time.monotonic() + 5  # a stopping server may still hold the lock for a moment
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                return 0  # another server runs
            time.sleep(0.05)
    path = os.path.join(folder, "server.sock")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.umask(0o077)
    state = Server()
    server = _SocketServer(path, _Handler)
    server.pumpcc = state  # type: ignore[attr-defined]
    print(f"pumpcc server {__version__} pid {os.getpid()} listening on {path}", flush=True)
    # Before the first answer, so status.url exists once `pumpcc --start-server` returns.
    cwd, env = os.getcwd(), dict(os.environ)
    start_status_page(lambda: state.live(cwd, env), folder, os.environ)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    while not state.stopping.wait(1.0):
        idle = time.monotonic() - state.last_request
        if state.active == 0 and idle > idle_timeout:
            print("pumpcc server idle, exiting", flush=True)
            break
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # new launchers start a new server from here on
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(folder, STATUS_URL_FILE))
    server.shutdown()
    server.server_close()
    deadline = time.monotonic() + 30
    while state.active and time.monotonic() < deadline:  # let running compiles reply
        time.sleep(0.05)
    return 0


def main() -> int:
    """``python -m include_server.server``: what the launcher spawns."""
    folder = runtime_dir(os.environ)
    idle = float(os.environ.get("PUMPCC_IDLE_TIMEOUT", "3600"))
    return serve(folder, idle)


if __name__ == "__main__":
    sys.exit(main())
