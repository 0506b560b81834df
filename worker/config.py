"""The worker's YAML configuration: keys, defaults and validation.

A worker that starts with half a configuration would compile with the wrong limits or listen
unauthenticated on the network, so every key is checked for its type and unknown keys are refused
with one line that names the file, the key and what is wrong (exit status 2 in main).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

import yaml

from adapter.config import is_loopback_host, read_secret
from worker.wire import DEFAULT_PORT

DEFAULT_COMPILERS = ("cc", "c++", "gcc", "g++", "clang", "clang++")
SANDBOXES = ("auto", "bwrap", "none")
GiB = 1 << 30
MiB = 1 << 20


class ConfigError(ValueError):
    """A configuration problem, already phrased as the one line the user sees."""


@dataclass(frozen=True)
class Config:
    """Everything the worker reads from its YAML and command line."""

    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    slots: int = field(default_factory=lambda: os.cpu_count() or 1)
    token_file: str | None = None
    compilers: tuple[str, ...] = DEFAULT_COMPILERS
    scratch_dir: str = "/var/tmp/pumpcc"
    sandbox: str = "auto"
    # Capacity: how long a request waits for a slot, how many may wait at once.
    queue_timeout: float = 2.0
    max_queued: int | None = None  # default: 2 * slots
    # Inputs.
    blob_store_max_bytes: int = 2 * GiB
    max_request_bytes: int = 512 * MiB
    max_blob_bytes: int = 256 * MiB  # one decompressed input file
    system_prefixes: tuple[str, ...] = ("/usr/", "/opt/")
    # The shared result cache (pumpcc's and Bazel's HTTP cache) under scratch_dir/cache; 0: none.
    cache_max_bytes: int = 4 * GiB
    # Per-job limits.
    job_cpu_seconds: int = 300
    job_memory_bytes: int = 4 * GiB
    job_output_bytes: int = 1 * GiB  # any single file the compiler writes, stdout/stderr included
    job_wall_seconds: float = 600.0
    # Processes (threads included) one compile may run at once, counted in a pids cgroup per job;
    # 0: no cgroup (joining one costs ~10 ms per job on kernels that wait for an RCU grace period).
    job_processes: int = 0
    # TLS: both or neither.
    tls_cert: str | None = None
    tls_key: str | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        """Split `listen` (validated at load time)."""
        return split_listen(self.listen)

    @property
    def queue_limit(self) -> int:
        """How many requests may wait for a slot before new ones are answered busy at once."""
        return self.max_queued if self.max_queued is not None else 2 * self.slots


_TYPES: dict[str, tuple[type, ...]] = {
    "listen": (str,),
    "slots": (int,),
    "token_file": (str, type(None)),
    "compilers": (list,),
    "scratch_dir": (str,),
    "sandbox": (str,),
    "queue_timeout": (int, float),
    "max_queued": (int, type(None)),
    "blob_store_max_bytes": (int,),
    "max_request_bytes": (int,),
    "max_blob_bytes": (int,),
    "system_prefixes": (list,),
    "cache_max_bytes": (int,),
    "job_cpu_seconds": (int,),
    "job_memory_bytes": (int,),
    "job_output_bytes": (int,),
    "job_wall_seconds": (int, float),
    "job_processes": (int,),
    "tls_cert": (str, type(None)),
    "tls_key": (str, type(None)),
}
_POSITIVE = {
    "slots",
    "queue_timeout",
    "blob_store_max_bytes",
    "max_request_bytes",
    "max_blob_bytes",
    "job_cpu_seconds",
    "job_memory_bytes",
    "job_output_bytes",
    "job_wall_seconds",
}
assert set(_TYPES) == {f.name for f in fields(Config)}


def split_listen(listen: str) -> tuple[str, int]:
    """'HOST:PORT' or '[v6]:PORT' -> (host, port); raises ValueError with the reason."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("must be HOST:PORT")
    return host.strip("[]"), int(port)


def _check_value(key: str, value: object) -> object:
    """Type-check one key and return it in the form Config stores (lists become tuples)."""
    types = _TYPES[key]
    # bool is an int subclass; `slots: yes` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, types):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise ValueError(f"must be {names}, not {type(value).__name__}")
    if key in _POSITIVE and value <= 0:  # type: ignore[operator]
        raise ValueError("must be positive")
    if (
        key in ("max_queued", "cache_max_bytes", "job_processes")
        and value is not None
        and value < 0
    ):  # type: ignore[operator]
        raise ValueError("must not be negative")
    if key == "sandbox" and value not in SANDBOXES:
        raise ValueError(f"must be one of {', '.join(SANDBOXES)}")
    if key == "listen":
        split_listen(value)  # type: ignore[arg-type]
    if isinstance(value, list):
        if not value or not all(isinstance(v, str) and v for v in value):
            raise ValueError("must be a non-empty list of strings")
        if key == "compilers" and any("/" in v for v in value):
            raise ValueError("names only, resolved on the worker's PATH")
        if key == "system_prefixes" and any(not v.startswith("/") for v in value):
            raise ValueError("must be absolute paths")
        return tuple(value)
    return value


def load(path: str | None, overrides: dict[str, object]) -> Config:
    """Read the YAML file (if any), apply command-line overrides, and check the whole."""
    values: dict[str, object] = {}
    where = path or "command line"
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must be a mapping of keys to values")
        for key, value in data.items():
            if key not in _TYPES:
                raise ConfigError(f"{path}: {key}: unknown key")
            try:
                values[key] = _check_value(key, value)
            except ValueError as e:
                raise ConfigError(f"{path}: {key}: {e}") from None
    for key, value in overrides.items():
        try:
            values[key] = _check_value(key, value)
        except ValueError as e:
            raise ConfigError(f"command line: --{key.replace('_', '-')}: {e}") from None
    config = replace(Config(), **values)
    host, _ = config.host_port
    if config.token_file is None and not is_loopback_host(host):
        raise ConfigError(
            f"{where}: token_file: required when listen ({config.listen}) is not a loopback address"
        )
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError(f"{where}: tls_cert: tls_cert and tls_key go together")
    return config


def read_token(config: Config) -> str | None:
    """The shared secret, or None when auth is off; an empty or unreadable file is an error."""
    if config.token_file is None:
        return None
    try:
        token = read_secret(config.token_file)
    except OSError as e:
        raise ConfigError(f"token_file: {config.token_file}: {e.strerror}") from None
    if not token:
        raise ConfigError(f"token_file: {config.token_file}: is empty")
    return token
