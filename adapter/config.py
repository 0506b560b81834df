"""The client configuration: the YAML file of CONTRACT.md and ``PUMPCC_HOSTS``.

A config is all or nothing: any unknown key, wrong type or missing required key raises
``ConfigError`` whose message is one line naming the file, the key and what is wrong, so a compile
never runs with half a config.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import yaml

DEFAULT_SLOTS = 4
DEFAULT_PORT = 3634
FILE_NAME = ".pumpcc.yaml"


class ConfigError(Exception):
    """A configuration that pumpcc refuses; ``str(e)`` is the one-line message for the user."""


@dataclass(frozen=True)
class WorkerSpec:
    """One worker of the host list."""

    url: str
    slots: int


@dataclass(frozen=True)
class CacheConfig:
    """The result cache's settings (README "Result cache"); ``dir`` None means the default."""

    enabled: bool = True
    dir: str | None = None
    max_size: int = 5 << 30
    read_only: bool = False
    shared: bool = True  # also look up and store in the workers' shared cache
    base_dir: str = "auto"  # "auto", "none" or a folder: see include_server.cache_key.base_folder


@dataclass(frozen=True)
class Config:
    """The validated client configuration."""

    path: str | None
    workers: tuple[WorkerSpec, ...]
    token: str | None = None
    local_slots: int = 2
    fallback: bool = True
    connect_timeout: float = 2.0
    compile_timeout: float = 300.0
    cache: CacheConfig = CacheConfig()


# key -> (type check, description for the error message)
_TOP_KEYS = {
    "workers": (list, "a list of {url, slots}"),
    "token_file": (str, "a path"),
    "local_slots": (int, "a positive integer"),
    "fallback": (bool, "true or false"),
    "connect_timeout": ((int, float), "a number of seconds"),
    "compile_timeout": ((int, float), "a number of seconds"),
    "cache": (dict, "a mapping (enabled, dir, max_size, read_only, shared, base_dir)"),
}
_REQUIRED = ("workers",)
_CACHE_KEYS = {
    "enabled": (bool, "true or false"),
    "dir": (str, "a folder"),
    "max_size": (int, "a size"),
    "read_only": (bool, "true or false"),
    "shared": (bool, "true or false"),
    "base_dir": (str, "auto, none or an absolute folder"),
}
_WORKER_KEYS = {"url": (str, "an http:// or https:// URL"), "slots": (int, "a positive integer")}


def find_config_file(cwd: str, env: dict[str, str]) -> str | None:
    """The file the contract says to read: PUMPCC_CONFIG, ./.pumpcc.yaml upwards, user, system."""
    explicit = env.get("PUMPCC_CONFIG")
    if explicit:
        return os.path.join(cwd, os.path.expanduser(explicit))
    folder = cwd
    while True:
        candidate = os.path.join(folder, FILE_NAME)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    home = env.get("HOME") or os.path.expanduser("~")
    for candidate in (os.path.join(home, ".config/pumpcc/config.yaml"), "/etc/pumpcc/config.yaml"):
        if os.path.isfile(candidate):
            return candidate
    return None


def is_loopback_host(host: str) -> bool:
    """Whether only this machine can reach ``host``, where a missing token is acceptable."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback(url: str) -> bool:
    """Whether a worker URL points at this machine (no token needed there)."""
    return is_loopback_host(urlsplit(url).hostname or "")


def _check_url(where: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: {url!r} is not an http:// or https:// URL")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{where}: {url!r} has a bad port") from None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}:{port or DEFAULT_PORT}"


def _typed(where: str, value: object, expected: type | tuple, what: str) -> None:
    is_bool = isinstance(value, bool)
    wrong = not isinstance(value, expected) or (is_bool and expected is not bool)
    if wrong:
        raise ConfigError(f"{where}: expected {what}, got {value!r}")


def parse_hosts(text: str, where: str = "PUMPCC_HOSTS") -> tuple[WorkerSpec, ...]:
    """Parse ``URL[/SLOTS]`` entries separated by white space."""
    workers = []
    for entry in text.split():
        url, slots = entry, DEFAULT_SLOTS
        base, _, last = entry.rstrip("/").rpartition("/")
        if last.isdigit() and "://" in base and base.split("://", 1)[1]:
            url, slots = base, int(last)
        if slots < 1:
            raise ConfigError(f"{where}: {entry!r}: slots must be at least 1")
        workers.append(WorkerSpec(_check_url(f"{where}: {entry!r}", url), slots))
    return tuple(workers)


def _parse_workers(path: str, value: list) -> tuple[WorkerSpec, ...]:
    workers = []
    for i, item in enumerate(value):
        where = f"{path}: workers[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping with url and slots, got {item!r}")
        for key in item:
            if key not in _WORKER_KEYS:
                raise ConfigError(f"{where}.{key}: unknown key (known: url, slots)")
        if "url" not in item:
            raise ConfigError(f"{where}.url: missing")
        _typed(f"{where}.url", item["url"], str, "an http:// or https:// URL")
        slots = item.get("slots", DEFAULT_SLOTS)
        _typed(f"{where}.slots", slots, int, "a positive integer")
        if slots < 1:
            raise ConfigError(f"{where}.slots: must be at least 1, got {slots}")
        workers.append(WorkerSpec(_check_url(f"{where}.url", item["url"]), slots))
    return tuple(workers)


def read_secret(token_path: str) -> str:
    """The shared secret in a token file, stripped ("" when empty); OSError when unreadable.

    Clients and workers both read it here and word their own errors around it.
    """
    with open(token_path, encoding="utf-8") as f:
        return f.read().strip()


def _read_token(path: str, token_file: str) -> str:
    token_path = os.path.join(os.path.dirname(path), os.path.expanduser(token_file))
    try:
        token = read_secret(token_path)
    except OSError as e:
        raise ConfigError(f"{path}: token_file: cannot read {token_path}: {e.strerror}") from None
    if not token:
        raise ConfigError(f"{path}: token_file: {token_path} is empty")
    return token


def _parse_size(where: str, value: object) -> int:
    """Bytes from an integer or a string with a K, M or G suffix ('500M', '5G')."""
    if isinstance(value, str):
        text = value.strip().upper().removesuffix("B")
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        number = text[:-1] if scale > 1 else text
        try:
            value = int(float(number) * scale)
        except ValueError:
            raise ConfigError(f"{where}: expected bytes like 500M or 5G, got {value!r}") from None
    _typed(where, value, int, "a size in bytes (or 500M, 5G)")
    if value < 1 << 20:  # type: ignore[operator]
        raise ConfigError(f"{where}: must be at least 1M, got {value}")
    return value  # type: ignore[return-value]


def _parse_cache(path: str, value: dict) -> CacheConfig:
    """The ``cache`` mapping; ``dir`` is relative to the file's folder, ``~`` expanded."""
    known = _CACHE_KEYS
    for key, item in value.items():
        if key not in known:
            raise ConfigError(f"{path}: cache.{key}: unknown key (known: {', '.join(known)})")
        if key != "max_size":
            _typed(f"{path}: cache.{key}", item, *known[key])
    folder = value.get("dir")
    if folder is not None:
        folder = os.path.join(os.path.dirname(path), os.path.expanduser(folder))
    base_dir = value.get("base_dir", CacheConfig.base_dir)
    if base_dir not in ("auto", "none"):
        given, base_dir = base_dir, os.path.normpath(os.path.expanduser(base_dir))
        if not os.path.isabs(base_dir) or base_dir == "/":
            raise ConfigError(
                f"{path}: cache.base_dir: expected auto, none or an absolute folder, got {given!r}"
            )
    max_size = CacheConfig.max_size
    if "max_size" in value:
        max_size = _parse_size(f"{path}: cache.max_size", value["max_size"])
    return CacheConfig(
        enabled=value.get("enabled", True),
        dir=folder,
        max_size=max_size,
        read_only=value.get("read_only", False),
        shared=value.get("shared", True),
        base_dir=base_dir,
    )


def load_file(path: str) -> Config:
    """Read and validate one client YAML file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}: {line}not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (workers, token_file, ...)")
    for key, value in data.items():
        if key not in _TOP_KEYS:
            raise ConfigError(f"{path}: {key}: unknown key (known: {', '.join(_TOP_KEYS)})")
        expected, what = _TOP_KEYS[key]
        _typed(f"{path}: {key}", value, expected, what)
    for key in _REQUIRED:
        if key not in data:
            raise ConfigError(f"{path}: {key}: missing (required)")
    workers = _parse_workers(path, data["workers"])
    local_slots = data.get("local_slots", Config.local_slots)
    if local_slots < 1:
        raise ConfigError(f"{path}: local_slots: must be at least 1, got {local_slots}")
    token = _read_token(path, data["token_file"]) if "token_file" in data else None
    if token is None:
        remote = [w.url for w in workers if not is_loopback(w.url)]
        if remote:
            raise ConfigError(f"{path}: token_file: missing, required for non-loopback {remote[0]}")
    return Config(
        path=path,
        workers=workers,
        token=token,
        local_slots=local_slots,
        fallback=data.get("fallback", True),
        connect_timeout=float(data.get("connect_timeout", Config.connect_timeout)),
        compile_timeout=float(data.get("compile_timeout", Config.compile_timeout)),
        cache=_parse_cache(path, data["cache"]) if "cache" in data else CacheConfig(),
    )


def load(cwd: str, env: dict[str, str]) -> Config:
    """The configuration for a compile run in ``cwd`` with environment ``env``."""
    path = find_config_file(cwd, env)
    config = Config(path=None, workers=()) if path is None else load_file(path)
    hosts = env.get("PUMPCC_HOSTS")
    if hosts is not None and hosts.strip():
        config = Config(**{**config.__dict__, "workers": parse_hosts(hosts)})
    return config
