"""A pids cgroup per job: the one limit that bounds a fork bomb.

RLIMIT_NPROC counts all of a user's processes on the machine and does not bind root at all; a pids
cgroup counts exactly one job's processes, whoever runs them.  At start-up the worker looks for a
pids controller it may write to (cgroup v1's pids hierarchy, or a cgroup v2 folder whose
``cgroup.controllers`` offers pids), and makes a folder of its own there.  Per job it makes a
child with ``pids.max``; the compile's first process, a shell, writes its own pid into the child's
``cgroup.procs`` and only then execs prlimit, bwrap and the compiler, so nothing the job starts
runs outside it.  Afterwards every process still listed is killed -- also those that left the
job's session -- and the child removed.  Where no controller is writable (an unprivileged user
without delegation, some containers) jobs run without it, as the worker says at start-up.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import signal
import time

log = logging.getLogger("pumpcc.worker")

_V1 = "/sys/fs/cgroup/pids"
_V2 = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
# The job's first process: join the cgroup named by $0, then become the real command line.
_ENTER = 'echo $$ > "$0/cgroup.procs" && exec "$@"'


class PidsCgroups:
    """Creates, fills and removes the per-job cgroups under this worker's own folder."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._numbers = itertools.count()

    @classmethod
    def find(cls) -> PidsCgroups | None:
        """The worker's own folder under a writable pids controller, or None."""
        for root, own in _candidates():
            base = os.path.join(root + own, f"pumpcc-worker-{os.getpid()}")
            try:
                _sweep(os.path.dirname(base))
                os.makedirs(base, exist_ok=True)
                if root != _V1:
                    _write(os.path.join(base, "cgroup.subtree_control"), "+pids")
                found = cls(base)
                found.remove(found.create(1))  # prove a job folder can be made and limited
                atexit.register(_remove_own, base, os.getpid())
            except OSError as e:
                log.debug("no pids cgroup under %s: %s", root, e)
                with contextlib.suppress(OSError):
                    os.rmdir(base)
                continue
            return found
        return None

    def create(self, processes: int) -> str:
        """A new job folder allowing at most ``processes`` processes (threads count too)."""
        path = os.path.join(self.base, f"job-{next(self._numbers)}")
        os.mkdir(path)
        try:
            _write(os.path.join(path, "pids.max"), str(processes))
        except OSError:
            os.rmdir(path)
            raise
        return path

    @staticmethod
    def enter(path: str) -> list[str]:
        """The command prefix that runs the rest of a command line inside ``path``."""
        return ["/bin/sh", "-c", _ENTER, path]

    @staticmethod
    def remove(path: str) -> None:
        """Kill whatever still runs in the job folder, then remove it."""
        deadline = time.monotonic() + 5
        while True:
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    pids = [int(line) for line in f if line.strip()]
            except FileNotFoundError:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            try:
                os.rmdir(path)
                return
            except OSError:
                if time.monotonic() > deadline:
                    log.warning("cgroup %s still busy; left for the next start-up", path)
                    return
                time.sleep(0.002)  # killed processes leave the cgroup as they exit


def _candidates() -> list[tuple[str, str]]:
    """(controller root, this process's cgroup path) pairs that may hold a pids controller."""
    own_v1 = own_v2 = None
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "pids" in controllers.split(","):
                own_v1 = path
            elif controllers == "":
                own_v2 = path
    found = []
    if own_v1 is not None and os.path.isdir(_V1):
        found.append((_V1, own_v1))
    if own_v2 is not None:
        for root in _V2:
            controllers = os.path.join(root + own_v2, "cgroup.controllers")
            with contextlib.suppress(OSError), open(controllers) as f:
                if "pids" in f.read().split():
                    found.append((root, own_v2))
                    break
    return found


def _sweep(parent: str) -> None:
    """Remove the folders of workers that are gone (a crash leaves them behind)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(parent):
            if not name.startswith("pumpcc-worker-"):
                continue
            pid = name.removeprefix("pumpcc-worker-")
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                folder = os.path.join(parent, name)
                for job in os.listdir(folder):
                    if job.startswith("job-"):
                        PidsCgroups.remove(os.path.join(folder, job))
                with contextlib.suppress(OSError):
                    os.rmdir(folder)


def _remove_own(base: str, creator: int) -> None:
    """At exit of the process that made it (not of its forked children): remove the folder."""
    if os.getpid() == creator:
        with contextlib.suppress(OSError):
            os.rmdir(base)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
