"""Shared fixtures: the real local stack (never a mock), unique names per test."""

from __future__ import annotations

import time
import uuid

import pytest

from auth_kappa.config import Config
from auth_kappa.stack import manager


@pytest.fixture(scope="session")
def config() -> Config:
    return Config.load()


@pytest.fixture(scope="session")
def stack(config: Config) -> Config:
    """The running stack; fail (not skip) when it is down, so CI cannot pass vacuously.

    A busy Redis (a large checkpoint transaction) can take over a second to answer a
    probe, so a service gets 30 s to answer before the suite gives up on it.
    """
    deadline = time.monotonic() + 30
    down = [s.name for s in manager.status(config) if not s.answering]
    while down and time.monotonic() < deadline:
        time.sleep(1)
        down = [s.name for s in manager.status(config) if not s.answering]
    if down:
        pytest.fail(f"stack services not answering: {', '.join(down)}; "
                    "run `auth-kappa stack up` (make test does it for you)")
    return config


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def redis_cluster():
    """A private Redis Cluster (3 primaries, 3 replicas) for the session's cluster tests."""
    from tests.support.redis_cluster import start_private_cluster

    cluster = start_private_cluster()
    yield cluster
    cluster.down()
