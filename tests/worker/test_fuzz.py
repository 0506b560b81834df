"""Property-based fuzzing of the compile endpoint: malformed input is a 4xx, never a 5xx."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.worker.support import Worker, encode, make_job
from worker import wire

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list]:
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "a.c").write_text("int f(void) { return 1; }\n")
    return make_job("gcc", ["-c", str(tmp / "a.c"), "-o", "a.o"], tmp, [tmp / "a.c"], ["a.o"])


def _status(worker: Worker, body: bytes) -> int:
    status = worker.post_job(body).status_code
    assert worker.get(wire.PATH_HEALTH).ok  # still alive
    return status


@FUZZ
@given(body=st.binary(max_size=2000))
def test_random_bodies(worker: Worker, body: bytes):
    assert 400 <= _status(worker, body) < 500


@FUZZ
@given(prefix=st.binary(max_size=200), size=st.integers(0, 2**32 - 1))
def test_random_frames(worker: Worker, prefix: bytes, size: int):
    body = wire.JOB_MAGIC + struct.pack(">I", size) + prefix
    assert 400 <= _status(worker, body) < 500


@FUZZ
@given(cut=st.floats(0, 0.999))
def test_truncated_bodies(worker: Worker, job, cut: float):
    body = encode(*job)
    assert 400 <= _status(worker, body[: int(len(body) * cut)]) < 500


@FUZZ
@given(garbage=st.binary(max_size=300))
def test_bad_zstd_and_wrong_digests(worker: Worker, job, garbage: bytes):
    header, blobs = job
    digest = blobs[0][0]
    for data in (garbage, zstandard.ZstdCompressor().compress(garbage + b"x")):
        assert 400 <= _status(worker, encode(header, [(digest, data)])) < 500


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "compiler",
    "args",
    "cwd",
    "env",
    "files",
    "system_files",
    "dirs",
    "symlinks",
    "absent",
    "outputs",
    "blobs",
]


@FUZZ
@given(field=st.sampled_from(FIELDS), value=JSON, paths=st.lists(st.text(max_size=20), max_size=3))
def test_fuzzed_header_fields(worker: Worker, job, field: str, value, paths: list[str]):
    header, blobs = job
    header = json.loads(json.dumps(header))
    header[field] = value
    header["dirs"] = header["dirs"] + paths if isinstance(header["dirs"], list) else paths
    head = json.dumps(header).encode()
    body = wire.JOB_MAGIC + struct.pack(">I", len(head)) + head + b"".join(b for _, b in blobs)
    assert _status(worker, body) < 500


def test_no_job_roots_left(worker: Worker):
    assert list((worker.scratch / "jobs").iterdir()) == []
    assert Path(worker.log).read_text().count("please report") == 0
