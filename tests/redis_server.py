"""Starts a real redis-server (Debian's package) on a free loopback port for lock tests."""

from ptzjepa.distributed.redis_server import RedisServer, redis_server

__all__ = ["RedisServer", "redis_server"]
