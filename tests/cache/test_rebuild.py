"""Clean rebuilds of real projects served from the result cache, byte for byte.

A rebuild after ``ninja clean`` comes entirely from the local cache; a build of a second checkout
at another path, by a second client (its own local server, runtime folder and empty local cache),
entirely from the worker's shared cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cache.conftest import cache_client
from tests.helpers import CORPORA, REPO, cmake_configure, ninja, ninja_deps, objects, unpack_corpus

# The objects that spell their checkout's path (``__FILE__`` in a string), which can serve only
# that checkout: cJSON's test programs (Unity's assertions) and one line of curl's easy.c.
PINNED = {
    "hello": lambda obj: False,
    "cjson": lambda obj: obj.startswith("tests/CMakeFiles/") and "unity" not in obj,
    "curl": lambda obj: obj == "lib/CMakeFiles/libcurl.dir/easy.c.o",
    "yaml-cpp": lambda obj: False,
}


def checkout(name: str, dest: Path) -> tuple[Path, list[str]]:
    """A checkout of examples/hello or of a ../shared/corpora project under ``dest``."""
    if name == "hello":
        shutil.copytree(REPO / "examples" / "hello", dest / "hello")
        return dest / "hello", []
    if not CORPORA.is_dir():
        pytest.skip(f"{CORPORA} is absent")
    return unpack_corpus(name, dest)


@pytest.mark.parametrize("name", ["hello", "cjson", "curl", "yaml-cpp"])
def test_clean_rebuilds_and_other_checkouts_come_from_the_cache(name, tmp_path, worker, client_for):
    """After ``ninja clean``: all local hits.  A second checkout at another path, built by a
    client with an empty local cache: all hits in the worker's shared cache but for objects that
    name their checkout's path.  Every object is byte-identical to a local build in that second
    checkout, and so are Ninja's deps."""
    (src_a, flags), (src_b, _) = (checkout(name, tmp_path / d) for d in ("a", "b"))
    build_a, build_b = tmp_path / "a" / "build", tmp_path / "b" / "build"
    first = cache_client(client_for, tmp_path / "cache1", worker, PUMPCC_FALLBACK="0")
    cmake_configure(src_a, build_a, first.env, launcher=True, flags=flags)
    ninja(build_a, first.env)
    count = first.stats()["compiles"]
    assert first.stats()["remote"] == count > 0
    ninja(build_a, first.env, "-t", "clean")
    first.pumpcc("--zero-stats")
    ninja(build_a, first.env)
    stats = first.stats()
    assert (stats["cache_hits"], stats["cache"]["local_hits"], stats["remote"]) == (count, count, 0)

    made_at_a = objects(build_a)
    pinned = {obj for obj, data in made_at_a.items() if str(tmp_path / "a").encode() in data}
    assert pinned == {obj for obj in made_at_a if PINNED[name](obj)}

    cmake_configure(src_b, build_b, first.env, launcher=False, flags=flags)
    ninja(build_b, first.env)
    reference, reference_deps = objects(build_b), ninja_deps(build_b, first.env)
    shutil.rmtree(build_b)
    second = cache_client(client_for, tmp_path / "cache2", worker, PUMPCC_FALLBACK="0")
    cmake_configure(src_b, build_b, second.env, launcher=True, flags=flags)
    ninja(build_b, second.env)
    stats = second.stats()
    hits = count - len(pinned)
    assert (stats["cache_hits"], stats["cache"]["remote_hits"], stats["remote"]) == (
        hits,
        hits,
        len(pinned),
    )
    assert {k: v for k, v in made_at_a.items() if k not in pinned} == {
        k: v for k, v in reference.items() if k not in pinned
    }
    assert objects(build_b) == reference
    assert ninja_deps(build_b, second.env) == reference_deps


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
