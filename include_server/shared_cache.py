"""The workers' shared result cache, as seen from the local server.

Each key lives on one worker, chosen by rendezvous hashing over the configured workers, so a
lookup is one request whichever client asks, and adding a worker moves only its share of keys.
The client stores there itself after a remote compile: the key is computed where every input is
known (here), and the worker that compiled, chosen by load, is usually not the key's home.
Every failure (worker down, timeout, a corrupt answer) is a miss: the cache never breaks a build.
"""

from __future__ import annotations

import hashlib
import time

import requests

from include_server.dispatch import WorkerState
from worker import wire

_TIMEOUT = 10.0


def home(key: str, workers: list[WorkerState]) -> WorkerState | None:
    """The worker that holds ``key``: highest hash of (key, url) among those that are up."""
    now = time.monotonic()
    up = [w for w in workers if w.state(now) == "up"]
    if not up:
        return None
    return max(up, key=lambda w: hashlib.sha256(f"{key} {w.url}".encode()).digest())


def fetch(worker: WorkerState, key: str, connect_timeout: float) -> bytes | None:
    """The entry stored under ``key``, checked against the digest the worker sends; or None."""
    try:
        response = worker.session.get(
            worker.url + wire.PATH_CACHE + key, timeout=(connect_timeout, _TIMEOUT)
        )
    except requests.RequestException:
        return None
    if response.status_code != 200:
        return None
    data = response.content
    if response.headers.get(wire.CACHE_DIGEST_HEADER) != hashlib.sha256(data).hexdigest():
        return None
    return data


def upload(worker: WorkerState, key: str, data: bytes, connect_timeout: float) -> bool:
    """Store an entry on its home worker; False when the worker did not take it."""
    headers = {
        wire.CACHE_DIGEST_HEADER: hashlib.sha256(data).hexdigest(),
        "Content-Type": "application/octet-stream",
    }
    try:
        response = worker.session.put(
            worker.url + wire.PATH_CACHE + key,
            data=data,
            headers=headers,
            timeout=(connect_timeout, _TIMEOUT),
        )
    except requests.RequestException:
        return False
    return response.status_code in (200, 201, 204)
