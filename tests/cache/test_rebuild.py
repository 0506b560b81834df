"""Clean rebuilds of small real projects served from the result cache, byte for byte.

A rebuild after ``ninja clean`` comes entirely from the local cache; the same rebuild by a second
client (its own local server, runtime folder and empty local cache) from the worker's shared cache.
"""

from __future__ import annotations

import shutil

import pytest

from tests.cache.conftest import cache_client
from tests.helpers import CORPORA, REPO, cmake_configure, ninja, ninja_deps, objects, unpack_corpus


@pytest.fixture(params=["hello", "cjson"])
def source(request, tmp_path):
    """examples/hello, and cJSON from ../shared/corpora where it exists."""
    if request.param == "hello":
        return REPO / "examples" / "hello", []
    if not CORPORA.is_dir():
        pytest.skip(f"{CORPORA} is absent")
    return unpack_corpus("cjson", tmp_path / "src")


def test_clean_rebuilds_come_from_the_cache(source, tmp_path, worker, client_for):
    src, flags = source
    first = cache_client(client_for, tmp_path / "cache1", worker, PUMPCC_FALLBACK="0")
    build = tmp_path / "build"
    cmake_configure(src, build, first.env, launcher=False, flags=flags)
    ninja(build, first.env)
    reference, reference_deps = objects(build), ninja_deps(build, first.env)
    shutil.rmtree(build)

    cmake_configure(src, build, first.env, launcher=True, flags=flags)
    ninja(build, first.env)
    count = first.stats()["compiles"]
    assert first.stats()["remote"] == count == len(reference)

    ninja(build, first.env, "-t", "clean")
    first.pumpcc("--zero-stats")
    ninja(build, first.env)
    stats = first.stats()
    assert (stats["cache_hits"], stats["cache"]["local_hits"], stats["remote"]) == (count, count, 0)
    assert objects(build) == reference
    assert ninja_deps(build, first.env) == reference_deps

    second = cache_client(client_for, tmp_path / "cache2", worker, PUMPCC_FALLBACK="0")
    ninja(build, second.env, "-t", "clean")
    ninja(build, second.env)
    stats = second.stats()
    assert (stats["cache_hits"], stats["cache"]["remote_hits"], stats["remote"]) == (
        count,
        count,
        0,
    )
    assert objects(build) == reference
    assert ninja_deps(build, second.env) == reference_deps


def test_new_build_folder_of_the_same_checkout_hits(tmp_path, worker, client_for):
    src, flags = REPO / "examples" / "hello", []
    client = cache_client(client_for, tmp_path / "cache", worker, PUMPCC_FALLBACK="0")
    for name in ("build", "other-build"):
        cmake_configure(src, tmp_path / name, client.env, launcher=True, flags=flags)
        client.pumpcc("--zero-stats")
        ninja(tmp_path / name, client.env)
    stats = client.stats()
    assert stats["cache"]["local_hits"] == stats["compiles"] > 0, stats["cache"]
    assert objects(tmp_path / "other-build") == objects(tmp_path / "build")
