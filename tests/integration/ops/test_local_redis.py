"""ops/local_redis.py: a real, empty redis-server on loopback that is gone after the block, and a clear error
naming the install command when there is no redis-server at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.local_redis import RedisNotInstalledError, redis_on_loopback
from tests.system_tools import system_tool

pytestmark = pytest.mark.integration


def test_the_broker_is_a_real_empty_redis_server_and_is_stopped_after(tmp_path: Path) -> None:
    import redis

    with redis_on_loopback(tmp_path / "redis", system_tool("redis-server")) as url:
        client = redis.Redis.from_url(url, socket_timeout=5)
        assert client.dbsize() == 0
        assert client.info("server")["redis_version"]
        client.xadd("s", {"k": "v"})
        assert client.xlen("s") == 1
    with pytest.raises(redis.exceptions.ConnectionError):
        client.ping()


def test_without_redis_server_on_path_the_error_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no redis-server anywhere
    with (
        pytest.raises(RedisNotInstalledError, match=r"apt-get install .*redis-server"),
        redis_on_loopback(tmp_path / "redis"),
    ):
        pass
    assert not (tmp_path / "redis").exists(), "nothing is started or created before the binary is found"
