"""Sending compile jobs to workers: choosing one, uploading what it lacks, handling its answers.

The local server keeps one ``WorkerState`` per worker URL for its whole life: an HTTP session with
its connection pool, the jobs in flight, the digests the worker is known to hold (so a file goes to
a worker once), and its health (failures back a worker off for a growing period; it is probed before
it gets work again).  ``Dispatcher.run`` returns either the worker's result or a ``Failure`` whose
reason becomes a fallback counter.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field

import requests

from adapter.command import Compile
from adapter.config import Config
from include_server.files import FileStore
from include_server.stats import Stats
from worker import wire

# The compiler reads these; the worker passes them through (scrubbing everything else).
PASSED_ENV = (
    "LANG",
    "LC_ALL",
    "LC_MESSAGES",
    "LC_CTYPE",
    "SOURCE_DATE_EPOCH",
    "TZ",
    "CPATH",
    "C_INCLUDE_PATH",
    "CPLUS_INCLUDE_PATH",
    "OBJC_INCLUDE_PATH",
)
_MAX_BACKOFF = 60.0
_INCOMPATIBLE_FOR = 300.0


@dataclass
class Remote:
    """A compile the worker ran (successfully or with a compiler error)."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    outputs: dict[str, bytes]
    worker: str
    times: dict = field(default_factory=dict)


@dataclass
class Failure:
    """A compile no worker could run; ``reason`` is the fallback counter."""

    reason: str
    detail: str


@dataclass
class WorkerState:
    """What the local server knows of one worker across all builds."""

    url: str
    slots: int
    session: requests.Session
    in_flight: int = 0
    failures: int = 0
    down_until: float = 0.0
    down_reason: str = ""
    known: set[str] = field(default_factory=set)
    incompatible: dict[tuple[str, str, str], float] = field(default_factory=dict)
    jobs: int = 0

    def state(self, now: float) -> str:
        """``up``, or ``down: why`` while backed off."""
        if self.failures and now < self.down_until:
            return f"down: {self.down_reason}"
        return "up"


class _Job:
    """A job ready to send: its header serialised once as the manifest blob, named by digest."""

    def __init__(self, header: dict, files: list) -> None:
        self.header = header
        self.files = files
        self.manifest = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        self.digest = hashlib.sha256(self.manifest).hexdigest()


class _Retry(Exception):
    """This worker cannot take the job; another may."""

    def __init__(self, reason: str, detail: str, transport: bool = False) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.transport = reason, detail, transport


class Dispatcher:
    """Chooses workers and runs jobs on them; shared by all threads of the local server."""

    def __init__(self, files: FileStore, stats: Stats) -> None:
        self._files = files
        self._stats = stats
        self._workers: dict[str, WorkerState] = {}
        self._cond = threading.Condition()

    # -- the host list --------------------------------------------------------------------------

    def workers(self, config: Config) -> list[WorkerState]:
        """The states of the configured workers, created on first sight and kept for life."""
        states = []
        with self._cond:
            for spec in config.workers:
                state = self._workers.get(spec.url)
                if state is None:
                    state = WorkerState(spec.url, spec.slots, self._session(spec.slots))
                    self._workers[spec.url] = state
                state.slots = spec.slots
                if config.token:
                    state.session.headers["Authorization"] = f"Bearer {config.token}"
                else:
                    state.session.headers.pop("Authorization", None)
                states.append(state)
        return states

    @staticmethod
    def _session(slots: int) -> requests.Session:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=slots * 2 + 2)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "pumpcc"
        return session

    def probe(self, state: WorkerState, timeout: float) -> bool:
        """Ask a worker whether it is up (``GET /v1/health``), updating its health."""
        try:
            response = state.session.get(state.url + wire.PATH_HEALTH, timeout=timeout)
            ok = response.status_code == 200
            reason = f"health check answered {response.status_code}"
        except requests.RequestException as e:
            ok, reason = False, _describe(e)
        if ok:
            self._mark_up(state)
        else:
            self._mark_down(state, reason)
        return ok

    def _mark_up(self, state: WorkerState) -> None:
        with self._cond:
            state.failures = 0
            state.down_reason = ""
            self._cond.notify_all()

    def _mark_down(self, state: WorkerState, reason: str) -> None:
        with self._cond:
            state.failures += 1
            state.down_until = time.monotonic() + min(_MAX_BACKOFF, 2.0 ** (state.failures - 1))
            state.down_reason = reason
            self._cond.notify_all()

    # -- choosing a worker ----------------------------------------------------------------------

    def _acquire(
        self, config: Config, identity: tuple[str, str, str], tried: set[str]
    ) -> WorkerState | None:
        """Take a slot on the least loaded eligible worker, waiting while all are full."""
        candidates = [w for w in self.workers(config) if w.url not in tried]
        while True:
            now = time.monotonic()
            to_probe = None
            with self._cond:
                eligible = [
                    w
                    for w in candidates
                    if w.incompatible.get(identity, 0) < now
                    and not (w.failures and now < w.down_until)
                ]
                if not eligible:
                    return None
                free = [w for w in eligible if w.in_flight < w.slots]
                if free:
                    best = max(free, key=lambda w: ((w.slots - w.in_flight) / w.slots, w.slots))
                    if best.failures:
                        to_probe = best  # backed off before: make sure it is back first
                    else:
                        best.in_flight += 1
                        return best
                else:
                    self._cond.wait(timeout=0.5)
                    continue
            self.probe(to_probe, config.connect_timeout)

    def _release(self, state: WorkerState) -> None:
        with self._cond:
            state.in_flight -= 1
            self._cond.notify_all()

    # -- running a job --------------------------------------------------------------------------

    def run(self, compile: Compile, closure, identity: tuple[str, str, str], config: Config):
        """Run ``compile`` on some worker: a ``Remote`` result, or a ``Failure`` to fall back."""
        if not config.workers:
            return Failure("no_workers", "no workers configured (see PUMPCC_HOSTS or the YAML)")
        # Workers take normalised paths only (a '..' is how a path escapes a root).  Lexical
        # normalisation is right in the job root, which holds real folders except for the
        # closure's symlinks, which the analysis reports where a '..' crosses one.
        norm = os.path.normpath
        try:
            files = [(norm(p), self._files.entry(p)) for p in closure.files]
            system = [(norm(p), self._files.entry(p, compress=False)) for p in closure.system_files]
        except OSError as e:
            return Failure("file_error", f"{e.filename}: {e.strerror}")
        header = {
            "compiler": {
                "name": os.path.basename(compile.argv0),
                "version": identity[1],
                "target": identity[2],
            },
            "args": compile.args,
            "cwd": compile.cwd,
            "env": {k: compile.env[k] for k in PASSED_ENV if k in compile.env},
            "files": [[p, e.digest] for p, e in files],
            "system_files": [[p, e.digest] for p, e in system],
            "dirs": sorted({norm(d) for d in closure.dirs}),
            "symlinks": [[norm(link), target] for link, target in closure.symlinks],
            "absent": sorted({norm(p) for p in closure.absent}),
            "outputs": compile.outputs,
        }
        job = _Job(header, files)
        tried: set[str] = set()
        transport_retries = 1
        last = Failure("no_workers", "every configured worker is down or incompatible")
        while True:
            state = self._acquire(config, identity, tried)
            if state is None:
                return last
            tried.add(state.url)
            try:
                return self._send(state, job, config)
            except _Retry as retry:
                last = Failure(retry.reason, f"{state.url}: {retry.detail}")
                if retry.transport:
                    if transport_retries == 0:
                        return last
                    transport_retries -= 1
                    self._stats.add(retries=1)
            finally:
                self._release(state)

    def _send(self, state: WorkerState, job: _Job, config: Config) -> Remote:
        """Post the job with the blobs the worker lacks; again if it turns out to lack more.

        Two rounds at most: a worker that evicted the manifest learns of the files only after it
        has the manifest again.
        """
        missing_rounds = 2
        while True:
            blobs, seen = [], set()
            if job.digest not in state.known:
                seen.add(job.digest)
                blobs.append((job.digest, self._files.remember(job.digest, job.manifest)))
            for path, entry in job.files:
                if entry.digest not in state.known and entry.digest not in seen:
                    seen.add(entry.digest)
                    blobs.append((entry.digest, self._files.compressed(path, entry)))
            body = wire.encode_job({"manifest": job.digest}, blobs)
            started = time.monotonic()
            try:
                response = state.session.post(
                    state.url + wire.PATH_COMPILE,
                    data=body,
                    headers={"Content-Type": wire.JOB_CONTENT_TYPE},
                    timeout=(config.connect_timeout, config.compile_timeout),
                )
            except requests.RequestException as e:
                self._mark_down(state, _describe(e))
                self._stats.worker(state.url, errors=1)
                raise _Retry("worker_error", _describe(e), transport=True) from None
            elapsed = (time.monotonic() - started) * 1000
            self._stats.add(bytes_sent=len(body), bytes_received=len(response.content))
            self._stats.worker(
                state.url, bytes_sent=len(body), bytes_received=len(response.content)
            )
            if response.status_code == 200:
                state.known.add(job.digest)
                state.known.update(entry.digest for _, entry in job.files)
                return self._result(state, response.content, elapsed)
            error = _error_of(response)
            code = error.get("error", "")
            if code == wire.MISSING_BLOBS and missing_rounds:
                missing_rounds -= 1
                state.known.difference_update(error.get("missing", []))
                continue
            raise self._refusal(state, response.status_code, error, job.header)

    def _result(self, state: WorkerState, content: bytes, elapsed_ms: float) -> Remote:
        try:
            head, out, err, outputs = wire.decode_result(content)
        except wire.WireError as e:
            self._mark_down(state, f"bad result: {e}")
            raise _Retry("worker_error", f"bad result: {e}", transport=True) from None
        self._mark_up(state)
        state.jobs += 1
        self._stats.worker(state.url, jobs=1)
        times = dict(head.get("times", {}))
        times["round_trip_ms"] = elapsed_ms
        return Remote(head.get("exit", 1), out, err, outputs, state.url, times)

    def _refusal(self, state: WorkerState, status: int, error: dict, header: dict) -> _Retry:
        """Turn a worker's non-200 answer into the retry decision and fallback reason."""
        code = error.get("error") or f"http_{status}"
        message = error.get("message") or error.get("path") or code
        self._stats.worker(state.url, errors=1)
        if code == wire.BUSY:
            return _Retry("workers_busy", "busy")
        if code in (wire.COMPILER_MISMATCH, wire.UNKNOWN_COMPILER):
            c = header["compiler"]
            identity = (c["name"], c["version"], c["target"])
            state.incompatible[identity] = time.monotonic() + _INCOMPATIBLE_FOR
            return _Retry("compiler_mismatch", message)
        if code == wire.SYSTEM_HEADER_MISMATCH:
            return _Retry("system_header_mismatch", message)
        if code == wire.UNAUTHORIZED:
            self._mark_down(state, "unauthorized: check token_file")
            return _Retry("unauthorized", "worker refused our token")
        if status >= 500:
            self._mark_down(state, f"HTTP {status}")
            return _Retry("worker_error", f"HTTP {status}: {message}", transport=True)
        return _Retry("worker_refused", f"HTTP {status}: {message}")

    def hosts(self, config: Config) -> list[dict]:
        """The rows of ``pumpcc --hosts`` (probing each worker now)."""
        rows = []
        for state in self.workers(config):
            self.probe(state, config.connect_timeout)
            now = time.monotonic()
            rows.append(
                {
                    "url": state.url,
                    "slots": state.slots,
                    "in_flight": state.in_flight,
                    "state": state.state(now),
                    "jobs": state.jobs,
                }
            )
        return rows


def _error_of(response: requests.Response) -> dict:
    try:
        error = response.json()
    except ValueError:
        return {}
    return error if isinstance(error, dict) else {}


def _describe(e: Exception) -> str:
    if isinstance(e, requests.Timeout):
        return "timed out"
    if isinstance(e, requests.ConnectionError):
        return "connection refused or reset"
    return type(e).__name__
