"""Masquerade links: a symlink named like a compiler runs the next real one on PATH."""

from __future__ import annotations

import os
import subprocess

from tests.helpers import VENV_BIN


def test_gcc_link_compiles_remotely(tmp_path, worker, client_for):
    client = client_for(worker, PUMPCC_FALLBACK="0")
    links = tmp_path / "links"
    links.mkdir()
    (links / "gcc").symlink_to(VENV_BIN / "pumpcc")
    env = dict(client.env, PATH=f"{links}{os.pathsep}{client.env['PATH']}")
    (tmp_path / "a.c").write_text("int f(void) { return 42; }\n")
    subprocess.run(["gcc", "-O2", "-c", "a.c", "-o", "remote.o"], cwd=tmp_path, env=env, check=True)
    subprocess.run(["/usr/bin/gcc", "-O2", "-c", "a.c", "-o", "local.o"], cwd=tmp_path, check=True)
    assert (tmp_path / "remote.o").read_bytes() == (tmp_path / "local.o").read_bytes()
    stats = client.stats()
    assert (stats["compiles"], stats["remote"]) == (1, 1)

    # Linking through the link runs locally, even with PUMPCC_FALLBACK=0.
    (tmp_path / "m.c").write_text("int f(void);\nint main(void) { return f() - 42; }\n")
    subprocess.run(["gcc", "m.c", "remote.o", "-o", "prog"], cwd=tmp_path, env=env, check=True)
    subprocess.run([str(tmp_path / "prog")], check=True)
    assert client.stats()["fallbacks"] == {"not_compile": 1}
