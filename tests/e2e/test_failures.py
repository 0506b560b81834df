"""The build never breaks: a worker killed mid-build, no workers at all, a bad config."""

from __future__ import annotations

from tests.helpers import CASES, build_in_background, cmake_configure, ninja, objects

MANY = CASES / "e2e" / "many_files"


def test_worker_killed_mid_build_falls_back(tmp_path, worker, client_for):
    client = client_for(worker)
    build = tmp_path / "build"
    proc = build_in_background(MANY, build, client, remote=4)
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


# One file per kind of mistake, and a word its one-line error must contain.
BAD_CONFIGS = {
    "unknown_key": ("workers: []\nlocal_slotz: 2\n", "local_slotz: unknown key"),
    "wrong_type": ("workers: []\nlocal_slots: two\n", "local_slots: expected a positive integer"),
    "missing_key": ("local_slots: 2\n", "workers: missing (required)"),
    "bad_url": ("workers:\n  - url: ftp://w\n", "workers[0].url: 'ftp://w' is not an http"),
    "token_unreadable": ("workers: []\ntoken_file: tokens\n", "token_file: cannot read"),
    "invalid_yaml": ("workers: [\n", "line 2: not valid YAML"),
}


def test_each_bad_config_gives_one_line_fails_commands_and_compiles_locally(tmp_path, client_for):
    client = client_for()
    del client.env["PUMPCC_HOSTS"]
    (tmp_path / "tokens").mkdir()  # a token_file that cannot be read as one
    (tmp_path / "a.c").write_text("int a;\n")
    for n, (kind, (text, words)) in enumerate(BAD_CONFIGS.items(), 1):
        bad = tmp_path / f"{kind}.yaml"
        bad.write_text(text)
        client.env["PUMPCC_CONFIG"] = str(bad)
        line = f"{bad}: {words}"

        result = client.pumpcc("gcc", "-c", "a.c", "-o", f"{kind}.o", cwd=tmp_path)
        said = result.stderr.decode()
        assert said.startswith(line) and said.count("\n") == 1, (kind, said)
        assert (tmp_path / f"{kind}.o").exists()
        assert client.stats()["fallbacks"] == {"config_error": n}

        hosts = client.pumpcc("--hosts", check=False)
        assert hosts.returncode != 0
        assert hosts.stdout.decode() == said, kind
        jobs = client.pumpcc("--jobs", check=False)
        assert jobs.returncode != 0
        assert (jobs.stdout, jobs.stderr.decode()) == (b"", said), kind
