"""Fixtures for the result cache tests: clients with the cache on, in a folder of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Client, Worker


def cache_client(
    make,
    tmp: Path,
    *workers: Worker,
    token_file: Path | None = None,
    PUMPCC_FALLBACK: str = "1",  # noqa: N803 - spelled as the variable it sets
    **cache: object,
) -> Client:
    """A client with the result cache on, its local level in ``tmp``, more cache keys given."""
    client = make(*workers, PUMPCC_CACHE="1", PUMPCC_FALLBACK=PUMPCC_FALLBACK)
    settings = {"dir": str(tmp), "max_size": "64M", **cache}
    body = ", ".join(
        f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items()
    )
    token = f"token_file: {token_file}\n" if token_file else ""
    Path(client.env["PUMPCC_CONFIG"]).write_text(f"workers: []\n{token}cache: {{{body}}}\n")
    return client


@pytest.fixture
def cached(tmp_path, worker, client_for):
    """A client with its own local cache and one worker (whose shared cache starts empty)."""
    return cache_client(client_for, tmp_path / "cache", worker)
