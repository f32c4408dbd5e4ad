"""Real server processes (``python -m server``, support/server.py) for integration tests."""

from __future__ import annotations

import os

import pytest

from support.server import ServerProcess, redis_unreachable
from support.server import redis_env as _redis_env
from tests.conftest import unavailable


@pytest.fixture()
def server(database_url, db):
    """A real server process on this test's database (emptied first by ``db``)."""
    process = ServerProcess(database_url).start()
    yield process
    process.stop()


@pytest.fixture()
def redis_env():
    """REDIS_URL (TEST_REDIS_URL) and a pub/sub channel of this test's own."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    reason = redis_unreachable(url)
    if reason:
        unavailable(reason)
    return _redis_env(url, "goodmob-test")
