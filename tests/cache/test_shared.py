"""The workers' shared cache: a second client is served what the first compiled, and the HTTP
routes (pumpcc's and Bazel's) check tokens and digests."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
import requests

from tests.cache.conftest import cache_client
from tests.cache.test_key import ARGS, outcome, project  # noqa: F401 - the project fixture
from tests.helpers import Worker

TOKEN = "cache-test-token"


@pytest.fixture
def secured(tmp_path):
    """A worker that requires a token, and the token's file."""
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    w = Worker(tmp_path / "secured", token_file=str(token))
    yield w, token
    w.stop()


def test_second_client_is_served_by_the_shared_cache(tmp_path, secured, client_for, project):  # noqa: F811
    worker, token = secured
    build = project / "build"
    first = cache_client(client_for, tmp_path / "c1", worker, token_file=token)
    assert outcome(first, build, "gcc", *ARGS, "-MD") == "miss"
    assert first.stats()["cache"]["remote_stores"] == 1
    produced = (build / "a.o").read_bytes(), (build / "a.d").read_bytes()
    (build / "a.o").unlink()

    second = cache_client(client_for, tmp_path / "c2", worker, token_file=token)
    assert outcome(second, build, "gcc", *ARGS, "-MD") == "remote"
    assert ((build / "a.o").read_bytes(), (build / "a.d").read_bytes()) == produced
    assert outcome(second, build, "gcc", *ARGS, "-MD") == "local", "kept locally after a hit"

    reader = cache_client(client_for, tmp_path / "c3", worker, token_file=token, read_only=True)
    assert outcome(reader, build, "gcc", *ARGS, "-MD") == "remote"
    assert outcome(reader, build, "gcc", *ARGS, "-MD") == "remote", "read_only keeps nothing"
    assert outcome(reader, build, "gcc", "-O0", *ARGS[1:]) == "miss"
    assert reader.stats()["cache"]["remote_stores"] == 0

    subprocess.run(["gcc", *ARGS[:-1], "local.o"], cwd=build, check=True)
    assert produced[0] == (build / "local.o").read_bytes()


def test_cache_routes_check_token_and_digest(secured):
    worker, _ = secured
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = b"an object file"
    digest = hashlib.sha256(body).hexdigest()
    for prefix in ("/v1/cache/", "/ac/", "/cas/"):
        url = worker.url + prefix + digest
        assert requests.put(url, data=body).status_code == 401
        assert requests.get(url).status_code == 401
        assert requests.get(url, headers=auth).status_code == 404
        assert requests.head(url, headers=auth).status_code == 404
    wrong = worker.url + "/cas/" + "0" * 64
    assert requests.put(wrong, data=body, headers=auth).status_code == 400
    unsigned = worker.url + "/v1/cache/" + "1" * 64
    assert requests.put(unsigned, data=body, headers=auth).status_code == 400
    signed = dict(auth, **{"X-Pumpcc-Sha256": digest})
    assert requests.put(unsigned, data=body, headers=signed).status_code == 200
    got = requests.get(unsigned, headers=auth)
    assert (got.content, got.headers["X-Pumpcc-Sha256"]) == (body, digest)
    assert requests.put(worker.url + "/cas/" + digest, data=body, headers=auth).ok
    assert requests.get(worker.url + "/cas/" + digest, headers=auth).content == body
    action = worker.url + "/ac/" + "2" * 64  # an action digest: the body cannot be checked
    assert requests.put(action, data=b"\x0a\x02ok", headers=auth).ok
    assert requests.head(action, headers=auth).status_code == 200
    assert requests.get(action, headers=auth).content == b"\x0a\x02ok"
    assert requests.get(worker.url + "/ac/not-a-digest", headers=auth).status_code == 400


def test_store_is_bounded(tmp_path):
    from worker.cache import CacheStore

    store = CacheStore(str(tmp_path / "c"), max_bytes=100)
    names = [f"{i:064x}" for i in range(5)]
    for name in names:
        store.put("cas", name, b"x" * 40)
        store.get("cas", names[0])  # the first stays in use
    assert store.get("cas", names[0]) is not None
    assert store.get("cas", names[1]) is None
    assert store.stats()["bytes"] <= 100
    reopened = CacheStore(str(tmp_path / "c"), max_bytes=100)
    assert reopened.stats()["count"] == store.stats()["count"]
