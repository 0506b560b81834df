"""The contract between the local server and a worker: URL paths, frames and error codes.

Both sides import this module, so the framing lives in exactly one place.  A frame is a magic line,
a 4-byte big-endian header length, a JSON header, then raw bytes whose lengths the header gives.
A job frame carries its blobs (each a zstd frame of one input file, compressed once by the local
server and reused for every job and every worker); a result frame is compressed as a whole.
See ARCHITECTURE.md for the fields.
"""

from __future__ import annotations

import json
import struct

import zstandard

PROTOCOL_VERSION = 1
DEFAULT_PORT = 3634

PATH_HEALTH = "/v1/health"
PATH_STATUS = "/v1/status"
PATH_COMPILE = "/v1/compile"
PATH_METRICS = "/metrics"
# The shared result cache: GET/PUT/HEAD PATH_CACHE + <key> (64 hex digits); a PUT carries the
# sha256 of its body in CACHE_DIGEST_HEADER and is refused (400) when they differ.  Bazel's HTTP
# cache protocol is served on the same store under /ac/<sha256> and /cas/<sha256>.
PATH_CACHE = "/v1/cache/"
CACHE_DIGEST_HEADER = "X-Pumpcc-Sha256"

JOB_MAGIC = b"PJ1\n"
RESULT_MAGIC = b"PR1\n"
JOB_CONTENT_TYPE = "application/x-pumpcc-job"
RESULT_CONTENT_TYPE = "application/x-pumpcc-result+zstd"

# Error codes a worker answers with (JSON body {"error": CODE, ...}); the client acts on them.
MISSING_BLOBS = "missing_blobs"  # 409: send the job again with these blobs
SYSTEM_HEADER_MISMATCH = "system_header_mismatch"  # 409: the worker's system header differs
UNLISTED_INPUT = "unlisted_input"  # 409: the compiler read a file the job neither sent nor listed
COMPILER_MISMATCH = "compiler_mismatch"  # 409: another version or target
UNKNOWN_COMPILER = "unknown_compiler"  # 404: not in the worker's allowlist
BAD_REQUEST = "bad_request"  # 400
REFUSED_OPTION = "refused_option"  # 400: an option a worker never runs
UNAUTHORIZED = "unauthorized"  # 401
BUSY = "busy"  # 503: all slots taken and the queue full: try another worker
TOO_LARGE = "too_large"  # 413

_LEN = struct.Struct(">I")
MAX_HEADER = 16 << 20


class WireError(ValueError):
    """A frame is malformed: wrong magic, truncated, lengths that do not add up, bad JSON."""


def _frame(magic: bytes, header: dict, parts: list[bytes]) -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([magic, _LEN.pack(len(head)), head, *parts])


def _unframe(magic: bytes, body: bytes) -> tuple[dict, int]:
    """Return the header and the offset where the data after it starts."""
    if not body.startswith(magic):
        raise WireError("not a pumpcc frame (wrong magic)")
    start = len(magic) + _LEN.size
    if len(body) < start:
        raise WireError("frame truncated in its header length")
    (size,) = _LEN.unpack_from(body, len(magic))
    if size > MAX_HEADER or start + size > len(body):
        raise WireError("frame truncated in its header")
    try:
        header = json.loads(body[start : start + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError(f"frame header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise WireError("frame header is not an object")
    return header, start + size


def _split(body: bytes, offset: int, sizes: list[int]) -> list[bytes]:
    parts = []
    for size in sizes:
        if not isinstance(size, int) or size < 0 or offset + size > len(body):
            raise WireError("frame truncated in its data")
        parts.append(body[offset : offset + size])
        offset += size
    if offset != len(body):
        raise WireError("frame has bytes after its data")
    return parts


def encode_job(header: dict, blobs: list[tuple[str, bytes]]) -> bytes:
    """Build a job frame; `blobs` are (digest, compressed bytes), recorded in header["blobs"]."""
    header = dict(header, blobs=[[digest, len(data)] for digest, data in blobs])
    return _frame(JOB_MAGIC, header, [data for _, data in blobs])


def decode_job(body: bytes) -> tuple[dict, dict[str, bytes]]:
    """Split a job frame into its header and {digest: compressed bytes} (not yet verified)."""
    header, offset = _unframe(JOB_MAGIC, body)
    listed = header.get("blobs", [])
    if not isinstance(listed, list) or not all(
        isinstance(b, list) and len(b) == 2 and isinstance(b[0], str) for b in listed
    ):
        raise WireError("header 'blobs' must be a list of [digest, length]")
    parts = _split(body, offset, [b[1] for b in listed])
    return header, {b[0]: data for b, data in zip(listed, parts, strict=True)}


def encode_result(
    exit_code: int,
    stdout: bytes,
    stderr: bytes,
    outputs: list[tuple[str, bytes]],
    extra: dict | None = None,
    level: int = 1,
) -> bytes:
    """Build a compressed result frame: exit status, compiler output and output files."""
    header = dict(extra or {})
    header.update(
        exit=exit_code,
        stdout=len(stdout),
        stderr=len(stderr),
        outputs=[[path, len(data)] for path, data in outputs],
    )
    frame = _frame(RESULT_MAGIC, header, [stdout, stderr, *(data for _, data in outputs)])
    return zstandard.ZstdCompressor(level=level).compress(frame)


def decode_result(body: bytes) -> tuple[dict, bytes, bytes, dict[str, bytes]]:
    """Return (header, stdout, stderr, {output path: bytes}) from a compressed result frame."""
    try:
        frame = zstandard.ZstdDecompressor().decompress(body)
    except zstandard.ZstdError as e:
        raise WireError(f"result is not zstd: {e}") from None
    header, offset = _unframe(RESULT_MAGIC, frame)
    listed = header.get("outputs", [])
    sizes = [header.get("stdout"), header.get("stderr"), *(o[1] for o in listed)]
    stdout, stderr, *files = _split(frame, offset, sizes)
    return header, stdout, stderr, {o[0]: data for o, data in zip(listed, files, strict=True)}
