"""A real CMake + Ninja build of examples/hello through pumpcc and one real worker."""

from __future__ import annotations

import shutil

from tests.helpers import REPO, cmake_configure, ninja, ninja_deps, objects

EXAMPLE = REPO / "examples" / "hello"


def test_remote_build_is_identical_to_local(tmp_path, worker, client_for):
    client = client_for(worker, PUMPCC_FALLBACK="0")
    build = tmp_path / "build"
    cmake_configure(EXAMPLE, build, client.env, launcher=False)
    ninja(build, client.env)
    local_objects, local_deps = objects(build), ninja_deps(build, client.env)
    shutil.rmtree(build)

    cmake_configure(EXAMPLE, build, client.env, launcher=True)
    client.pumpcc("--zero-stats")
    ninja(build, client.env)

    stats = client.stats()
    assert stats["compiles"] == 4
    assert stats["remote"] == 4, stats
    assert stats["local"] == 0
    assert objects(build) == local_objects
    assert ninja_deps(build, client.env) == local_deps


def test_rebuild_after_clean_sends_almost_nothing(tmp_path, worker, client_for):
    """Files and manifests go to a worker once: a rebuild sends only tiny job headers."""
    import json
    import urllib.request

    def received() -> int:
        with urllib.request.urlopen(worker.url + "/v1/status") as r:
            return json.load(r)["bytes_received"]

    client = client_for(worker, PUMPCC_FALLBACK="0")
    build = tmp_path / "build"
    cmake_configure(EXAMPLE, build, client.env, launcher=True)
    before = received()
    ninja(build, client.env)
    first = received() - before
    ninja(build, client.env, "-t", "clean")
    ninja(build, client.env)
    second = received() - before - first
    assert client.stats()["remote"] == 8
    assert second < first * 0.05, (first, second)
