"""Shared helpers for the end-to-end tests: real workers, real servers, real CMake builds."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CASES = REPO / "tests" / "cases"
CORPORA = REPO.parent / "shared" / "corpora"


# The real projects of ../shared/corpora: tarball, top folder, CMake flags (from its README).
CORPUS_PROJECTS = {
    "cjson": ("cjson_1.7.15.orig.tar.gz", "cJSON-1.7.15", ["-DCMAKE_BUILD_TYPE=Release"]),
    "libuv": (
        "libuv1_1.44.2.orig.tar.gz",
        "libuv1-1.44.2",
        ["-DCMAKE_BUILD_TYPE=Release", "-DLIBUV_BUILD_TESTS=OFF"],
    ),
    "curl": (
        "curl_7.88.1.orig.tar.gz",
        "curl-7.88.1",
        [
            "-DCMAKE_BUILD_TYPE=Release",
            "-DCURL_USE_OPENSSL=OFF",
            "-DCURL_ZLIB=OFF",
            "-DBUILD_TESTING=OFF",
            "-DCURL_DISABLE_LDAP=ON",
            "-DUSE_LIBIDN2=OFF",
            "-DCURL_USE_LIBSSH2=OFF",
            "-DCURL_USE_LIBPSL=OFF",
        ],
    ),
    "yaml-cpp": (
        "yaml-cpp_0.7.0+dfsg.orig.tar.xz",
        "yaml-cpp-yaml-cpp-0.7.0",
        ["-DCMAKE_BUILD_TYPE=Release", "-DYAML_CPP_BUILD_TESTS=OFF", "-DYAML_CPP_BUILD_TOOLS=OFF"],
    ),
}


def unpack_corpus(name: str, dest: Path) -> tuple[Path, list[str]]:
    """Unpack a corpus project under ``dest`` (once) and return its source folder and flags."""
    import tarfile

    tarball, top, flags = CORPUS_PROJECTS[name]
    if not (dest / top).is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(CORPORA / tarball) as tar:
            tar.extractall(dest, filter="data")
    return dest / top, list(flags)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    """A real ``pumpcc-worker`` process on 127.0.0.1."""

    def __init__(
        self,
        root: Path,
        slots: int = 4,
        sandbox: str = "none",
        env: dict[str, str] | None = None,
        wrapper: tuple[str, ...] = (),
        **extra: object,
    ) -> None:
        self.env = env  # the worker's environment (its PATH decides which compilers it has)
        # A command the worker runs under, which execs it (unshare: its own view of the files).
        self.wrapper = wrapper
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.slots = slots
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "worker.yaml"
        lines = [
            f"listen: 127.0.0.1:{self.port}",
            f"slots: {slots}",
            f"scratch_dir: {root / 'scratch'}",
            f"sandbox: {sandbox}",
        ] + [f"{k}: {v}" for k, v in extra.items()]
        self.config.write_text("\n".join(lines) + "\n")
        self.log = root / "worker.log"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        """Start (or restart) the process and wait until it answers its health check."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.wrapper, str(VENV_BIN / "pumpcc-worker"), "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/v1/health", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"worker did not answer: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """Kill the whole worker process group at once (a crash, not a drain)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM and wait: the orderly way."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class Client:
    """An isolated pumpcc client: its own runtime folder, so its own local server."""

    def __init__(self, hosts: str = "", **env: str) -> None:
        # Unix socket paths are limited to 108 bytes: keep the runtime folder short.
        self.runtime = tempfile.mkdtemp(prefix="pc-", dir="/tmp")
        self.env = dict(os.environ)
        for key in list(self.env):
            if key.startswith("PUMPCC_"):
                del self.env[key]
        # Tests count where compiles ran: the result cache is opt-in here (PUMPCC_CACHE="1").
        self.env["PUMPCC_CACHE"] = "0"
        self.env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            PUMPCC_DIR=self.runtime,
            PUMPCC_HOSTS=hosts,
            PUMPCC_CONFIG=os.path.join(self.runtime, "none.yaml"),
            **env,
        )
        Path(self.env["PUMPCC_CONFIG"]).write_text("workers: []\n")

    def pumpcc(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        """Run ``pumpcc ARGS`` with this client's environment."""
        return subprocess.run(
            [str(VENV_BIN / "pumpcc"), *args],
            env=self.env,
            capture_output=True,
            check=check,
            **kw,
        )

    def stats(self) -> dict:
        """``pumpcc --stats --json``."""
        import json

        return json.loads(self.pumpcc("--stats", "--json").stdout)

    def close(self) -> None:
        """Stop this client's local server and remove its folder."""
        self.pumpcc("--stop-server", check=False)
        shutil.rmtree(self.runtime, ignore_errors=True)


def cmake_configure(
    src: Path, build: Path, env: dict, launcher: bool, flags: list[str] = ()
) -> None:
    """Configure ``src`` into ``build`` with Ninja, with or without pumpcc as the launcher."""
    cmd = ["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja", *flags]
    if launcher:
        cmd += ["-DCMAKE_C_COMPILER_LAUNCHER=pumpcc", "-DCMAKE_CXX_COMPILER_LAUNCHER=pumpcc"]
    subprocess.run(cmd, env=env, check=True, capture_output=True)


def compile_commands(src: Path, build: Path, flags: list[str]) -> list[dict]:
    """The compile commands of ``src`` (configured once into ``build``, without a launcher, so
    the commands are the compiler's), less those of sources generated at build time."""
    if not (build / "compile_commands.json").exists():
        shutil.rmtree(build, ignore_errors=True)
        export = [*flags, "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON"]
        cmake_configure(src, build, dict(os.environ), launcher=False, flags=export)
    commands = json.loads((build / "compile_commands.json").read_text())
    return [c for c in commands if Path(c["file"]).exists()]


def ninja(build: Path, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ninja in ``build`` and return the finished process (output captured)."""
    done = subprocess.run(
        ["ninja", "-C", str(build), *args], env=env, capture_output=True, text=True
    )
    if check and done.returncode != 0:
        raise AssertionError(f"ninja failed ({done.returncode}):\n{done.stdout[-6000:]}")
    return done


def start_ninja(build: Path, env: dict, jobs: int = 4) -> subprocess.Popen:
    """Ninja in the background (output captured), for tests that act in the middle of a build."""
    return subprocess.Popen(
        ["ninja", "-C", str(build), f"-j{jobs}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def build_in_background(src: Path, build: Path, client: Client, remote: int) -> subprocess.Popen:
    """Configure ``src`` through pumpcc, start ninja -j4, and return once ``remote`` compiles have
    run on workers (or after 60 s): for tests that act in the middle of a build."""
    cmake_configure(src, build, client.env, launcher=True)
    client.pumpcc("--zero-stats")
    proc = start_ninja(build, client.env, 4)
    deadline = time.monotonic() + 60
    while client.stats()["remote"] < remote and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def objects(build: Path) -> dict[str, bytes]:
    """Every object file the build made, by relative path (not CMake's configure-time probes)."""
    return {
        str(p.relative_to(build)): p.read_bytes()
        for p in sorted(build.rglob("*.o"))
        if not any(part.startswith(("CompilerId", "CMakeScratch")) for part in p.parts)
    }


def ninja_deps(build: Path, env: dict) -> dict[str, list[str]]:
    """``ninja -t deps``: for each object, the files it depends on."""
    out = ninja(build, env, "-t", "deps").stdout
    deps: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line and not line.startswith(" "):
            current = line.split(":")[0]
            deps[current] = []
        elif line.strip() and current:
            deps[current].append(line.strip())
    return deps


def same_files(a: Path, b: Path) -> bool:
    """Whether two files have the same bytes."""
    return filecmp.cmp(a, b, shallow=False)
