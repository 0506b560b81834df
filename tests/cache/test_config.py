"""The client YAML's ``cache`` mapping: accepted forms and the exact one-line errors."""

from __future__ import annotations

import pytest

from adapter.config import CacheConfig, ConfigError, load_file


def load(tmp_path, cache: str):
    path = tmp_path / "c.yaml"
    path.write_text(f"workers: []\ncache: {cache}\n")
    return load_file(str(path))


def test_defaults_and_forms(tmp_path):
    assert load(tmp_path, "{}").cache == CacheConfig()
    config = load(tmp_path, "{dir: c, max_size: 1.5G, read_only: true, shared: false}").cache
    assert config.dir == str(tmp_path / "c")
    assert (config.max_size, config.read_only, config.shared) == (3 << 29, True, False)
    assert load(tmp_path, "{max_size: 2097152, enabled: false}").cache.max_size == 2 << 20
    assert load(tmp_path, "{}").cache.base_dir == "auto"
    assert load(tmp_path, "{base_dir: /src/work/}").cache.base_dir == "/src/work"


@pytest.mark.parametrize(
    ("cache", "message"),
    [
        (
            "[]",
            "cache: expected a mapping (enabled, dir, max_size, read_only, shared, base_dir),"
            " got []",
        ),
        (
            "{size: 1G}",
            "cache.size: unknown key (known: enabled, dir, max_size, read_only, shared, base_dir)",
        ),
        ("{max_size: 10}", "cache.max_size: must be at least 1M, got 10"),
        ("{max_size: lots}", "cache.max_size: expected bytes like 500M or 5G, got 'lots'"),
        ("{read_only: yes please}", "cache.read_only: expected true or false, got 'yes please'"),
        ("{dir: 3}", "cache.dir: expected a folder, got 3"),
        ("{base_dir: src}", "cache.base_dir: expected auto, none or an absolute folder, got 'src'"),
        ("{base_dir: /}", "cache.base_dir: expected auto, none or an absolute folder, got '/'"),
    ],
)
def test_errors_name_the_key(tmp_path, cache, message):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, cache)
    assert str(e.value) == f"{tmp_path / 'c.yaml'}: {message}"
