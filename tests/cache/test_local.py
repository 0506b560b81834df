"""The local cache level: bounded, least recently used evicted, order kept across restarts."""

from __future__ import annotations

import os
import time

from include_server.cache import LocalCache


def test_least_recently_used_go_first(tmp_path):
    cache = LocalCache(str(tmp_path), max_bytes=100)
    keys = [f"{i:064x}" for i in range(4)]
    for key in keys[:3]:
        cache.put(key, b"x" * 30)
        time.sleep(0.01)  # distinct mtimes: the order a restart reads back
    assert cache.get(keys[0]) is not None  # now the most recently used
    cache.put(keys[3], b"y" * 30)
    assert cache.get(keys[1]) is None
    assert cache.usage()["bytes"] <= 100
    restarted = LocalCache(str(tmp_path), max_bytes=70)
    restarted.put(f"{9:064x}", b"z" * 10)  # over the new bound: the oldest by use go
    assert restarted.get(keys[0]) is not None and restarted.get(keys[2]) is None


def test_interrupted_writes_are_swept_and_vanished_entries_miss(tmp_path):
    cache = LocalCache(str(tmp_path), max_bytes=1 << 20)
    key = "ab" * 32
    cache.put(key, b"entry")
    stray = tmp_path / "ab" / ".tmpcrashed"
    stray.write_bytes(b"half")
    assert LocalCache(str(tmp_path), max_bytes=1 << 20).usage()["entries"] == 1
    assert not stray.exists()
    os.unlink(tmp_path / "ab" / key)  # another server sharing the folder evicted it
    assert cache.get(key) is None
    assert cache.usage()["entries"] == 0


def test_a_damaged_entry_is_a_miss(tmp_path):
    from adapter.command import classify
    from include_server.cache import decode_entry
    from include_server.cache_key import CacheKey, DepTargets
    from worker import wire

    compile = classify(["gcc", "-c", "a.c", "-MD"], str(tmp_path), {"PATH": "/usr/bin"})
    key = CacheKey("0" * 64, DepTargets((("-MQ", "a.o"),)), "gcc")
    good = wire.encode_result(0, b"", b"", [("object", b"o"), ("depfile", b"a.o: a.c\n")])
    assert decode_entry(good, key, compile, "here") is None  # no format: not an entry of ours
    entry = wire.encode_result(
        0, b"", b"w", [("object", b"o"), ("depfile", b"a.o: a.c\n")], {"format": 1}
    )
    hit = decode_entry(entry, key, compile, "here")
    assert hit is not None and hit.outputs == {"a.o": b"o", "a.d": b"a.o: a.c\n"}
    assert decode_entry(entry[:-3], key, compile, "here") is None
    assert decode_entry(b"junk", key, compile, "here") is None
