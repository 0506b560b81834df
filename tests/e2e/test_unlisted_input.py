"""A worker whose compile reads a file the include analysis did not list never makes the object.

The worker checks the compile's dependency list against the job: every file read from outside
the job root must be a system file whose digest the client sent.  Here the worker's gcc is a
wrapper that adds ``-include /usr/include/stdint.h`` (a site configuration the client cannot
see), so its compiles read a header no analysis of ours lists: each one runs locally instead.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import Worker

WRAPPER = '#!/bin/sh\nexec /usr/bin/gcc -include /usr/include/stdint.h "$@"\n'
SOURCE = '#include <stdio.h>\nint main(void) { return puts("hi") < 0; }\n'


@pytest.mark.parametrize("deps", [[], ["-MD", "-MF", "main.o.d"]], ids=["no-depfile", "MD"])
def test_a_compile_that_read_an_unlisted_file_runs_here(tmp_path, client_for, deps):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gcc").write_text(WRAPPER)
    (bindir / "gcc").chmod(0o755)
    worker = Worker(tmp_path / "w", env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"})
    try:
        client = client_for(worker, PUMPCC_VERBOSE="1")
        (tmp_path / "main.c").write_text(SOURCE)
        args = ["gcc", "-O2", "-c", "main.c", "-o", "main.o", *deps]
        subprocess.run(args, cwd=tmp_path, check=True)
        expected = (tmp_path / "main.o").read_bytes()
        (tmp_path / "main.o").unlink()

        done = client.pumpcc(*args, cwd=tmp_path)

        assert (tmp_path / "main.o").read_bytes() == expected
        assert b"/usr/include/stdint.h" in done.stderr
        stats = client.stats()
        assert (stats["remote"], stats["local"]) == (0, 1)
        assert stats["fallbacks"] == {"unlisted_input": 1}
    finally:
        worker.stop()
