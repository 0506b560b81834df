"""The build never breaks: a worker killed mid-build, no workers at all, a bad config."""

from __future__ import annotations

import subprocess
import time

from tests.helpers import CASES, cmake_configure, ninja, objects

MANY = CASES / "e2e" / "many_files"


def test_worker_killed_mid_build_falls_back(tmp_path, worker, client_for):
    client = client_for(worker)
    build = tmp_path / "build"
    cmake_configure(MANY, build, client.env, launcher=True)
    client.pumpcc("--zero-stats")
    proc = subprocess.Popen(
        ["ninja", "-C", str(build), "-j4"],
        env=client.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while client.stats()["remote"] < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.kill()
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out

    stats = client.stats()
    assert stats["compiles"] == 40
    assert stats["remote"] >= 4
    assert stats["local"] == 40 - stats["remote"] > 0
    assert set(stats["fallbacks"]) <= {"worker_error", "no_workers"}, stats["fallbacks"]
    assert sum(stats["fallbacks"].values()) == stats["local"]
    assert len(objects(build)) == 40
    text = client.pumpcc("--stats").stdout.decode()
    assert "local, by reason:" in text


def test_no_workers_runs_locally_and_says_why(tmp_path, client_for):
    client = client_for()
    build = tmp_path / "build"
    cmake_configure(CASES / ".." / ".." / "examples" / "hello", build, client.env, launcher=True)
    client.pumpcc("--zero-stats")
    ninja(build, client.env)
    stats = client.stats()
    assert (stats["compiles"], stats["local"], stats["remote"]) == (4, 4, 0)
    assert stats["fallbacks"] == {"no_workers": 4}


def test_fallback_disabled_fails_with_reason(tmp_path, client_for):
    client = client_for(PUMPCC_FALLBACK="0")
    (tmp_path / "a.c").write_text("int a;\n")
    result = client.pumpcc("gcc", "-c", "a.c", "-o", "a.o", check=False, cwd=tmp_path)
    assert result.returncode == 110
    assert result.stderr.decode() == (
        "pumpcc: a.c: cannot compile remotely (no_workers: no workers configured"
        " (see PUMPCC_HOSTS or the YAML))\n"
    )
    assert not (tmp_path / "a.o").exists()


def test_bad_config_gives_one_line_and_compiles_locally(tmp_path, client_for):
    client = client_for()
    bad = tmp_path / "bad.yaml"
    bad.write_text("workers: []\nlocal_slotz: 2\n")
    client.env["PUMPCC_CONFIG"] = str(bad)
    del client.env["PUMPCC_HOSTS"]
    (tmp_path / "a.c").write_text("int a;\n")
    result = client.pumpcc("gcc", "-c", "a.c", "-o", "a.o", cwd=tmp_path)
    assert result.stderr.decode() == (
        f"{bad}: local_slotz: unknown key (known: workers, token_file, local_slots, fallback,"
        " connect_timeout, compile_timeout)\n"
    )
    assert (tmp_path / "a.o").exists()
    assert client.stats()["fallbacks"] == {"config_error": 1}
    hosts = client.pumpcc("--hosts", check=False)
    assert hosts.returncode != 0
    assert "local_slotz: unknown key" in hosts.stdout.decode()
