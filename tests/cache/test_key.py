"""What must and must not change the result cache's key: real compiles through one worker.

Each change that can alter an output must miss (and then compile remotely); each change that
cannot must hit, and a hit must write exactly what a local compile writes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.cache.conftest import cache_client
from tests.helpers import VENV_BIN


def served(client, cwd: Path, *argv: str, **env: str) -> tuple[str, bytes]:
    """Compile through pumpcc; how it was served ('local', 'remote' or 'miss'), and its stderr."""
    before = client.stats()
    done = subprocess.run(
        [str(VENV_BIN / "pumpcc"), *argv],
        cwd=cwd,
        env={**client.env, "PUMPCC_FALLBACK": "0", **env},
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr.decode()
    after = client.stats()
    if after["cache"]["local_hits"] > before["cache"]["local_hits"]:
        return "local", done.stderr
    if after["cache"]["remote_hits"] > before["cache"]["remote_hits"]:
        return "remote", done.stderr
    assert after["remote"] == before["remote"] + 1, after
    return "miss", done.stderr


def outcome(client, cwd: Path, *argv: str, **env: str) -> str:
    """How pumpcc served the compile: 'local', 'remote' or 'miss'."""
    return served(client, cwd, *argv, **env)[0]


@pytest.fixture
def project(tmp_path):
    """src/a.c including inc/a.h and sys/s.h (an -isystem folder standing in for the system)."""
    root = tmp_path / "p"
    for folder in ("src", "inc", "sys", "build"):
        (root / folder).mkdir(parents=True)
    (root / "inc" / "a.h").write_text("#define A 1\n")
    (root / "sys" / "s.h").write_text("#define S 2\n")
    (root / "src" / "a.c").write_text(
        '#include "a.h"\n#include <s.h>\n#include <stdio.h>\n'
        "int f(void) { return A + S; }\nint g(int x) { int unused; return x; }\n"
    )
    return root


ARGS = ("-O2", "-Wall", "-I../inc", "-isystem", "../sys", "-c", "../src/a.c", "-o", "a.o")


def test_changes_that_must_invalidate(cached, project):
    build = project / "build"
    assert outcome(cached, build, "gcc", *ARGS) == "miss"
    assert outcome(cached, build, "gcc", *ARGS) == "local"

    (project / "inc" / "a.h").write_text("#define A 3\n")
    assert outcome(cached, build, "gcc", *ARGS) == "miss", "user header content"
    (project / "sys" / "s.h").write_text("#define S 4\n")
    assert outcome(cached, build, "gcc", *ARGS) == "miss", "system header content"
    assert outcome(cached, build, "gcc", "-DX=1", *ARGS) == "miss", "a flag"
    assert outcome(cached, build, "gcc", "-O1", *ARGS[1:]) == "miss", "optimisation level"
    assert outcome(cached, build, "clang", *ARGS) == "miss", "another compiler"
    assert outcome(cached, build, "cc", *ARGS) == "miss", "another compiler name"
    assert outcome(cached, build, "gcc", *ARGS, SOURCE_DATE_EPOCH="1") == "miss", "env"
    assert outcome(cached, build, "gcc", *ARGS, LC_ALL="C") == "miss", "locale"
    assert outcome(cached, build, "gcc", "-g", *ARGS) == "miss", "debug info"
    # A header appearing earlier in the search path shadows the one used so far.
    (project / "src" / "a.h").write_text("#define A 5\n")
    assert outcome(cached, build, "gcc", *ARGS) == "miss", "a new shadowing header"
    # All of the above were stored: each comes back from the cache now.
    (project / "src" / "a.h").unlink()
    assert outcome(cached, build, "gcc", *ARGS, SOURCE_DATE_EPOCH="1") == "local"
    assert outcome(cached, build, "clang", *ARGS) == "local"


def test_changes_that_must_not_invalidate(cached, project, tmp_path):
    build = project / "build"
    local = subprocess.run(["gcc", *ARGS[:-1], "local.o", "-MD"], cwd=build, capture_output=True)
    assert outcome(cached, build, "gcc", *ARGS, "-MD") == "miss"
    time.sleep(0.01)
    for path in (project / "inc" / "a.h", project / "src" / "a.c", project / "sys" / "s.h"):
        os.utime(path)
    assert outcome(cached, build, "gcc", *ARGS, "-MD") == "local", "touch without change"
    assert (build / "a.o").read_bytes() == (build / "local.o").read_bytes()

    # Another object name: the same object, and the .d names the new target as gcc would.
    deep = "a-much-longer-folder-name-that-moves-the-line-breaks-of-the-dependency-file"
    (build / deep).mkdir()
    args = [*ARGS[:-1], f"{deep}/b.o", "-MD"]
    assert outcome(cached, build, "gcc", *args) == "local", "another output name"
    subprocess.run(["gcc", *ARGS[:-1], f"{deep}/ref.o", "-MD"], cwd=build, check=True)
    assert (build / deep / "b.o").read_bytes() == (build / "local.o").read_bytes()
    expected = (build / deep / "ref.d").read_text().replace("ref.o", "b.o")
    assert (build / deep / "b.d").read_text() == expected
    assert outcome(cached, build, "gcc", *args, "-MT", "x y", "-MP") == "miss"  # -MP adds rules
    assert outcome(cached, build, "gcc", *args, "-MT", "other", "-MP") == "local", "-MT"

    # Another build folder of the same sources, relative paths and no -g: served too.
    other = project / "build2"
    other.mkdir()
    assert outcome(cached, other, "gcc", *ARGS, "-MD") == "local", "another build folder"
    # Another checkout of the same sources elsewhere, compiled from its root with relative paths.
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(project, copy)
    rel = ("-O2", "-Iinc", "-isystem", "sys", "-c", "src/a.c", "-o", "build/z.o")
    assert outcome(cached, project, "gcc", *rel) == "miss"
    assert outcome(cached, copy, "gcc", *rel) == "local", "another checkout"
    assert local.returncode == 0


def cmake_like(root: Path, *extra: str) -> list[str]:
    """The compile as CMake spells it: absolute source and -I folders, a .d beside the object."""
    return [
        *("gcc", "-O2", "-Wall", f"-I{root}/inc", "-isystem", f"{root}/sys", *extra),
        *("-MD", "-MT", "x.o", "-MF", "x.o.d", "-c", f"{root}/src/a.c", "-o", "x.o"),
    ]


def written(root: Path, stderr: bytes) -> tuple[bytes, bytes, bytes]:
    """(object, dependency file, stderr) of a compile in ``root``'s build folder."""
    build = root / "build"
    return (build / "x.o").read_bytes(), (build / "x.o.d").read_bytes(), stderr


def by_gcc(root: Path, argv: list[str]) -> tuple[bytes, bytes, bytes]:
    """What gcc itself writes and prints for the compile in ``root``'s build folder."""
    done = subprocess.run(argv, cwd=root / "build", capture_output=True, check=True)
    return written(root, done.stderr)


def by_pumpcc(client, root: Path, argv: list[str]) -> tuple[str, tuple[bytes, bytes, bytes]]:
    """How pumpcc served the compile in ``root``'s build folder, and what it wrote and printed."""
    how, stderr = served(client, root / "build", *argv)
    return how, written(root, stderr)


@pytest.fixture
def checkouts(project, tmp_path):
    """The project and two copies at other paths (a longer and a shorter one)."""
    copies = [tmp_path / "elsewhere" / "copy", tmp_path / "c"]
    for copy in copies:
        shutil.copytree(project, copy)
    return [project, *copies]


def test_another_checkout_with_absolute_paths_hits(checkouts, tmp_path, worker, client_for):
    first, copy, third = checkouts
    client = cache_client(client_for, tmp_path / "cache", worker)
    assert by_pumpcc(client, first, cmake_like(first))[0] == "miss"
    # The .d and the warning of a hit name the copy's own paths, as gcc's do.
    expected = by_gcc(copy, cmake_like(copy))
    assert f"{copy}/src/a.c:5".encode() in expected[2]
    assert by_pumpcc(client, copy, cmake_like(copy)) == ("local", expected)
    # A second client (an empty local cache) is served by the worker's shared cache.
    second = cache_client(client_for, tmp_path / "cache2", worker)
    expected = by_gcc(third, cmake_like(third))
    assert by_pumpcc(second, third, cmake_like(third)) == ("remote", expected)


def test_an_object_that_names_its_checkout_serves_only_that_one(
    checkouts, cached, tmp_path, worker, client_for
):
    first, copy, _ = checkouts
    for root in (first, copy):
        with open(root / "src" / "a.c", "a") as f:
            f.write("const char *where = __FILE__;\n")
    assert by_pumpcc(cached, first, cmake_like(first))[0] == "miss"
    assert by_pumpcc(cached, first, cmake_like(first))[0] == "local"
    expected = by_gcc(copy, cmake_like(copy))
    assert by_pumpcc(cached, copy, cmake_like(copy)) == ("miss", expected)
    # Checkouts that take turns each keep their own entry.
    expected = by_gcc(first, cmake_like(first))
    assert by_pumpcc(cached, first, cmake_like(first)) == ("local", expected)
    expected = by_gcc(copy, cmake_like(copy))
    assert by_pumpcc(cached, copy, cmake_like(copy)) == ("local", expected)
    # The shared cache keeps both too: a second client is served the first checkout's own.
    second = cache_client(client_for, tmp_path / "cache2", worker)
    expected = by_gcc(first, cmake_like(first))
    assert by_pumpcc(second, first, cmake_like(first)) == ("remote", expected)


def test_debug_info_is_shared_only_through_a_prefix_map(checkouts, cached):
    first, copy, _ = checkouts
    assert by_pumpcc(cached, first, cmake_like(first, "-g"))[0] == "miss"
    assert by_pumpcc(cached, copy, cmake_like(copy, "-g"))[0] == "miss", "DW_AT_comp_dir"

    def mapped(root: Path) -> list[str]:
        return cmake_like(root, "-g", f"-ffile-prefix-map={root}=.")

    assert by_pumpcc(cached, first, mapped(first))[0] == "miss"
    assert by_pumpcc(cached, copy, mapped(copy)) == ("local", by_gcc(copy, mapped(copy)))


def test_base_dir_none_keeps_checkouts_apart(checkouts, tmp_path, worker, client_for):
    first, copy, _ = checkouts
    client = cache_client(client_for, tmp_path / "cache", worker, base_dir="none")
    assert by_pumpcc(client, first, cmake_like(first))[0] == "miss"
    assert by_pumpcc(client, copy, cmake_like(copy))[0] == "miss"
    assert by_pumpcc(client, copy, cmake_like(copy))[0] == "local"


def test_hit_shows_warnings_again(cached, project):
    build = project / "build"
    first = subprocess.run(
        [str(VENV_BIN / "pumpcc"), "gcc", *ARGS], cwd=build, env=cached.env, capture_output=True
    )
    again = subprocess.run(
        [str(VENV_BIN / "pumpcc"), "gcc", *ARGS], cwd=build, env=cached.env, capture_output=True
    )
    assert b"unused variable" in first.stderr
    assert again.stderr == first.stderr
    assert cached.stats()["cache"]["local_hits"] == 1


def test_clock_macros_are_not_cached(cached, tmp_path):
    (tmp_path / "t.c").write_text('const char *when = __DATE__ " " __TIME__;\n')
    assert outcome(cached, tmp_path, "gcc", "-c", "t.c") == "miss"
    assert outcome(cached, tmp_path, "gcc", "-c", "t.c") == "miss"
    assert cached.stats()["cache"]["uncacheable"] == 2
    redacted = [
        '-D__DATE__="d"',
        '-D__TIME__="t"',
        '-D__TIMESTAMP__="s"',
        "-Wno-builtin-macro-redefined",
    ]
    assert outcome(cached, tmp_path, "gcc", *redacted, "-c", "t.c") == "miss"
    assert outcome(cached, tmp_path, "gcc", *redacted, "-c", "t.c") == "local"


def test_disabled_by_variable_and_read_only(tmp_path, worker, client_for, project):
    build = project / "build"
    client = cache_client(client_for, tmp_path / "ro", worker, read_only=True)
    assert outcome(client, build, "gcc", *ARGS) == "miss"
    assert outcome(client, build, "gcc", *ARGS) == "miss", "read_only stores nothing"
    assert not any((tmp_path / "ro").rglob("*[0-9a-f]" * 8))
    off = cache_client(client_for, tmp_path / "off", worker)
    off.env["PUMPCC_CACHE"] = "0"
    subprocess.run([str(VENV_BIN / "pumpcc"), "gcc", *ARGS], cwd=build, env=off.env, check=True)
    subprocess.run([str(VENV_BIN / "pumpcc"), "gcc", *ARGS], cwd=build, env=off.env, check=True)
    stats = off.stats()
    assert stats["remote"] == 2 and stats["cache_hits"] == 0


def test_compiler_binary_change_changes_identity(tmp_path):
    from include_server.cache_key import compiler_identity

    compiler = tmp_path / "gcc"
    shutil.copy2("/usr/bin/gcc", compiler)
    before = compiler_identity(str(compiler))
    assert before[1] == "gcc"
    with open(compiler, "ab") as f:  # an upgraded binary of the same name, size and version
        f.write(b"\0")
    assert compiler_identity(str(compiler))[0] != before[0]
