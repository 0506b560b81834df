"""Sending compile jobs to workers: choosing one, uploading what it lacks, handling its answers.

The local server keeps one ``WorkerState`` per worker URL for its whole life: an HTTP session with
its connection pool, the jobs in flight, the digests the worker is known to hold (so a file goes to
a worker once), and its health and compilers (include_server/health.py: failures back a worker
off for a growing period; it is checked before it gets work again; only workers whose compiler
matches get a job).  ``Dispatcher.run`` returns either the worker's result or a ``Failure`` whose
reason becomes a fallback counter.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from adapter.command import Compile
from adapter.config import Config
from include_server.files import FileStore
from include_server.health import Health, WorkerState
from include_server.health import describe as _describe
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


class _Job:
    """A job ready to send: its header serialised once as the manifest blob, named by digest."""

    def __init__(self, header: dict, files: list) -> None:
        self.header = header
        self.files = files
        self.manifest = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
        self.digest = hashlib.sha256(self.manifest).hexdigest()


class _Retry(Exception):
    """This worker cannot take the job; another may (unless ``final``: none can)."""

    def __init__(
        self, reason: str, detail: str, transport: bool = False, final: bool = False
    ) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.transport, self.final = reason, detail, transport, final


class Dispatcher:
    """Chooses workers and runs jobs on them; shared by all threads of the local server."""

    def __init__(self, files: FileStore, stats: Stats) -> None:
        self._files = files
        self._stats = stats
        self._workers: dict[str, WorkerState] = {}
        self._cond = threading.Condition()
        self._health = Health(self._cond)
        self._mismatch_seen = False  # some worker once lacked one of our system headers

    # -- the host list --------------------------------------------------------------------------

    def workers(self, config: Config) -> list[WorkerState]:
        """The states of the configured workers, created on first sight and kept for life.

        Starts the status checks that are due, so looking at the list keeps it fresh.
        """
        states = []
        with self._cond:
            for spec in config.workers:
                state = self._workers.get(spec.url)
                if state is None:
                    state = WorkerState(spec.url, spec.slots, self._session(spec.slots))
                    self._workers[spec.url] = state
                state.slots = spec.slots
                state.timeout = config.connect_timeout
                if config.token:
                    state.session.headers["Authorization"] = f"Bearer {config.token}"
                else:
                    state.session.headers.pop("Authorization", None)
                states.append(state)
        self._health.poke(states)
        return states

    @staticmethod
    def _session(slots: int) -> requests.Session:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=slots * 2 + 2)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "pumpcc"
        # Workers are on the build network: no proxies, no ~/.netrc.  Not reading them from the
        # environment also saves a netrc lookup and proxy parsing on every request.
        session.trust_env = False
        return session

    # -- choosing a worker ----------------------------------------------------------------------

    def _acquire(
        self, config: Config, identity: tuple[str, str, str], tried: set[str]
    ) -> WorkerState | None:
        """Take a slot on the matching worker with the most free capacity relative to its size.

        Waits while every matching worker is full, or while a worker seen for the first time has
        not answered its first status check yet; None when no worker can take the job.
        """
        candidates = [w for w in self.workers(config) if w.url not in tried]
        while True:
            with self._cond:
                now = time.monotonic()
                matching = [w for w in candidates if w.matches(identity, now)]
                free = [w for w in matching if w.in_flight < w.capacity and w.busy_until <= now]
                if free:
                    best = max(free, key=lambda w: (w.load(), w.capacity))
                    best.in_flight += 1
                    return best
                if not matching and not any(w.pending() for w in candidates):
                    return None
                self._cond.wait(timeout=0.5)
            self._health.poke(candidates)  # a backed-off worker may be due its probe by now

    def _nobody(self, config: Config, identity: tuple[str, str, str]) -> Failure:
        """Why no worker was even tried: all down, or none with our compiler."""
        states = self.workers(config)
        now = time.monotonic()
        with self._cond:
            if any(not w.failures and not w.matches(identity, now) for w in states):
                name, version, target = identity
                return Failure(
                    "compiler_mismatch", f"no worker that is up has {name} {version} for {target}"
                )
        return Failure("no_workers", "every configured worker is down")

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
            seen = closure.stats
            files = [(norm(p), self._files.entry(p, st=seen.get(p))) for p in closure.files]
            system = [
                (norm(p), self._files.entry(p, compress=False, st=seen.get(p)))
                for p in closure.system_files
            ]
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
            "system_absent": sorted({norm(p) for p in closure.system_absent}),
            "outputs": compile.outputs,
        }
        job = _Job(header, files)
        tried, last = self._known_mismatches(config, system, header["system_absent"])
        transport_retries = 1
        while True:
            state = self._acquire(config, identity, tried)
            if state is None:
                return last or self._nobody(config, identity)
            tried.add(state.url)
            try:
                return self._send(state, job, config)
            except _Retry as retry:
                last = Failure(retry.reason, f"{state.url}: {retry.detail}")
                if retry.final:
                    return last
                if retry.transport:
                    if transport_retries == 0:
                        return last
                    transport_retries -= 1
                    self._stats.add(retries=1)
            finally:
                self._release(state)

    def _known_mismatches(
        self, config: Config, system: list, absent: list[str]
    ) -> tuple[set[str], Failure | None]:
        """Workers known to lack our copy of one of the job's system headers (or to have one
        where we have none: digest ""), and why.

        A worker answers system_header_mismatch for the same header on every compile that
        includes it; remembering the answer for a while saves each of those compiles a round
        trip to it (and, when no worker has our copy, sends them straight to the fallback)."""
        if not self._mismatch_seen:
            return set(), None
        now = time.monotonic()
        states = [s for s in self.workers(config) if s.system_mismatch]
        if not states:
            return set(), None
        ours = {(p, e.digest) for p, e in system} | {(p, "") for p in absent}
        skipped, last = set(), None
        with self._cond:
            for state in states:
                for (path, digest), until in list(state.system_mismatch.items()):
                    if until <= now:
                        del state.system_mismatch[(path, digest)]
                    elif (path, digest) in ours and state.url not in skipped:
                        skipped.add(state.url)
                        self._stats.worker(state.url, system_header_mismatch=1)
                        what = "differs from ours" if digest else "exists, ours does not"
                        detail = f"{state.url}: its {path} {what} (remembered)"
                        last = Failure("system_header_mismatch", detail)
        return skipped, last

    def _send(self, state: WorkerState, job: _Job, config: Config) -> Remote:
        """Post the job with the blobs the worker lacks; again if it turns out to lack more.

        Two rounds at most: a worker that evicted the manifest learns of the files only after it
        has the manifest again.
        """
        missing_rounds = 2
        fresh_connection = False
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
                reset = isinstance(e, requests.ConnectionError) and not isinstance(
                    e, requests.ConnectTimeout
                )
                if reset and not fresh_connection:
                    # A kept-alive connection the worker closed just as we reused it: ask once
                    # more on a new connection before calling the worker down.  A refused
                    # connection fails again at once; a timeout is never repeated.
                    fresh_connection = True
                    state.session.close()
                    continue
                self._health.mark_down(state, _describe(e))
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
            self._health.mark_down(state, f"bad result: {e}")
            raise _Retry("worker_error", f"bad result: {e}", transport=True) from None
        self._health.mark_up(state)
        state.jobs += 1
        times = _phase_times(head.get("times", {}), elapsed_ms)
        compile_ms, transfer_ms = int(times["compile_ms"]), int(times["transfer_ms"])
        self._stats.worker(state.url, jobs=1, compile_ms=compile_ms, transfer_ms=transfer_ms)
        return Remote(head.get("exit", 1), out, err, outputs, state.url, times)

    def _refusal(self, state: WorkerState, status: int, error: dict, header: dict) -> _Retry:
        """Turn a worker's non-200 answer into the retry decision and fallback reason."""
        code = error.get("error") or f"http_{status}"
        message = error.get("message") or error.get("path") or code
        if code == wire.BUSY:
            self._health.mark_busy(state)
            self._stats.worker(state.url, busy=1)
            return _Retry("workers_busy", "busy")
        self._stats.worker(state.url, errors=1)
        if code in (wire.COMPILER_MISMATCH, wire.UNKNOWN_COMPILER):
            c = header["compiler"]
            identity = (c["name"], c["version"], c["target"])
            state.incompatible[identity] = time.monotonic() + _INCOMPATIBLE_FOR
            return _Retry("compiler_mismatch", message)
        if code == wire.SYSTEM_HEADER_MISMATCH:
            # Counted apart from other errors: the job went on to another worker or ran here
            # (then also a fallback), never against this worker's copy.
            self._stats.worker(state.url, system_header_mismatch=1)
            self._mismatch_seen = True
            path = error.get("path")
            until = time.monotonic() + _INCOMPATIBLE_FOR
            for listed, digest in header["system_files"]:
                if listed == path:
                    state.system_mismatch[(path, digest)] = until
            if path in header["system_absent"]:
                state.system_mismatch[(path, "")] = until
            return _Retry("system_header_mismatch", message)
        if code == wire.UNLISTED_INPUT:
            # The include analysis missed a file the compiler found among the worker's own:
            # every worker would compile against an unchecked copy, so the client compiles it.
            detail = f"the compile read {error.get('path')}, which the include analysis missed"
            return _Retry("unlisted_input", detail, final=True)
        if code == wire.UNAUTHORIZED:
            self._health.mark_down(state, "unauthorized: check token_file")
            return _Retry("unauthorized", "worker refused our token")
        if status >= 500:
            self._health.mark_down(state, f"HTTP {status}")
            return _Retry("worker_error", f"HTTP {status}: {message}", transport=True)
        return _Retry("worker_refused", f"HTTP {status}: {message}")

    def hosts(self, config: Config) -> list[dict]:
        """The rows of ``pumpcc --hosts``, each worker checked now (all at once: a hung one costs
        its timeout once, not once per row)."""
        states = self.workers(config)
        if states:
            with ThreadPoolExecutor(max_workers=min(32, len(states))) as pool:
                list(pool.map(self._health.check, states))
        now = time.monotonic()
        return [
            {
                "url": state.url,
                "slots": state.slots,
                "in_flight": state.in_flight,
                "state": state.state(now),
                "jobs": state.jobs,
            }
            for state in states
        ]


def _phase_times(worker_times: dict, round_trip_ms: float) -> dict:
    """The worker's own times (seconds) plus the phases the stats add up, in milliseconds.

    ``transfer_ms`` is what the worker's handling does not explain: connection, request and
    answer on the wire, HTTP framing.
    """
    times = dict(worker_times)
    try:
        compile_ms = float(worker_times.get("compile", 0)) * 1000
        handled_ms = float(worker_times.get("total", 0)) * 1000
    except (TypeError, ValueError):
        compile_ms = handled_ms = 0.0
    times["round_trip_ms"] = round_trip_ms
    times["compile_ms"] = compile_ms
    times["transfer_ms"] = max(0.0, round_trip_ms - handled_ms)
    return times


def _error_of(response: requests.Response) -> dict:
    try:
        error = response.json()
    except ValueError:
        return {}
    return error if isinstance(error, dict) else {}
