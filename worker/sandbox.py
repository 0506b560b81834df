"""Run one compiler process confined to its job, with resource limits.

Two ways, chosen at start-up: `bwrap` (bubblewrap: new mount, pid, net and ipc namespaces;
the system folders read-only; only the job folder writable) and `none` (a plain process).  Both
run under `prlimit` (CPU seconds, address space, size of any written file, no core dumps) in a
session of their own, so that the wall-clock limit can kill every process the compiler started,
and, where the worker may create one, in a pids cgroup of their own (worker/cgroups.py) that
bounds how many processes they start and finds those that left the session.  stdout and
stderr go to files in the job folder: the file-size limit then bounds a compiler that floods its
output, and no reader threads are needed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from worker.cgroups import PidsCgroups

log = logging.getLogger("pumpcc.worker")

# Read-only system folders visible in the bwrap sandbox (symlinked ones are recreated as links).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# The part of /etc a compiler needs: the dynamic loader's cache and Debian's alternatives.
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives")
MAX_STREAM = 16 << 20  # stdout/stderr returned to the client; the rest is cut with a note


@dataclass(frozen=True)
class Limits:
    """Per-job resource limits (from the YAML)."""

    cpu_seconds: int
    memory_bytes: int
    output_bytes: int
    wall_seconds: float
    processes: int = 0  # processes and threads at once, in a pids cgroup; 0: no cgroup


@dataclass
class RunResult:
    """What the compiler did: exit status, its output, its own run time, and any limit hit."""

    exit: int
    stdout: bytes
    stderr: bytes
    seconds: float
    limit: str | None = None


class Sandbox:
    """Starts compilers for jobs; `kind` is 'bwrap' or 'none'."""

    def __init__(self, kind: str, extra_ro: tuple[str, ...] = (), processes: int = 0) -> None:
        self.kind = kind
        self.prlimit = shutil.which("prlimit")
        self.bwrap = shutil.which("bwrap")
        if self.prlimit is None:
            raise RuntimeError("prlimit (util-linux) is needed to limit compiles; install it")
        if kind == "bwrap" and self.bwrap is None:
            raise RuntimeError("sandbox: bwrap: bubblewrap is not installed")
        self.extra_ro = tuple(d for d in extra_ro if not d.startswith(SYSTEM_DIRS))
        self.pids = PidsCgroups.find() if processes else None

    def _bwrap_prefix(self, jobdir: str, cwd: str) -> list[str]:
        """bubblewrap arguments: fresh namespaces, system read-only, the job folder writable."""
        # The namespaces that confine a compiler: mount (always), PID, IPC and network.  UTS,
        # cgroup and user namespaces would add 0.3 ms per job and protect nothing a compile uses.
        argv = [self.bwrap or "bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-net"]
        argv += ["--die-with-parent", "--new-session"]
        for d in SYSTEM_DIRS:
            if os.path.islink(d):
                argv += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                argv += ["--ro-bind", d, d]
        for f in ETC_FILES:
            argv += ["--ro-bind-try", f, f]
        argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for d in self.extra_ro:
            argv += ["--ro-bind", d, d]
        argv += ["--bind", jobdir, jobdir, "--chdir", cwd, "--"]
        return argv

    def command(self, argv: list[str], jobdir: str, cwd: str, limits: Limits) -> list[str]:
        """The full command line: prlimit, then bwrap if sandboxed, then the compiler."""
        prefix = [
            self.prlimit or "prlimit",
            f"--cpu={limits.cpu_seconds}",
            f"--as={limits.memory_bytes}",
            f"--fsize={limits.output_bytes}",
            "--core=0",
            "--",
        ]
        if self.kind == "bwrap":
            prefix += self._bwrap_prefix(jobdir, cwd)
        return prefix + argv

    def run(
        self,
        argv: list[str],
        jobdir: str,
        cwd: str,
        env: dict[str, str],
        limits: Limits,
        outputs: list[str],
    ) -> RunResult:
        """Run the compiler to completion or to its wall-clock limit; kill what it left behind.

        `outputs` are the files it may write, checked afterwards against the size limit.
        """
        out_path, err_path = os.path.join(jobdir, "stdout"), os.path.join(jobdir, "stderr")
        start = time.monotonic()
        with self._process_count(limits) as enter:
            cmd = enter + self.command(argv, jobdir, cwd, limits)
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                proc = subprocess.Popen(
                    cmd,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    close_fds=True,
                )
            timed_out = not _wait_exited(proc.pid, limits.wall_seconds)
            # The leader is a zombie (or still running) here, so its pid still names the group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            status = proc.wait()
            seconds = time.monotonic() - start
        stdout, stderr = _read_capped(out_path), _read_capped(err_path)
        limit = _which_limit(status, timed_out, [out_path, err_path, *outputs], limits)
        if limit:
            stderr += f"pumpcc-worker: the compile exceeded the worker's {limit} limit\n".encode()
        exit_code = 128 - status if status < 0 else status  # as a shell reports a signal
        if limit and exit_code == 0:  # a limit never passes for success
            exit_code = 1
        return RunResult(exit_code, stdout, stderr, seconds, limit)

    @contextlib.contextmanager
    def _process_count(self, limits: Limits) -> Iterator[list[str]]:
        """The command prefix that puts a job in a pids cgroup of its own, if there is one; on
        leaving, whatever still runs there is killed -- also what left the session."""
        cgroup = None
        if self.pids:
            try:
                cgroup = self.pids.create(limits.processes)
            except OSError as e:
                log.warning("job runs without its process limit: %s", e)
        try:
            yield self.pids.enter(cgroup) if cgroup else []
        finally:
            if cgroup:
                self.pids.remove(cgroup)


def _wait_exited(pid: int, timeout: float) -> bool:
    """Wait for exit without reaping (so the pid stays reserved); False on timeout.

    A pidfd wakes us the moment the compiler exits, where Popen.wait(timeout) polls in steps of
    up to 50 ms, which would be most of the worker's overhead on a small compile.
    """
    fd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if poller.poll(left * 1000):
                return True
    finally:
        os.close(fd)


def _read_capped(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read(MAX_STREAM + 1)
    if len(data) > MAX_STREAM:
        data = data[:MAX_STREAM] + b"\n[pumpcc-worker: output cut]\n"
    return data


def _which_limit(status: int, timed_out: bool, written: list[str], limits: Limits) -> str | None:
    """Name the limit that ended the compile, if one did.

    The signal may have hit a child (cc1, or a shell's command), which the parent then reports
    as 128 + signal or as an internal error; a written file at the size limit tells too.
    """
    if timed_out:
        return "wall_seconds"
    if status in (-signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGXCPU):
        return "cpu_seconds"
    if status in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ) or any(
        _size(p) >= limits.output_bytes for p in written
    ):
        return "output_bytes"
    return None


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:
        return 0


def probe_bwrap() -> str | None:
    """Why bwrap cannot run here (None if it can), by sandboxing /bin/true once."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed"
    try:
        sandbox = Sandbox("bwrap")
        true = shutil.which("true") or "/bin/true"
        run = subprocess.run(
            sandbox._bwrap_prefix("/tmp", "/") + [true],
            capture_output=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        return str(e)
    if run.returncode != 0:
        return run.stderr.decode(errors="replace").strip() or f"exit {run.returncode}"
    return None


def choose(kind: str, extra_ro: tuple[str, ...], processes: int = 0) -> Sandbox:
    """Resolve `auto` by probing, and refuse `bwrap` that cannot run; logs the choice."""
    if kind in ("auto", "bwrap"):
        problem = probe_bwrap()
        if problem is None:
            kind = "bwrap"
        elif kind == "bwrap":
            raise RuntimeError(f"sandbox: bwrap: cannot run here: {problem}")
        else:
            log.warning("sandbox auto: bwrap cannot run (%s); compiles run unconfined", problem)
            kind = "none"
    sandbox = Sandbox(kind, extra_ro, processes)
    if sandbox.pids:
        log.info("sandbox: %s; job processes counted in %s", kind, sandbox.pids.base)
    elif processes:
        log.warning(
            "sandbox: %s; job_processes: no writable pids cgroup here: a fork bomb is bounded "
            "only by the job's CPU and wall-clock limits",
            kind,
        )
    else:
        log.info("sandbox: %s (job_processes: 0, no per-job process limit)", kind)
    return sandbox
