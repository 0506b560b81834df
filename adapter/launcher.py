"""The per-compile launcher: ``pumpcc COMPILER ARGS...`` or a masquerade link named like a compiler.

Ninja runs this once per compile, so every millisecond here is paid hundreds of times per build.
It imports only ``os``, ``sys``, ``_socket`` and ``adapter.local_wire`` (measured: about 9 ms of CPU
including the interpreter); all real work -- parsing, analysis, HTTP -- happens in the long-lived
local server.  Whatever goes wrong on the way to the server, the compiler still runs here.
"""

import _socket
import os
import sys

from adapter import local_wire

FALLBACK_FAILED = 110  # exit status when PUMPCC_FALLBACK=0 forbids the local run (contract)
_RESTORED_SIGNALS = (13, 25)  # SIGPIPE, SIGXFSZ on Linux, without importing signal per compile
_LAUNCHER_NAMES = ("pumpcc", "pumpcc.py", "launcher.py")


def runtime_dir(env) -> str:
    """Where the local server's socket, lock and log live (one server per user)."""
    explicit = env.get("PUMPCC_DIR")
    if explicit:
        return explicit
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg:
        return xdg + "/pumpcc"
    return f"/tmp/pumpcc-{os.getuid()}"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _recv_message(sock) -> bytes:
    """Read one length-prefixed message; b"" if the server closed the connection early."""
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            return b""
        head += chunk
    size = int.from_bytes(head, "big")
    parts = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return b""
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _connect(path: str):
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def _start_server(folder: str) -> int:
    """Spawn the server detached from this process group; it exits at once if one already runs."""
    log = folder + "/server.log"
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    argv = [sys.executable, "-m", "include_server.server"]
    return os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions, setsid=True)


def connect_server(env, start: bool = True):
    """Connect to the user's local server, starting it on first use (bounded wait)."""
    folder = runtime_dir(env)
    path = folder + "/server.sock"
    try:
        return _connect(path)
    except OSError:
        if not start:
            raise
    from fcntl import LOCK_EX, LOCK_NB, flock
    from time import sleep

    # Only the launcher holding start.lock spawns a server; the others wait for the socket, so
    # fifty launchers starting at once spawn one server, not fifty.  Each stops waiting as soon
    # as it is clear no server is coming: the spawned one exited, or the spawner gave up.
    os.makedirs(folder, mode=0o700, exist_ok=True)
    lock = os.open(folder + "/start.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        flock(lock, LOCK_EX | LOCK_NB)
        spawned = _start_server(folder)
    except BlockingIOError:
        spawned = 0
    delay = 0.005
    waited = 0.0
    try:
        while True:
            try:
                return _connect(path)
            except OSError:
                if waited > 15:
                    raise
                if _no_server_coming(spawned, lock):
                    return _connect(path)  # a last try: it may have come up meanwhile
            sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.1)
    finally:
        os.close(lock)


def _no_server_coming(spawned: int, lock: int) -> bool:
    """Whether waiting longer is pointless: our server died, or the spawner released the lock."""
    from fcntl import LOCK_EX, LOCK_NB, flock

    if spawned:
        return os.waitpid(spawned, os.WNOHANG)[0] == spawned
    try:
        flock(lock, LOCK_EX | LOCK_NB)  # the spawner holds it until it connects or gives up
    except BlockingIOError:
        return False
    return True


def _find_next_on_path(name: str, env) -> str:
    """For a masquerade link: the next program called ``name`` on PATH that is not pumpcc."""
    own = os.path.realpath(sys.argv[0])
    for folder in env.get("PATH", "").split(":"):
        candidate = (folder or ".") + "/" + name
        if os.access(candidate, os.X_OK) and os.path.realpath(candidate) != own:
            return candidate
    return name


def _run_locally(argv: list[str], env) -> int:
    """Run the compiler here, wait for it, and return its exit status."""
    try:
        # Python ignores SIGPIPE and SIGXFSZ; the compiler (and its pipes to cc1 and as) must not.
        pid = os.posix_spawnp(argv[0], argv, env, setsigdef=_RESTORED_SIGNALS)
    except OSError as e:
        _write_all(2, f"pumpcc: cannot run {argv[0]}: {e.strerror}\n".encode())
        return 127
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _compile(argv: list[str]) -> int:
    env = os.environ
    if env.get("PUMPCC_DISABLE") == "1":
        return _run_locally(argv, env)
    # Inside a Bazel action (sandboxed or not) a server we spawned would die with the action, or
    # be confined to its sandbox: Bazel users start it beforehand (README "Bazel").
    in_bazel = "/execroot/" in os.getcwd()
    try:
        sock = connect_server(env, start=not in_bazel)
    except OSError as e:
        if env.get("PUMPCC_FALLBACK") == "0":
            where = runtime_dir(env)
            message = (
                f"pumpcc: local server unreachable ({e.strerror or e}); see {where}/server.log\n"
            )
            if in_bazel:
                message = (
                    f"pumpcc: no local server in {where}: inside Bazel, run `pumpcc "
                    "--start-server` before `bazel build` (with PUMPCC_DIR passed by "
                    "--action_env)\n"
                )
            _write_all(2, message.encode())
            return FALLBACK_FAILED
        return _run_locally(argv, env)
    try:
        umask = os.umask(0o22)
        os.umask(umask)
        sock.sendall(local_wire.encode_request("compile", os.getcwd(), umask, argv, dict(env)))
        reply = _recv_message(sock)
    except OSError:
        reply = b""
    if not reply:
        sock.close()
        return _run_locally(argv, env)
    kind = reply[0]
    if kind == local_wire.RESULT:
        sock.close()
        code, out, err = local_wire.decode_result(reply)
        _write_all(1, out)
        _write_all(2, err)
        return code
    # LOCAL: keep the connection open while the compiler runs; closing it frees the local slot.
    if len(reply) > 1:
        _write_all(2, reply[1:])
    code = _run_locally(argv, env)
    sock.close()
    return code


def main() -> int:
    """Entry point of the ``pumpcc`` script."""
    name = sys.argv[0].rpartition("/")[2]
    if name not in _LAUNCHER_NAMES:
        return _compile([_find_next_on_path(name, os.environ)] + sys.argv[1:])
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        from adapter import cli

        return cli.main(args)
    return _compile(args)
