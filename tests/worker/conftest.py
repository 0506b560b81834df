"""Fixtures for worker tests (helpers live in support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.worker.support import Worker, start_worker


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One shared worker (sandbox none, auth on) for tests that do not disturb it."""
    w = start_worker(tmp_path_factory.mktemp("worker"), slots=2)
    yield w
    assert w.stop() == 0
