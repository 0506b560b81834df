"""Jobs that name their manifest by digest: sent once per worker like any input file."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import zstandard

from tests.helpers import Worker
from worker import wire


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url + wire.PATH_COMPILE, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


PREDEF = "/usr/include/stdc-predef.h"  # GCC reads it before every source


def test_manifest_round_trip(tmp_path):
    source = tmp_path / "src" / "a.c"
    source.parent.mkdir()
    source.write_bytes(b"int answer(void) { return 42; }\n")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    header = {
        "compiler": {"name": "gcc", "version": "", "target": ""},
        "args": ["-c", str(source), "-o", "a.o"],
        "cwd": str(tmp_path),
        "files": [[str(source), digest]],
        "system_files": [[PREDEF, hashlib.sha256(Path(PREDEF).read_bytes()).hexdigest()]],
        "dirs": [str(tmp_path)],
        "outputs": ["a.o"],
    }
    worker = Worker(tmp_path / "worker")
    try:
        with urllib.request.urlopen(worker.url + wire.PATH_STATUS) as r:
            gcc = json.load(r)["compilers"]["gcc"]
        header["compiler"].update(version=gcc["version"], target=gcc["target"])
        manifest = json.dumps(header).encode()
        name = hashlib.sha256(manifest).hexdigest()
        z = zstandard.ZstdCompressor()

        status, body = post(worker.url, wire.encode_job({"manifest": name}, []))
        assert (status, json.loads(body)) == (409, {"error": "missing_blobs", "missing": [name]})

        blobs = [(name, z.compress(manifest)), (digest, z.compress(source.read_bytes()))]
        status, body = post(worker.url, wire.encode_job({"manifest": name}, blobs))
        assert status == 200
        head, _, _, outputs = wire.decode_result(body)
        assert head["exit"] == 0 and outputs["a.o"].startswith(b"\x7fELF")

        status, body = post(worker.url, wire.encode_job({"manifest": name}, []))
        assert status == 200  # the manifest and the source are known now

        other = hashlib.sha256(b"another manifest").hexdigest()
        wrong = [(other, z.compress(manifest))]
        status, body = post(worker.url, wire.encode_job({"manifest": other}, wrong))
        assert status == 400 and b"does not match" in body
    finally:
        worker.stop()
