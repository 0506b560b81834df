"""What the local server knows of each worker: its load, its compilers and whether it is up.

Scheduling must never wait on a dead or hung worker, yet only send jobs to workers whose compiler
matches.  So each worker's ``GET /v1/status`` (slots, load, compilers with version and target) is
fetched on a short-lived background thread: when the worker is first seen, every
``REFRESH_EVERY`` seconds while compiles come in, and as the probe of a backed-off worker once its
back-off has run out.  A compile never performs one of these requests itself; it only waits, for a
worker seen for the first time, until that worker's first answer (or its timeout) is in.

The checks are started lazily, from :meth:`Health.poke`, which the dispatcher calls whenever it
looks at the host list: an idle server sends nothing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests

from worker import wire

REFRESH_EVERY = 30.0
MAX_BACKOFF = 60.0
BUSY_PAUSE = 1.0  # after a "busy" answer, other jobs leave that worker alone this long


@dataclass
class WorkerState:
    """One worker across all builds; fields are guarded by the dispatcher's condition."""

    url: str
    slots: int  # from the client's config: how many jobs we may give it at once
    session: requests.Session
    timeout: float = 2.0  # the config's connect_timeout, used for status checks too
    in_flight: int = 0
    failures: int = 0  # consecutive; > 0 means backed off until a check succeeds
    down_until: float = 0.0
    down_reason: str = ""
    known: set[str] = field(default_factory=set)
    incompatible: dict[tuple[str, str, str], float] = field(default_factory=dict)
    # (path, our digest) of system headers it lacks or has other bytes for -> until when that
    # is believed: jobs including one go elsewhere without asking it again.
    system_mismatch: dict[tuple[str, str], float] = field(default_factory=dict)
    jobs: int = 0
    # From the worker's last /v1/status answer.
    compilers: dict[str, tuple[str, str]] | None = None  # name -> (version, target); None: unknown
    remote_slots: int | None = None
    others: int = 0  # jobs running or queued there that are not ours
    checked_at: float = float("-inf")
    checking: bool = False
    busy_until: float = 0.0

    def state(self, now: float) -> str:
        """``up``, or ``down: why`` until a check finds it back."""
        return f"down: {self.down_reason}" if self.failures else "up"

    @property
    def capacity(self) -> int:
        """Jobs we give it at once: our ``slots``, but never more than the worker has."""
        return min(self.slots, self.remote_slots or self.slots)

    def pending(self) -> bool:
        """Seen for the first time and not yet answered: worth waiting for a moment."""
        return self.compilers is None and not self.failures

    def matches(self, identity: tuple[str, str, str], now: float) -> bool:
        """Up, and holding the compiler ``identity`` (name, version, target) as far as we know."""
        if self.failures or self.compilers is None:
            return False
        name, version, target = identity
        if self.compilers.get(name) != (version, target):
            return False
        return self.incompatible.get(identity, 0.0) < now  # a 409 overrules a stale status

    def load(self) -> float:
        """Free share of its capacity; the scheduler picks the highest."""
        return (self.capacity - self.in_flight - self.others) / self.capacity


class Health:
    """Runs the status checks and keeps every worker's health and capabilities current."""

    def __init__(self, cond: threading.Condition) -> None:
        self._cond = cond

    def poke(self, states: list[WorkerState]) -> None:
        """Start a background check of each worker that is due one (first sight, stale, probe)."""
        now = time.monotonic()
        due = []
        with self._cond:
            for state in states:
                if state.checking:
                    continue
                if state.failures:
                    wanted = now >= state.down_until
                else:
                    wanted = now - state.checked_at >= REFRESH_EVERY
                if wanted:
                    state.checking = True
                    due.append(state)
        for state in due:
            threading.Thread(target=self._check_in_background, args=(state,), daemon=True).start()

    def _check_in_background(self, state: WorkerState) -> None:
        try:
            self.check(state)
        finally:
            with self._cond:
                state.checking = False

    def check(self, state: WorkerState) -> bool:
        """Fetch ``GET /v1/status`` now and record what it says; False if the worker is down."""
        try:
            response = state.session.get(state.url + wire.PATH_STATUS, timeout=state.timeout)
        except requests.RequestException as e:
            self.mark_down(state, describe(e), probe=True)
            return False
        if response.status_code == 401:
            self.mark_down(state, "unauthorized: check token_file", probe=True)
            return False
        try:
            status = response.json() if response.status_code == 200 else None
            compilers = _compilers(status["compilers"])
            remote_slots = int(status["slots"])
            running = int(status.get("in_flight", 0)) + int(status.get("queued", 0))
        except (ValueError, TypeError, KeyError):
            self.mark_down(state, f"status answered {response.status_code}", probe=True)
            return False
        with self._cond:
            state.compilers, state.remote_slots = compilers, max(1, remote_slots)
            state.others = max(0, running - state.in_flight)
            state.checked_at = time.monotonic()
            state.failures, state.down_reason = 0, ""
            self._cond.notify_all()
        return True

    def mark_up(self, state: WorkerState) -> None:
        """A job went through: whatever failed before is over."""
        with self._cond:
            if state.failures:
                state.failures, state.down_reason = 0, ""
                self._cond.notify_all()

    def mark_down(self, state: WorkerState, reason: str, probe: bool = False) -> None:
        """Back the worker off.  Jobs that were already in flight when it failed do not lengthen
        the back-off (a hung worker fails all its slots at once); failed probes do."""
        with self._cond:
            if state.failures and not probe:
                return
            state.failures += 1
            backoff = min(MAX_BACKOFF, 2.0 ** (state.failures - 1))
            state.down_until = time.monotonic() + backoff
            state.down_reason = reason
            self._cond.notify_all()

    def mark_busy(self, state: WorkerState) -> None:
        """The worker answered "busy": others' jobs fill it; try it again a little later."""
        with self._cond:
            state.busy_until = time.monotonic() + BUSY_PAUSE


def _compilers(listed: object) -> dict[str, tuple[str, str]]:
    """The status document's compilers as name -> (version, target)."""
    if not isinstance(listed, dict):
        raise TypeError("compilers is not a mapping")
    return {str(n): (str(c["version"]), str(c["target"])) for n, c in listed.items()}


def describe(e: Exception) -> str:
    """A transport failure as the few words ``pumpcc --hosts`` shows."""
    if isinstance(e, requests.Timeout):
        return "timed out"
    if isinstance(e, requests.ConnectionError):
        return "connection refused or reset"
    return type(e).__name__
