"""Headers that appear or change while the local server lives: generated mid-build, edited between.

The server keeps its analysis and file contents across compiles and builds; these builds go
through a real worker with PUMPCC_FALLBACK=0, so a stale view would show as a wrong object, and
each is compared byte for byte with a local build at the same path (debug info included).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tests.helpers import CASES, cmake_configure, ninja, ninja_deps, objects

CASE = CASES / "e2e" / "generated_header"
FLAGS = ["-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
# Same-size edits: only the file's time and content tell the server it changed.
EDITS = {"gen.h.in": ("1111", "3333"), "include/edited.h": ("2222", "4444")}
REBUILT = 3  # every object of the 'gen' library; early.c includes neither header


def edit(src: Path, undo: bool = False) -> None:
    """Apply (or undo) EDITS in the source folder."""
    # Past the file system's coarse timestamps, so Ninja and the server see later times.
    time.sleep(0.05)
    for name, (old, new) in EDITS.items():
        path = src / name
        text = path.read_text()
        path.write_text(text.replace(new, old) if undo else text.replace(old, new))


def test_generated_and_edited_headers_match_local(tmp_path, worker, client_for):
    client = client_for(worker, PUMPCC_FALLBACK="0")
    src, build = tmp_path / "src", tmp_path / "build"
    shutil.copytree(CASE, src)
    cmake_configure(src, build, client.env, launcher=False, flags=FLAGS)
    ninja(build, client.env)
    local_first, local_deps = objects(build), ninja_deps(build, client.env)
    edit(src)
    ninja(build, client.env)
    local_edited = objects(build)
    assert local_first != local_edited
    shutil.rmtree(build)
    edit(src, undo=True)

    client.pumpcc("--zero-stats")
    cmake_configure(src, build, client.env, launcher=True, flags=FLAGS)
    ninja(build, client.env)
    stats = client.stats()
    assert stats["remote"] == stats["compiles"] == len(local_first), stats["fallbacks"]
    assert objects(build) == local_first
    assert ninja_deps(build, client.env) == local_deps

    client.pumpcc("--zero-stats")
    edit(src)
    ninja(build, client.env)
    assert client.stats()["remote"] == REBUILT
    assert objects(build) == local_edited
