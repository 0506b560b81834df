"""Fixtures shared by the end-to-end tests (areas with their own needs have their own conftest)."""

from __future__ import annotations

import pytest

from tests.helpers import Client, Worker


@pytest.fixture
def worker(tmp_path):
    """One real worker on loopback with 4 slots and no sandbox."""
    w = Worker(tmp_path / "worker")
    yield w
    w.stop()


@pytest.fixture
def client_for():
    """Make isolated clients (each with its own local server), stopped at the end of the test."""
    made: list[Client] = []

    def make(*workers: Worker, **env: str) -> Client:
        hosts = " ".join(f"{w.url}/{w.slots}" for w in workers)
        client = Client(hosts, **env)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
