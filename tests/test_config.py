"""The client YAML and PUMPCC_HOSTS: accepted forms and the exact one-line errors."""

from __future__ import annotations

import pytest

from adapter.config import ConfigError, load, load_file, parse_hosts


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_contract_example_loads(tmp_path):
    (tmp_path / "token").write_text("s3cret\n")
    path = write(
        tmp_path,
        "workers:\n  - url: http://10.0.0.5:3634\n    slots: 16\n  - url: http://10.0.0.6\n"
        "token_file: token\nlocal_slots: 3\nfallback: false\n",
    )
    config = load_file(path)
    assert [(w.url, w.slots) for w in config.workers] == [
        ("http://10.0.0.5:3634", 16),
        ("http://10.0.0.6:3634", 4),
    ]
    assert (config.token, config.local_slots, config.fallback) == ("s3cret", 3, False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("workers: []\nslotz: 3\n", "slotz: unknown key"),
        ("workers: {}\n", "workers: expected a list of {url, slots}, got {}"),
        ("local_slots: 2\n", "workers: missing (required)"),
        ("workers: []\nlocal_slots: two\n", "local_slots: expected a positive integer, got 'two'"),
        ("workers: []\nfallback: 1\n", "fallback: expected true or false, got 1"),
        ("workers:\n  - url: ftp://x\n", "workers[0].url: 'ftp://x' is not an http"),
        ("workers:\n  - url: http://x:1\n    slots: 0\n", "workers[0].slots: must be at least 1"),
        ("workers:\n  - url: http://x:1\n    slot: 2\n", "workers[0].slot: unknown key"),
        ("workers:\n  - url: http://10.1.1.1\n", "token_file: missing, required for non-loopback"),
        ("workers: [\n", "line 2: not valid YAML"),
        ("workers: []\ntoken_file: nowhere\n", "token_file: cannot read "),
        ("workers: []\ntoken_file: c.yaml.d\n", "Is a directory"),
        ("- a\n", "expected a mapping of keys"),
    ],
)
def test_bad_files_give_one_line_naming_file_and_key(tmp_path, text, message):
    (tmp_path / "c.yaml.d").mkdir()
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_file(path)
    line = str(e.value)
    assert "\n" not in line
    assert line.startswith(path + ": ")
    assert message in line


def test_hosts_variable():
    workers = parse_hosts("http://10.0.0.5:3634/16  http://h2  https://[::1]:9/2")
    assert [(w.url, w.slots) for w in workers] == [
        ("http://10.0.0.5:3634", 16),
        ("http://h2:3634", 4),
        ("https://[::1]:9", 2),
    ]


def test_hosts_variable_overrides_file(tmp_path):
    path = write(tmp_path, "workers:\n  - url: http://127.0.0.1:1\n")
    config = load(str(tmp_path), {"PUMPCC_CONFIG": path, "PUMPCC_HOSTS": "http://127.0.0.1:7/3"})
    assert [(w.url, w.slots) for w in config.workers] == [("http://127.0.0.1:7", 3)]


def test_config_is_found_in_a_parent_folder(tmp_path):
    (tmp_path / ".pumpcc.yaml").write_text("workers: []\nlocal_slots: 5\n")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert load(str(sub), {"HOME": str(tmp_path / "home")}).local_slots == 5
