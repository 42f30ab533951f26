"""Checks made once at start, before any camera move: the services a run shares with other nodes
answer and take our credentials. A wrong password or an address where nothing answers is a
setting to fix, reported as one line naming it (exit 2), not a failure found cycles later."""

from __future__ import annotations

from ptzjepa.config.loading import ConfigError
from ptzjepa.config.settings import Config, StorageConfig
from ptzjepa.distributed.locks import LockerRefused, LockerUnavailable, RedisLocker
from ptzjepa.logs import redact_url

# A probe, not the run's own client: one attempt with a short connect timeout, so a wrong endpoint
# is reported in seconds rather than after botocore's retries.
_S3_PROBE = {"connect_timeout": 5, "read_timeout": 15, "retries": {"max_attempts": 1}}


def check_services(config: Config) -> None:
    """Raises ConfigError naming the setting when a shared service refuses us or is out of reach."""
    _check_shared_store(config.storage)
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


def _check_shared_store(storage: StorageConfig) -> None:
    """The shared store (storage.shared) answers and lets us list it."""
    from ptzjepa.distributed.shared_store import storage_options
    from ptzjepa.storage.store import Store

    if not storage.shared:
        return
    url = storage.shared_url()
    options = storage_options(url, storage)
    s3 = url.split("://")[0] in ("s3", "s3a")
    if s3:
        options["config_kwargs"] = dict(_S3_PROBE)
    setting, where = ("storage.s3_endpoint", storage.s3_endpoint) if s3 and storage.s3_endpoint else (
        "storage.shared", redact_url(url))
    try:
        Store(url, create=False, **options).is_folder()
    except Exception as exc:  # any failure to reach or list it: botocore, asyncssh, OS errors
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"{setting}: the shared store at {where} cannot be reached or read: "
                          f"{type(exc).__name__}: {reason}") from None
