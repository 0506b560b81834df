"""``#pragma GCC dependency "file"``: the compiler looks the file up as an include and stops when
it is missing, so the worker needs it too (shipped as a probe: found, not walked)."""

from __future__ import annotations

import subprocess


def test_a_pragma_dependency_is_shipped(tmp_path, worker, client_for):
    (tmp_path / "grammar").mkdir()
    (tmp_path / "grammar" / "parse.y").write_text("%token NUMBER\n")
    (tmp_path / "main.c").write_text(
        '#pragma GCC dependency "parse.y" rebuild parse.c from it\nint main(void) { return 0; }\n'
    )
    args = ["gcc", "-Igrammar", "-O2", "-c", "main.c", "-o", "main.o"]
    subprocess.run(args, cwd=tmp_path, check=True)
    expected = (tmp_path / "main.o").read_bytes()
    (tmp_path / "main.o").unlink()
    client = client_for(worker, PUMPCC_FALLBACK="0")

    client.pumpcc(*args, cwd=tmp_path)

    assert (tmp_path / "main.o").read_bytes() == expected
    assert client.stats()["remote"] == 1
