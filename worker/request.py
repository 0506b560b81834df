"""Validate a job header into typed fields before anything touches the disk.

The header comes from the network: every field is checked for its type, and every client path
must be absolute and already normalised (no '.', '..', '//' or NUL), so that mapping it into the
job root by plain concatenation cannot leave the root.  A malformed header is a 400, never a 500.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from worker.blobs import DIGEST
from worker.errors import bad_request

MAX_ITEMS = 200_000  # files, dirs, ... in one job: far beyond any translation unit
MAX_PATH = 4096


@dataclass(frozen=True)
class JobRequest:
    """A job header whose fields have the documented types and safe paths."""

    compiler_name: str
    compiler_version: str
    compiler_target: str
    args: list[str]
    cwd: str
    env: dict[str, str]
    files: list[tuple[str, str]]
    system_files: list[tuple[str, str]]
    dirs: list[str]
    symlinks: list[tuple[str, str]]
    absent: list[str]
    outputs: list[str]
    system_absent: list[str] = field(default_factory=list)  # probed in system folders, absent
    verified: frozenset[str] = frozenset()  # the system_files paths: read from the worker's disk


def check_text(value: object, what: str) -> str:
    """A string without NUL (which would truncate it at the C boundary) of sane length."""
    if not isinstance(value, str):
        raise bad_request(f"{what} must be a string")
    if "\0" in value or len(value) > MAX_PATH * 4:
        raise bad_request(f"{what} contains NUL or is too long")
    return value


def check_abs(value: object, what: str) -> str:
    """An absolute, normalised client path."""
    path = check_text(value, what)
    if not path.startswith("/") or path.startswith("//") or len(path) > MAX_PATH:
        raise bad_request(f"{what} {path[:200]!r} is not an absolute path")
    if os.path.normpath(path) != path:
        raise bad_request(f"{what} {path[:200]!r} is not normalised (no '.', '..', '//')")
    return path


def check_rel_or_abs(value: object, what: str) -> str:
    """A path as it appears in the arguments: relative to the cwd, or absolute and normalised."""
    path = check_text(value, what)
    if not path:
        raise bad_request(f"{what} is empty")
    return check_abs(path, what) if path.startswith("/") else path


def _list(header: dict, key: str) -> list:
    value = header.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise bad_request(f"'{key}' must be a list")
    return value


def _pairs(header: dict, key: str, second: str) -> list[tuple[str, str]]:
    """[[abs path, X], ...] where X is a digest or a symlink target."""
    pairs = []
    for item in _list(header, key):
        if not isinstance(item, list) or len(item) != 2:
            raise bad_request(f"'{key}' items must be [path, {second}]")
        path = check_abs(item[0], f"{key} path")
        other = check_text(item[1], f"{key} {second}")
        if second == "digest" and not DIGEST.fullmatch(other):
            raise bad_request(f"{key}: {path}: {other[:80]!r} is not a sha256 hex digest")
        if second == "target" and not other:
            raise bad_request(f"{key}: {path}: empty symlink target")
        pairs.append((path, other))
    return pairs


def parse_request(header: dict) -> JobRequest:
    """Check every field of a decoded job header (wire.decode_job already checked the framing)."""
    compiler = header.get("compiler")
    if not isinstance(compiler, dict):
        raise bad_request("'compiler' must be an object {name, version, target}")
    name, version, target = (
        check_text(compiler.get(k), f"compiler {k}") for k in ("name", "version", "target")
    )
    args = [check_text(a, "argument") for a in _list(header, "args")]
    env = header.get("env", {})
    if not isinstance(env, dict):
        raise bad_request("'env' must be an object")
    for key, value in env.items():
        check_text(value, f"env {check_text(key, 'env name')}")
    return JobRequest(
        compiler_name=name,
        compiler_version=version,
        compiler_target=target,
        args=args,
        cwd=check_abs(header.get("cwd"), "cwd"),
        env=dict(env),
        files=_pairs(header, "files", "digest"),
        system_files=(system := _pairs(header, "system_files", "digest")),
        dirs=[check_abs(d, "dirs entry") for d in _list(header, "dirs")],
        symlinks=_pairs(header, "symlinks", "target"),
        absent=[check_abs(a, "absent entry") for a in _list(header, "absent")],
        system_absent=[check_abs(a, "system absent entry") for a in _list(header, "system_absent")],
        outputs=[check_rel_or_abs(o, "output") for o in _list(header, "outputs")],
        verified=frozenset(path for path, _ in system),
    )
