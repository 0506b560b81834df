"""curl and yaml-cpp from ../shared/corpora, built through pumpcc and one worker on loopback.

Each build is made twice at the same path -- without the launcher, then through pumpcc with
PUMPCC_FALLBACK=0 -- so that objects (debug info included) can be compared byte for byte.
"""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import CORPORA, cmake_configure, ninja, ninja_deps, objects, unpack_corpus

pytestmark = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"{CORPORA} is absent")

# A header each project's build depends on in some objects but not all.
TOUCHED_HEADER = {"curl": "lib/http.h", "yaml-cpp": "src/scanner.h"}


def depending_on(deps: dict[str, list[str]], header) -> list[str]:
    """The objects whose recorded dependencies name ``header``: what Ninja rebuilds after a touch.

    (``ninja -n`` cannot answer for yaml-cpp: its globs make a dry run stop at re-running CMake.)
    """
    return sorted(obj for obj, files in deps.items() if str(header) in files)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    return {name: unpack_corpus(name, root / name) for name in TOUCHED_HEADER}


@pytest.mark.parametrize("build_type", ["Release", "RelWithDebInfo"])
@pytest.mark.parametrize("project", ["curl", "yaml-cpp"])
def test_corpus_builds_remotely_and_identically(
    sources, tmp_path, worker, client_for, project, build_type
):
    src, flags = sources[project]
    flags = [f for f in flags if not f.startswith("-DCMAKE_BUILD_TYPE")]
    flags.append(f"-DCMAKE_BUILD_TYPE={build_type}")
    client = client_for(worker, PUMPCC_FALLBACK="0")
    env = client.env
    build = tmp_path / "build"
    header = src / TOUCHED_HEADER[project]

    cmake_configure(src, build, env, launcher=False, flags=flags)
    ninja(build, env, "-j8")
    local_objects, local_deps = objects(build), ninja_deps(build, env)
    local_dirty = depending_on(local_deps, header)
    shutil.rmtree(build)

    cmake_configure(src, build, env, launcher=True, flags=flags)
    client.pumpcc("--zero-stats")
    ninja(build, env, "-j8")
    stats = client.stats()
    assert stats["local"] == 0, stats["fallbacks"]
    assert stats["remote"] == stats["compiles"] == len(local_objects)
    assert objects(build) == local_objects
    assert ninja_deps(build, env) == local_deps

    remote_dirty = depending_on(ninja_deps(build, env), header)
    assert remote_dirty == local_dirty
    header.touch()
    assert 0 < len(remote_dirty) < len(local_objects)
    client.pumpcc("--zero-stats")
    ninja(build, env, "-j8")
    assert client.stats()["remote"] == len(remote_dirty)
    assert objects(build) == local_objects
