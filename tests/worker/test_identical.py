"""The correctness bar: a worker compile is byte-identical to a local one.

Objects (with and without -g), dependency files and diagnostics for GCC and Clang, with the
source named absolutely and relatively, include folders with spaces, and paths long enough that
the dependency file wraps its lines.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.worker.support import Worker, local_compile, make_job, remote_compile

SOURCE = """\
#include "foo.h"
#include "sp ace.h"
#include <stdio.h>
int main(void) {
    int unused;
    printf("%s %s %d %d\\n", __FILE__, WHERE, FOO, BAR);
    return 0;
}
"""
DEEP = "a-rather-long-folder-name-so-dependency-lines-wrap/and-another-level"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proj") / DEEP
    (root / "src").mkdir(parents=True)
    (root / "inc").mkdir()
    (root / "my inc").mkdir()
    (root / "build" / "obj").mkdir(parents=True)
    (root / "src" / "a.c").write_text(SOURCE)
    (root / "src" / "a.cc").write_text(SOURCE.replace("stdio.h", "cstdio"))
    (root / "src" / "bad.c").write_text('#include "foo.h"\nint f(void) { return FOO + nope; }\n')
    (root / "inc" / "foo.h").write_text(
        "#define FOO 3\n#define WHERE __FILE__\nstatic int warn(void) { int x; return 1; }\n"
    )
    (root / "my inc" / "sp ace.h").write_text("#define BAR 4\n")
    return root


def _files(project: Path, source: str) -> list[Path]:
    return [project / "src" / source, project / "inc" / "foo.h", project / "my inc" / "sp ace.h"]


def _check(worker: Worker, compiler: str, args: list[str], project: Path, source: str, outs):
    build = project / "build"
    for out in outs:
        (build / out).unlink(missing_ok=True)
    exit_code, stdout, stderr = local_compile(compiler, args, build)
    local = {o: (build / o).read_bytes() for o in outs if (build / o).exists()}
    header, blobs = make_job(compiler, args, build, _files(project, source), outs)
    result, r_stdout, r_stderr, r_outputs = remote_compile(worker, header, blobs)
    assert result["exit"] == exit_code
    assert r_stderr.decode() == stderr.decode()
    assert r_stdout == stdout
    assert sorted(r_outputs) == sorted(local)
    for name, data in local.items():
        assert r_outputs[name] == data, f"{name} differs from the local compile"
    return r_outputs


FLAGS = [[], ["-g"], ["-g", "-O2"]]


@pytest.mark.parametrize("compiler,source", [("gcc", "a.c"), ("clang", "a.c"), ("g++", "a.cc")])
@pytest.mark.parametrize("flags", FLAGS, ids=["plain", "g", "g-O2"])
def test_absolute_paths(worker: Worker, project: Path, compiler: str, source: str, flags):
    args = [
        *flags,
        "-Wall",
        f"-I{project}/inc",
        "-I",
        f"{project}/my inc",
        "-c",
        f"{project}/src/{source}",
        "-o",
        f"{project}/build/a.o",
        "-MD",
        "-MT",
        "a.o",
        "-MF",
        "a.o.d",
    ]
    _check(worker, compiler, args, project, source, ["a.o", "a.o.d"])


@pytest.mark.parametrize("compiler,source", [("gcc", "a.c"), ("clang", "a.c"), ("g++", "a.cc")])
@pytest.mark.parametrize("flags", FLAGS, ids=["plain", "g", "g-O2"])
def test_relative_paths(worker: Worker, project: Path, compiler: str, source: str, flags):
    args = [*flags, "-Wall", "-I../inc", "-I../my inc", "-c", f"../src/{source}"]
    args += ["-o", "obj/a.o", "-MMD", "-MP"]
    _check(worker, compiler, args, project, source, ["obj/a.o", "obj/a.d"])


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_debug_info_names_client_paths(worker: Worker, project: Path, compiler: str, tmp_path):
    args = ["-g", f"-I{project}/inc", f"-I{project}/my inc", "-c", f"{project}/src/a.c"]
    args += ["-o", "dbg.o"]
    outs = _check(worker, compiler, args, project, "a.c", ["dbg.o"])
    obj = tmp_path / "dbg.o"
    obj.write_bytes(outs["dbg.o"])
    info = subprocess.run(
        ["readelf", "--debug-dump=info", "-s", str(obj)], capture_output=True, text=True
    ).stdout
    assert f"{project}/build" in info  # DW_AT_comp_dir
    assert f"{project}/src/a.c" in info  # DW_AT_name
    assert "scratch" not in info and "/jobs/" not in info
    symbols = subprocess.run(["readelf", "-s", str(obj)], capture_output=True, text=True).stdout
    file_syms = [line.split()[-1] for line in symbols.splitlines() if " FILE " in line]
    assert file_syms and all("jobs" not in s for s in file_syms)


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_compile_error_is_identical(worker: Worker, project: Path, compiler: str):
    args = [f"-I{project}/inc", "-c", f"{project}/src/bad.c", "-o", "bad.o"]
    files = [project / "src" / "bad.c", project / "inc" / "foo.h"]
    build = project / "build"
    exit_code, _, stderr = local_compile(compiler, args, build)
    assert exit_code != 0
    header, blobs = make_job(compiler, args, build, files, ["bad.o"])
    result, _, r_stderr, outputs = remote_compile(worker, header, blobs)
    assert result["exit"] == exit_code
    assert r_stderr == stderr
    assert outputs == {}


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_user_prefix_map_keeps_precedence(worker: Worker, project: Path, compiler: str):
    args = ["-g", f"-ffile-prefix-map={project}=/src", f"-I{project}/inc", f"-I{project}/my inc"]
    args += ["-c", f"{project}/src/a.c", "-o", "map.o"]
    _check(worker, compiler, args, project, "a.c", ["map.o"])


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_dotdot_in_include_folder(worker: Worker, project: Path, compiler: str):
    """CMake writes '-I/p/build/../inc'; the .d names headers through it, as locally."""
    args = [f"-I{project}/build/../inc", f"-I{project}/my inc", "-c", f"{project}/src/a.c"]
    args += ["-o", "dd.o", "-MD", "-MF", "dd.d"]
    _check(worker, compiler, args, project, "a.c", ["dd.o", "dd.d"])
