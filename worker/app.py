"""The worker's WSGI application: routing, auth, slots, and JSON answers.

A plain WSGI callable (no framework: four routes do not need one) run by gunicorn's threaded
worker in a single process, so the slot count, the blob index and the counters are ordinary
in-process state shared by the request threads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

from worker import __version__, wire
from worker.cache import NAME, CacheStore
from worker.config import Config
from worker.errors import Refusal, bad_request
from worker.job import Engine, run_job
from worker.metrics import Metrics, prometheus

log = logging.getLogger("pumpcc.worker")

StartResponse = Callable[..., object]
_KNOWN_PATHS = (wire.PATH_HEALTH, wire.PATH_STATUS, wire.PATH_COMPILE, wire.PATH_METRICS)
_READ_CHUNK = 1 << 20
# URL prefix -> cache namespace: pumpcc's entries, Bazel's action cache and content store.
_CACHE_ROUTES = {wire.PATH_CACHE: "v1", "/ac/": "ac", "/cas/": "cas"}


class Slots:
    """`slots` compiles at once; a bounded number of requests may wait a short time for one."""

    def __init__(self, slots: int, queue_limit: int, timeout: float) -> None:
        self.slots = slots
        self.queue_limit = queue_limit
        self.timeout = timeout
        self.in_flight = 0
        self.queued = 0
        self._cond = threading.Condition()

    def acquire(self) -> bool:
        """Take a slot, waiting up to the queue timeout; False means answer busy."""
        with self._cond:
            if self.in_flight < self.slots:
                self.in_flight += 1
                return True
            if self.queued >= self.queue_limit:
                return False
            self.queued += 1
            try:
                got = self._cond.wait_for(lambda: self.in_flight < self.slots, self.timeout)
            finally:
                self.queued -= 1
            if got:
                self.in_flight += 1
            return got

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()


class WorkerApp:
    """The WSGI callable."""

    def __init__(self, config: Config, engine: Engine, token: str | None) -> None:
        self.config = config
        self.engine = engine
        self.expected = f"Bearer {token}".encode() if token else None
        self.slots = Slots(config.slots, config.queue_limit, config.queue_timeout)
        self.metrics = Metrics()
        self.started = time.time()
        self.cache = None
        if config.cache_max_bytes:
            root = os.path.join(os.path.abspath(config.scratch_dir), "cache")
            self.cache = CacheStore(root, config.cache_max_bytes)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        arrived = time.monotonic()
        path = environ.get("PATH_INFO", "")
        try:
            status, headers, body = self._route(environ, path, arrived)
        except Refusal as r:
            status, headers, body = r.status, [], json.dumps(r.body).encode()
            headers.append(("Content-Type", "application/json"))
        except Exception:
            log.exception("pumpcc-worker bug while answering %s; please report it", path)
            status, body = 500, json.dumps({"error": "internal"}).encode()
            headers = [("Content-Type", "application/json")]
        if status in (401, 413, 503):  # the body may be unread: do not reuse the connection
            headers.append(("Connection", "close"))
        self.metrics.request(path if path in _KNOWN_PATHS else "other", status)
        self.metrics.add("bytes_sent", len(body))
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        return [body]

    def _route(self, environ: dict, path: str, arrived: float) -> tuple[int, list, bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if path == wire.PATH_HEALTH:
            return _json(200, {"ok": True, "version": __version__})
        self._authorize(environ)
        prefix = next((p for p in _CACHE_ROUTES if path.startswith(p)), None)
        if prefix is not None:
            return self._cache(environ, method, _CACHE_ROUTES[prefix], path[len(prefix) :])
        if path == wire.PATH_COMPILE:
            if method != "POST":
                raise Refusal(405, "method_not_allowed")
            return self._compile(environ, arrived)
        if method != "GET":
            raise Refusal(405, "method_not_allowed")
        if path == wire.PATH_STATUS:
            return _json(200, self.status())
        if path == wire.PATH_METRICS:
            text = prometheus(self.metrics, self._gauges())
            return 200, [("Content-Type", "text/plain; version=0.0.4")], text.encode()
        raise Refusal(404, "not_found")

    def _authorize(self, environ: dict) -> None:
        """Constant-time check of the bearer token; auth is off only without a token (loopback)."""
        if self.expected is None:
            return
        given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
        if not hmac.compare_digest(given, self.expected):
            _drain(environ, self.config.max_request_bytes)
            raise Refusal(401, wire.UNAUTHORIZED)

    def _compile(self, environ: dict, arrived: float) -> tuple[int, list, bytes]:
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > self.config.max_request_bytes:
            raise Refusal(413, wire.TOO_LARGE, max_bytes=self.config.max_request_bytes)
        if not self.slots.acquire():
            self.metrics.add("busy")
            _drain(environ, self.config.max_request_bytes)
            raise Refusal(503, wire.BUSY)
        try:
            body = _read_body(environ, self.config.max_request_bytes)
            self.metrics.add("bytes_received", len(body))
            try:
                header, blobs = wire.decode_job(body)
            except wire.WireError as e:
                raise bad_request(str(e)) from None
            del body
            hits, misses = self.engine.blobs.hits, self.engine.blobs.misses
            outcome = run_job(self.engine, header, blobs, arrived)
        finally:
            self.slots.release()
        self.metrics.add("blob_hits", self.engine.blobs.hits - hits)
        self.metrics.add("blob_misses", self.engine.blobs.misses - misses)
        self.metrics.add("compiles")
        self.metrics.add("compile_failures", int(outcome.exit != 0))
        self.metrics.add("limits_exceeded", int(outcome.limit is not None))
        self.metrics.job(time.monotonic() - arrived, outcome.compile_seconds)
        return 200, [("Content-Type", wire.RESULT_CONTENT_TYPE)], outcome.body

    def _cache(self, environ: dict, method: str, ns: str, name: str) -> tuple[int, list, bytes]:
        """GET, HEAD or PUT one cache entry; an upload must match its digest before it is kept.

        A ``cas`` name is the content's own sha256; a pumpcc entry carries its body's sha256 in
        a header (its name is the compile's key); an ``ac`` entry cannot be checked (its name
        is the action's digest) and is kept as given, as Bazel's own HTTP caches do.
        """
        if self.cache is None:
            raise Refusal(404, "no_cache", message="this worker keeps no shared cache")
        if not NAME.fullmatch(name):
            raise bad_request(f"cache entry name {name[:80]!r} is not a sha256 hex digest")
        octets = [("Content-Type", "application/octet-stream")]
        if method == "HEAD":
            if self.cache.size(ns, name) is None:
                raise Refusal(404, "not_found")
            return 200, octets, b""
        if method == "GET":
            data = self.cache.get(ns, name)
            if data is None:
                raise Refusal(404, "not_found")
            if ns == "v1":
                octets.append((wire.CACHE_DIGEST_HEADER, hashlib.sha256(data).hexdigest()))
            return 200, octets, data
        if method != "PUT":
            raise Refusal(405, "method_not_allowed")
        body = _read_body(environ, self.config.max_request_bytes)
        digest = hashlib.sha256(body).hexdigest()
        claimed = {"cas": name, "v1": environ.get("HTTP_X_PUMPCC_SHA256")}.get(ns, digest)
        if digest != claimed:
            raise bad_request(f"upload to /{ns}/{name} does not match its sha256")
        self.cache.put(ns, name, body)
        return 200, [], b""

    def _gauges(self) -> dict[str, float]:
        blobs = self.engine.blobs.stats()
        return {
            "slots": self.slots.slots,
            "in_flight": self.slots.in_flight,
            "queued": self.slots.queued,
            "blob_count": blobs["count"],
            "blob_bytes": blobs["bytes"],
        }

    def status(self) -> dict:
        """The /v1/status document: capacity, load, compilers, cache and counters."""
        requests, counts, job_seconds, compile_seconds = self.metrics.snapshot()
        return {
            "version": __version__,
            "protocol": wire.PROTOCOL_VERSION,
            "slots": self.slots.slots,
            "in_flight": self.slots.in_flight,
            "queued": self.slots.queued,
            "load": list(os.getloadavg()),
            "uptime": round(time.time() - self.started, 3),
            "sandbox": self.engine.sandbox.kind,
            # The per-job process limit, or null where no pids cgroup could be made.
            "job_processes": self.engine.limits.processes if self.engine.sandbox.pids else None,
            "compilers": {n: c.as_json() for n, c in self.engine.compilers.items()},
            "blobs": self.engine.blobs.stats(),
            "cache": self.cache.stats() if self.cache else None,
            "jobs": {
                "compiles": counts.get("compiles", 0),
                "failed": counts.get("compile_failures", 0),
                "limits_exceeded": counts.get("limits_exceeded", 0),
                "busy": counts.get("busy", 0),
                "job_seconds": round(job_seconds, 6),
                "compiler_seconds": round(compile_seconds, 6),
            },
            "bytes_received": counts.get("bytes_received", 0),
            "bytes_sent": counts.get("bytes_sent", 0),
        }


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _json(status: int, doc: dict) -> tuple[int, list, bytes]:
    return status, [("Content-Type", "application/json")], json.dumps(doc).encode()


def _read_body(environ: dict, limit: int) -> bytes:
    """The whole request body, at most `limit` bytes (413 beyond); a short body is a 400."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    want = int(length) if length.isdigit() else limit + 1
    parts, size = [], 0
    try:
        while size < want:
            chunk = stream.read(min(_READ_CHUNK, want - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    except Exception as e:  # gunicorn raises its own errors for broken chunked bodies
        raise bad_request(f"cannot read the request body: {e}") from None
    if size > limit:
        raise Refusal(413, wire.TOO_LARGE, max_bytes=limit)
    if length.isdigit() and size != want:
        raise bad_request(f"request body truncated: {size} of {want} bytes")
    return b"".join(parts)


def _drain(environ: dict, limit: int) -> None:
    """Read and drop an unread body so the client gets our answer, not a reset connection."""
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH") or ""
    if stream is None or not length.isdigit() or int(length) > limit:
        return
    left = int(length)
    try:
        while left > 0 and (chunk := stream.read(min(_READ_CHUNK, left))):
            left -= len(chunk)
    except Exception:  # a client that hangs up while we drain needs no answer
        return
