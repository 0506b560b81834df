"""Launcher <-> local server framing, over the user's Unix socket.

Both directions send one message: a 4-byte big-endian length, then the payload.  The launcher
imports this module on every compile, so it uses builtins only (no struct, no json: ``json`` pulls
in ``re``, 8 ms).

Request payload: fields joined by NUL: ``VERSION``, kind, cwd, umask (octal; the server creates
output files with the launcher's permissions), argc, argv..., then ``KEY=VALUE`` environment
entries.  Response payload: one kind byte, then:

- ``R``: result.  4-byte signed exit status, 8-byte stdout length, stdout, stderr.
- ``L``: run the compiler here.  A message for stderr (may be empty).  The server holds one of
  its local slots until the launcher closes the connection, which bounds local compiles.
- ``J``: a JSON document (answers to ``stats``, ``hosts``, ``jobs`` ...).
"""

VERSION = b"pumpcc-local-1"

RESULT = 0x52  # ord("R")
LOCAL = 0x4C  # ord("L")
JSON = 0x4A  # ord("J")


def encode_request(kind: str, cwd: str, umask: int, argv: list[str], env: dict[str, str]) -> bytes:
    """Frame a request; paths and arguments keep their bytes via the file system encoding."""
    from os import fsencode

    fields = [VERSION, kind.encode(), fsencode(cwd), b"%o" % umask, str(len(argv)).encode()]
    fields += [fsencode(a) for a in argv]
    fields += [fsencode(k) + b"=" + fsencode(v) for k, v in env.items()]
    payload = b"\0".join(fields)
    return len(payload).to_bytes(4, "big") + payload


def decode_request(payload: bytes) -> tuple[str, str, int, list[str], dict[str, str]]:
    """Return (kind, cwd, umask, argv, env); raises ValueError on anything malformed."""
    from os import fsdecode

    fields = payload.split(b"\0")
    if len(fields) < 5 or fields[0] != VERSION:
        raise ValueError("not a pumpcc launcher request (version mismatch?)")
    kind, cwd = fields[1].decode(), fsdecode(fields[2])
    umask, argc = int(fields[3], 8), int(fields[4])
    if argc < 0 or 5 + argc > len(fields):
        raise ValueError("argument count does not match")
    argv = [fsdecode(f) for f in fields[5 : 5 + argc]]
    env = {}
    for entry in fields[5 + argc :]:
        key, sep, value = entry.partition(b"=")
        if sep:
            env[fsdecode(key)] = fsdecode(value)
    return kind, cwd, umask, argv, env


def encode_result(exit_code: int, stdout: bytes, stderr: bytes) -> bytes:
    """Frame a finished compile's exit status and output."""
    payload = b"".join(
        [
            bytes([RESULT]),
            exit_code.to_bytes(4, "big", signed=True),
            len(stdout).to_bytes(8, "big"),
            stdout,
            stderr,
        ]
    )
    return len(payload).to_bytes(4, "big") + payload


def encode_local(message: str) -> bytes:
    """Frame a "run it here" answer with what to print on stderr (PUMPCC_VERBOSE)."""
    payload = bytes([LOCAL]) + message.encode()
    return len(payload).to_bytes(4, "big") + payload


def encode_json(text: str) -> bytes:
    """Frame an answer to a control request."""
    payload = bytes([JSON]) + text.encode()
    return len(payload).to_bytes(4, "big") + payload


def decode_result(payload: bytes) -> tuple[int, bytes, bytes]:
    """Split an ``R`` payload into exit status, stdout and stderr."""
    exit_code = int.from_bytes(payload[1:5], "big", signed=True)
    out_len = int.from_bytes(payload[5:13], "big")
    return exit_code, payload[13 : 13 + out_len], payload[13 + out_len :]
