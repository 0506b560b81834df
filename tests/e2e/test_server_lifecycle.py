"""The local server: started on demand once, stopped on request, restarted by the next compile."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import VENV_BIN


def test_fifty_launchers_at_once_start_one_server(tmp_path, client_for):
    client = client_for()
    (tmp_path / "a.c").write_text("int a;\n")
    procs = [
        subprocess.Popen(
            [str(VENV_BIN / "pumpcc"), "gcc", "-c", "a.c", "-o", f"a{i}.o"],
            cwd=tmp_path,
            env=client.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(50)
    ]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert results == [(0, b"")] * 50
    log = (Path(client.runtime) / "server.log").read_text()
    assert log.count("listening on") == 1, log
    stats = client.stats()
    assert stats["compiles"] == 50
    assert stats["fallbacks"] == {"no_workers": 50}
    assert stats["server"]["local_peak"] <= 2  # local_slots bounds local compiles
    assert all((tmp_path / f"a{i}.o").exists() for i in range(50))


def test_stop_server_then_next_compile_starts_a_new_one(tmp_path, client_for):
    client = client_for()
    first = client.stats()["server"]["pid"]
    client.pumpcc("--stop-server")
    (tmp_path / "a.c").write_text("int a;\n")
    client.pumpcc("gcc", "-c", "a.c", cwd=tmp_path)
    second = client.stats()
    assert second["server"]["pid"] != first
    assert second["compiles"] == 1


def test_stop_server_without_server(client_for):
    client = client_for()
    result = client.pumpcc("--stop-server")
    assert result.stdout.decode() == "pumpcc: no local server is running\n"


def test_server_that_cannot_start_does_not_stall_the_build(tmp_path, client_for):
    """A runtime folder the server refuses (not 0700): compiles run locally at once."""
    import os
    import shutil
    import time

    client = client_for()
    shutil.rmtree(client.runtime)
    os.mkdir(client.runtime, 0o755)
    os.chmod(client.runtime, 0o755)
    (tmp_path / "a.c").write_text("int a;\n")
    started = time.monotonic()
    client.pumpcc("gcc", "-c", "a.c", cwd=tmp_path)
    assert time.monotonic() - started < 10  # the launcher's bound on waiting is 15 s
    assert (tmp_path / "a.o").exists()
    log = (Path(client.runtime) / "server.log").read_text()
    assert log == f"pumpcc: {client.runtime}: must belong to you with mode 0700; not starting\n"
