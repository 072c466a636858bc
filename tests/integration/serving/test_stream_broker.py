"""The streaming tests' broker: a real, empty redis-server on loopback that is gone after the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.redis_server import redis_on_loopback

pytestmark = pytest.mark.integration


def test_the_broker_is_a_real_empty_redis_server_and_is_stopped_after(tmp_path: Path) -> None:
    import redis

    with redis_on_loopback(tmp_path / "redis") as url:
        client = redis.Redis.from_url(url, socket_timeout=5)
        assert client.dbsize() == 0
        assert client.info("server")["redis_version"]
        client.xadd("s", {"k": "v"})
        assert client.xlen("s") == 1
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()
