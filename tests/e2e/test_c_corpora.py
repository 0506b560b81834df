"""libuv and cJSON from ../shared/corpora, built through pumpcc and one worker on loopback.

Like test_corpora.py (curl, yaml-cpp), each project is built twice at the same path -- without
the launcher, then through pumpcc with PUMPCC_FALLBACK=0 -- and the objects compared byte for
byte.  To keep the time down: Release only, libuv's static library only (its shared one compiles
the same sources again), and of cJSON's tests one (each compiles all of cJSON again, through
``#include "../cJSON.c"``) with the unity library it links.

The local server's resident size after the build is printed (``pytest -s``) and bounded: it
lives across builds, so its caches must not grow without limit.
"""

from __future__ import annotations

import shutil

import pytest

from tests.helpers import CORPORA, cmake_configure, ninja, ninja_deps, objects, unpack_corpus

pytestmark = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"{CORPORA} is absent")

# Project -> the Ninja targets to build.
PROJECTS = {"libuv": ["uv_a"], "cjson": ["cjson", "readme_examples"]}
# Far above what these builds need (tens of MB): a failure means something holds far too much.
MAX_SERVER_RSS_KB = 256 * 1024


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_c_corpus_builds_remotely_and_identically(tmp_path, worker, client_for, project):
    src, flags = unpack_corpus(project, tmp_path / "src")
    client = client_for(worker, PUMPCC_FALLBACK="0")
    env = client.env
    build = tmp_path / "build"
    targets = PROJECTS[project]

    cmake_configure(src, build, env, launcher=False, flags=flags)
    ninja(build, env, "-j4", *targets)
    local_objects, local_deps = objects(build), ninja_deps(build, env)
    shutil.rmtree(build)

    cmake_configure(src, build, env, launcher=True, flags=flags)
    client.pumpcc("--zero-stats")
    ninja(build, env, "-j4", *targets)
    stats = client.stats()
    assert stats["local"] == 0, stats["fallbacks"]
    assert stats["include_server"]["gave_up"] == 0
    assert stats["remote"] == stats["compiles"] == len(local_objects)
    assert objects(build) == local_objects
    assert ninja_deps(build, env) == local_deps

    rss_kb = stats["server"]["rss_kb"]
    print(f"\n{project}: {len(local_objects)} objects; local server RSS {rss_kb / 1024:.1f} MB")
    assert rss_kb < MAX_SERVER_RSS_KB
