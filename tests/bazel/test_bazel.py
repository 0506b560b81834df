"""pumpcc as Bazel's compiler, and the workers as Bazel's HTTP remote cache.

Debian's bazel-bootstrap (4.2.3) builds tests/bazel/workspace offline with the stub rules_cc and
rules_java of bazel-bootstrap-source.  The reference is a plain Bazel build with gcc; then, with
``CC`` a masquerade link to pumpcc and PUMPCC_FALLBACK=0, every compile must run on the worker in
each of Bazel's strategies with the same objects and dependency files; then a ``bazel clean`` and
rebuild with ``--remote_cache`` pointed at the worker must be all remote cache hits.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import VENV_BIN, Worker

BAZEL = shutil.which("bazel")
MOCK_REPOS = Path("/usr/src/bazel-bootstrap/mock_repos")
WORKSPACE = Path(__file__).parent / "workspace"
TOKEN = "bazel-test-token"
COMPILES = 3  # util.c, lib.c, main.c

pytestmark = [
    pytest.mark.skipif(
        BAZEL is None, reason="bazel is absent (Debian: apt-get install bazel-bootstrap)"
    ),
    pytest.mark.skipif(
        not MOCK_REPOS.is_dir(),
        reason=f"{MOCK_REPOS} is absent (Debian: apt-get install bazel-bootstrap-source)",
    ),
    pytest.mark.timeout(900),
]


class Bazel:
    """One Bazel server for the test (its own output root), driven in ``workspace``."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.workspace = tmp / "ws"
        shutil.copytree(WORKSPACE, self.workspace)
        self.startup = [BAZEL, f"--output_user_root={tmp / 'root'}", "--max_idle_secs=300"]
        self.env = env
        self.common = [
            f"--override_repository=rules_cc={MOCK_REPOS / 'rules_cc'}",
            f"--override_repository=rules_java={MOCK_REPOS / 'rules_java'}",
        ]

    def run(self, command: str, *args: str, cc: str = "/usr/bin/gcc") -> str:
        """``bazel COMMAND ARGS``; returns its stderr (where Bazel reports), raising on failure."""
        env = dict(self.env, CC=cc)
        flags = [*self.common, f"--repo_env=CC={cc}"] if command == "build" else []
        done = subprocess.run(
            [*self.startup, command, *flags, *args],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise AssertionError(f"bazel {command} failed:\n{done.stderr[-8000:]}")
        return done.stderr

    def outputs(self) -> dict[str, bytes]:
        """Objects, dependency files and the binary, by path under bazel-bin."""
        root = self.workspace / "bazel-bin"
        found = {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.suffix in (".o", ".d") and p.is_file()
        }
        found["app/app"] = (root / "app" / "app").read_bytes()
        return found

    def shutdown(self) -> None:
        subprocess.run([*self.startup, "shutdown"], cwd=self.workspace, capture_output=True)


@pytest.fixture
def setup(tmp_path, client_for):
    """A worker with a token, a client for it, masquerade links, and a Bazel server."""
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    worker = Worker(tmp_path / "worker", token_file=str(token))
    client = client_for(worker, PUMPCC_FALLBACK="0")
    Path(client.env["PUMPCC_CONFIG"]).write_text(
        f"workers: []\ntoken_file: {token}\ncache: {{enabled: false}}\n"  # count remote compiles
    )
    links = tmp_path / "links"
    links.mkdir()
    (links / "gcc").symlink_to(VENV_BIN / "pumpcc")
    bazel = Bazel(tmp_path, client.env)
    yield worker, client, links / "gcc", bazel
    bazel.shutdown()
    worker.stop()


PUMPCC_ENV = ["--action_env=PUMPCC_DIR", "--action_env=PUMPCC_CONFIG", "--action_env=PUMPCC_HOSTS"]


def test_bazel_builds_through_pumpcc_and_caches_on_the_worker(setup):
    worker, client, gcc, bazel = setup
    bazel.run("build", "//app")
    reference = bazel.outputs()
    assert len([p for p in reference if p.endswith(".o")]) == COMPILES

    # The server starts outside Bazel's sandboxes (README "Bazel"); actions find it by PUMPCC_DIR.
    client.pumpcc("--start-server")
    # Configuring the toolchain for the new CC probes it (test compiles): not counted below.
    bazel.run("build", "//util", "--action_env=PUMPCC_FALLBACK=0", *PUMPCC_ENV, cc=str(gcc))
    for strategy in ("linux-sandbox", "processwrapper-sandbox", "local"):
        bazel.run("clean")
        client.pumpcc("--zero-stats")
        bazel.run(
            "build",
            "//app",
            f"--spawn_strategy={strategy}",
            "--action_env=PUMPCC_FALLBACK=0",
            *PUMPCC_ENV,
            cc=str(gcc),
        )
        stats = client.stats()
        assert stats["remote"] == COMPILES, (strategy, stats)
        assert bazel.outputs() == reference, strategy

    cache = [f"--remote_cache={worker.url}", f"--remote_header=Authorization=Bearer {TOKEN}"]
    bazel.run("clean")
    bazel.run("build", "//app", *PUMPCC_ENV, *cache, cc=str(gcc))
    bazel.run("clean")
    client.pumpcc("--zero-stats")
    report = bazel.run("build", "//app", *PUMPCC_ENV, *cache, cc=str(gcc))
    hits = re.search(r"(\d+) remote cache hit", report)
    assert hits and int(hits.group(1)) >= COMPILES + 1, report[-3000:]  # and the link
    assert client.stats()["compiles"] == 0
    assert bazel.outputs() == reference
    assert os.access(bazel.workspace / "bazel-bin" / "app" / "app", os.X_OK)
