"""Checks made once at start, before any camera move: the services a run shares with other nodes
answer and take our credentials. A wrong password or an address where nothing answers is a
setting to fix, reported as one line naming it (exit 2), not a failure found cycles later."""

from __future__ import annotations

from ptzjepa.config import Config
from ptzjepa.config_loading import ConfigError
from ptzjepa.locks import LockerRefused, LockerUnavailable, RedisLocker


def check_services(config: Config) -> None:
    """Raises ConfigError naming the setting when a shared service refuses us or is out of reach."""
    locks = config.locks
    if locks.kind == "redis":
        locker = RedisLocker(locks.redis_url, "preflight", locks.lease_s, locks.password())
        try:
            locker.check()
        except LockerRefused as exc:
            source = f"{locks.password_env}" + (f" or {locks.password_file}" if locks.password_file else "")
            raise ConfigError(f"locks.redis_url: {exc} (the password comes from {source})") from None
        except LockerUnavailable as exc:
            raise ConfigError(f"locks.redis_url: {exc}") from None
        finally:
            locker.client.close()
