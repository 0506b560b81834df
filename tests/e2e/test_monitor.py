"""Live views during a real build: ``pumpcc --monitor`` and the status page in headless Chromium.

Each build is tests/cases/e2e/many_files (forty slow translation units, about ten seconds on two
cores) through one real worker, so compiles are still in progress while we look.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.helpers import CASES, Client, build_in_background

MANY = CASES / "e2e" / "many_files"
# A source name that is also markup: the page must show it as text, never as an element.
HOSTILE = "<img src=x onerror=alert(1)>.c"
CHROMIUM = shutil.which("chromium")


def start_build(tmp_path: Path, client: Client) -> subprocess.Popen:
    """Configure many_files through pumpcc and start ninja; returns once a compile has finished."""
    return build_in_background(MANY, tmp_path / "build", client, remote=1)


def finish(proc: subprocess.Popen) -> None:
    """Let the build end and check it succeeded (the views must not disturb it)."""
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out


def test_monitor_once_shows_worker_and_compiles_in_progress(tmp_path, worker, client_for):
    client = client_for(worker)
    proc = start_build(tmp_path, client)
    try:
        deadline = time.monotonic() + 30
        while True:
            frame = client.pumpcc("--monitor", "--once").stdout.decode()
            if re.search(r"compiles in progress: [1-9]", frame) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        finish(proc)

    worker_line = next(line for line in frame.splitlines() if line.startswith(worker.url))
    assert re.search(r"\bup\s+[0-4]/4\s+\[[#.]{16}\]\s+\d+$", worker_line), frame
    assert re.search(r"compiles in progress: [1-9]", frame), frame
    assert re.search(r"^\s+\d+\.\ds\s+remote\s+\S+/gen/unit\d+\.c$", frame, re.M), frame
    assert "compiles " in frame.splitlines()[-1]


def test_monitor_without_server_and_url(tmp_path, client_for):
    client = client_for()
    alone = client.pumpcc("--monitor", "--once", check=False)
    assert alone.returncode == 1
    assert b"no local server is running" in alone.stdout
    assert not (Path(client.runtime) / "server.sock").exists()  # watching started nothing

    client.pumpcc("--start-server")
    url = client.pumpcc("--monitor", "--url").stdout.decode().strip()
    assert url == (Path(client.runtime) / "status.url").read_text().strip()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)


def test_status_page_serves_live_json_to_loopback_names_only(client_for):
    client = client_for()
    client.pumpcc("--start-server")
    url = (Path(client.runtime) / "status.url").read_text().strip()
    live = json.loads(urllib.request.urlopen(url + "live.json", timeout=5).read())
    assert {"now", "workers", "jobs", "stats", "local_slots"} <= set(live)

    rebound = urllib.request.Request(url, headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(rebound, timeout=5)
    assert refused.value.code == 421


def test_status_page_off(client_for):
    client = client_for(PUMPCC_STATUS_PORT="off")
    client.pumpcc("--start-server")
    assert not (Path(client.runtime) / "status.url").exists()
    assert client.pumpcc("--monitor", "--url", check=False).returncode == 1


class _Cells(HTMLParser):
    """The rows of each ``<tbody id=...>`` and the tag names seen, from a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.tags: list[str] = []
        self._tbody: str | None = None
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tbody":
            self._tbody = dict(attrs).get("id") or ""
            self.tables[self._tbody] = []
        elif tag == "tr" and self._tbody is not None:
            self.tables[self._tbody].append([])
        elif tag == "td" and self._tbody is not None:
            self.tables[self._tbody][-1].append("")
            self._in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._tbody = None
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell and self._tbody is not None:
            row = self.tables[self._tbody][-1]
            row[-1] = (row[-1] + data).strip()


def chromium(tmp_path: Path, url: str, *action: str) -> subprocess.CompletedProcess:
    """Headless Debian Chromium on ``url``, run long enough (virtual time) for a few polls."""
    profile = tmp_path / "chromium-profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # we run as root in the test container
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=3000",
        *action,
        url,
    ]
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, check=True)


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt install chromium)"
)
def test_status_page_in_headless_chromium_during_build(tmp_path, worker, client_for):
    client = client_for(worker)
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / HOSTILE).write_text("int odd;\n")
    proc = start_build(tmp_path, client)
    url = (Path(client.runtime) / "status.url").read_text().strip()
    try:
        # One local run with a reason (-save-temps is not distributed), under a hostile name.
        client.pumpcc("gcc", "-save-temps", "-c", "-o", "odd.o", HOSTILE, cwd=odd)
        dom = chromium(tmp_path, url, "--dump-dom").stdout
        shot = tmp_path / "status-page.png"
        chromium(tmp_path, url, f"--screenshot={shot}", "--window-size=1200,800")
    finally:
        finish(proc)
    (tmp_path / "status-page.html").write_text(dom)

    page = _Cells()
    page.feed(dom)
    workers, jobs, recent = page.tables["workers"], page.tables["jobs"], page.tables["recent"]
    assert workers[0][:3] == [worker.url, "up", "4"], workers
    assert re.fullmatch(r"[0-4] / 4", workers[0][3]), workers
    assert workers[1][0] == "local"
    assert jobs and all(re.search(r"/gen/unit\d+\.c$", j[0]) for j in jobs), jobs
    assert {j[1] for j in jobs} <= {"starting", "remote"}, jobs
    assert recent[0][1:3] == [HOSTILE, "unsupported_args"], recent
    assert "-save-temps" in recent[0][3]
    assert "img" not in page.tags  # the hostile name stayed text
    assert "updated " in dom
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
