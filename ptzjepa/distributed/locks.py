"""Leases on shared models: which node may write a world model right now.

A Lease renews itself on a background thread while held, carries a fencing token that grows with
every grant of the resource, and is released on exit even on error. A writer checks `fenced(lease)`
before it commits a shared file; the store then refuses the commit if a newer token has committed
since (ptzjepa.storage.checkpoints), so even a writer paused between its check and its write (a long GC,
SIGSTOP) never overwrites a model another node now holds (docs/distributed.md).

Two lockers: LocalLocker (one machine: OS file locks in the data folder, or in-process for memory
stores) and RedisLocker (several nodes: SET NX PX in one command, so no lock is left without an
expiry; redis-py's Lock does the owner check on extend and release; INCR gives fencing tokens).

Redis out of reach is not an error of the run: RedisLocker raises LockerUnavailable, which the
stages treat as "no model free now" (the node waits in waiting_for_lock and retries), and a lease
whose renewal could not reach Redis counts as lost, so its commit is refused.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from typing import Protocol

from ptzjepa.distributed import lock_queue
from ptzjepa.storage.store import Store

log = logging.getLogger(__name__)


class LockerUnavailable(RuntimeError):
    """The lock service cannot be reached now; the message says where and why."""


class LockerRefused(RuntimeError):
    """The lock service answered but refused us (a wrong password): retrying will not help."""


class Lease:
    """A held lock. Use as a context manager; `lost` is set when a renewal finds it taken away."""

    def __init__(self, resource: str, token: int, renew, release, period_s: float) -> None:
        self.resource = resource
        self.token = token
        self.lost = threading.Event()
        self._renew = renew
        self._release = release
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(period_s,), name=f"lease-{resource}", daemon=True)
        self._thread.start()

    def _beat(self, period_s: float) -> None:
        while not self._stop.wait(period_s):
            try:
                renewed = self._renew()
            except Exception as exc:  # another node may take it once it expires: count it as lost now
                log.warning("event=lock_lost resource=%s token=%d reason=%s", self.resource, self.token,
                            str(exc).replace(" ", "_")[:120])
                self.lost.set()
                return
            if not renewed:
                log.warning("event=lock_lost resource=%s token=%d", self.resource, self.token)
                self.lost.set()
                return

    def still_valid(self) -> bool:
        return not self.lost.is_set() and not self._stop.is_set()

    def release(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self._release()
        except Exception as exc:
            log.warning("releasing lock %s failed (%s); it will expire on its own", self.resource, exc)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Locker(Protocol):
    def acquire(self, resource: str, wait_s: float = 0.0, floor: int = 0) -> Lease | None:
        """A lease on the resource, waiting up to wait_s for it; None if it stayed taken. Its token
        is above `floor` (the newest token the store has committed for the resource)."""
        ...

    def holder(self, resource: str) -> str | None:
        """Who holds the resource now (a node name), or None if it is free."""
        ...

    def holder_info(self, resource: str) -> dict | None:
        """Who holds the resource, since when (epoch seconds) and under which token; None if free."""
        ...

    def queue_place(self, resource: str) -> tuple[int, int]:
        """Join (or stay in) the resource's queue of waiters; (this node's place from 1, waiters).
        (0, 0) where the locker keeps no queue."""
        ...

    def leave_queues(self, resources: list[str]) -> None:
        """Stop waiting for these resources (a lease was taken, or the node gave up)."""
        ...


_POLL_S = 0.2
HISTORY_LEN = 200


def _parse_holder(text: str) -> dict:
    """A holder record ({"node", "since", "token"}); a bare node name from an older writer."""
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    if isinstance(record, dict) and "node" in record:
        return {"node": str(record["node"]), "since": float(record.get("since", 0)),
                "token": int(record.get("token", 0))}
    return {"node": text.strip() or "another process", "since": 0.0, "token": 0}


class LocalLocker:
    """One machine: OS file locks under the data folder (or in-process locks for memory://)."""

    _memory: dict[str, dict] = {}
    _memory_tokens: dict[str, int] = {}
    _memory_guard = threading.Lock()

    def __init__(self, store: Store, node: str) -> None:
        self.store = store
        self.node = node

    def acquire(self, resource: str, wait_s: float = 0.0, floor: int = 0) -> Lease | None:
        deadline = time.monotonic() + wait_s
        while True:
            lease = self._try(resource, floor)
            if lease is not None or time.monotonic() >= deadline:
                return lease
            time.sleep(_POLL_S)

    def holder(self, resource: str) -> str | None:
        info = self.holder_info(resource)
        return None if info is None else info["node"]

    def holder_info(self, resource: str) -> dict | None:
        if self.store.is_local:
            path = self._path(resource)
            probe = self._try_flock(path)
            if probe is None:
                try:
                    with open(path) as handle:
                        return _parse_holder(handle.read())
                except OSError:
                    return {"node": "another process", "since": 0.0, "token": 0}
            self._unflock(probe)
            return None
        with self._memory_guard:
            held = self._memory.get(self._key(resource))
            return None if held is None else dict(held)

    def queue_place(self, resource: str) -> tuple[int, int]:
        return 0, 0  # one machine: the OS lock is the only contention, no queue is kept

    def leave_queues(self, resources: list[str]) -> None:
        return None

    def _key(self, resource: str) -> str:
        return f"{self.store.url}#{resource}"

    def _path(self, resource: str) -> str:
        folder = self.store.local_path(".locks")
        assert folder is not None
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, resource.replace("/", "_") + ".lock")

    def _try(self, resource: str, floor: int = 0) -> Lease | None:
        if self.store.is_local:
            path = self._path(resource)
            fd = self._try_flock(path)
            if fd is None:
                return None
            token = self._next_token(path + ".fence", floor)  # under the flock: one grant at a time
            record = json.dumps({"node": self.node, "since": time.time(), "token": token})
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode(), 0)
            return Lease(resource, token, lambda: True, lambda: self._unflock(fd), 3600)
        key = self._key(resource)
        with self._memory_guard:
            if key in self._memory:
                return None
            token = max(self._memory_tokens.get(key, 0), floor) + 1
            self._memory_tokens[key] = token
            self._memory[key] = {"node": self.node, "since": time.time(), "token": token}

        def release() -> None:
            with self._memory_guard:
                self._memory.pop(key, None)

        return Lease(resource, token, lambda: True, release, 3600)

    @staticmethod
    def _next_token(path: str, floor: int = 0) -> int:
        """The resource's fencing token, one more than the last grant's, kept beside its lock file
        so that it grows across processes and restarts (the store's fence compares them)."""
        try:
            with open(path) as handle:
                last = int(handle.read().strip() or 0)
        except (OSError, ValueError):
            last = 0
        last = max(last, floor)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "w") as handle:
            handle.write(str(last + 1))
        os.replace(tmp, path)
        return last + 1

    @staticmethod
    def _try_flock(path: str) -> int | None:
        import fcntl

        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @staticmethod
    def _unflock(fd: int) -> None:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class RedisLocker:
    """Several nodes: leases in Redis with an expiry, renewed while held, with fencing tokens."""

    def __init__(self, url: str, node: str, lease_s: float = 60.0, password: str = "", prefix: str = "ptzjepa") -> None:
        import redis

        self.client = redis.Redis.from_url(url, password=password or None, socket_timeout=5,
                                           socket_connect_timeout=5)
        self.node = node
        self.lease_s = lease_s
        self.prefix = prefix
        # INCR, raised above the floor in the same step (a script runs atomically in Redis).
        self._next_token = self.client.register_script(
            "local t = redis.call('INCR', KEYS[1]) "
            "if t <= tonumber(ARGV[1]) then t = tonumber(ARGV[1]) + 1 redis.call('SET', KEYS[1], t) end "
            "return t")
        self._admit = self.client.register_script(lock_queue.ADMIT)
        self._place = self.client.register_script(lock_queue.PLACE)
        kwargs = self.client.connection_pool.connection_kwargs
        self.where = f"{kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}".rstrip(":")

    def check(self) -> None:
        """Fail fast at start: LockerRefused for a wrong or missing password, LockerUnavailable if
        nothing answers."""
        import redis

        try:
            self.client.ping()
        except redis.AuthenticationError as exc:
            raise LockerRefused(f"redis at {self.where} refused the password: {exc}") from None
        except redis.ResponseError as exc:  # NOAUTH: the server wants a password we do not have
            raise LockerRefused(f"redis at {self.where} refused us: {exc}") from None
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise LockerUnavailable(f"redis at {self.where} unreachable: {exc}") from None

    def _unavailable(self, exc: Exception) -> LockerUnavailable:
        return LockerUnavailable(f"redis at {self.where} unreachable: {exc}")

    def _lock_name(self, resource: str) -> str:
        return f"{self.prefix}:lock:{resource}"

    def holder(self, resource: str) -> str | None:
        info = self.holder_info(resource)
        return None if info is None else info["node"]

    def holder_info(self, resource: str) -> dict | None:
        import redis

        try:
            value = self.client.get(f"{self.prefix}:holder:{resource}")
            if value is None or not self.client.exists(self._lock_name(resource)):
                return None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise self._unavailable(exc) from None
        return _parse_holder(value.decode())

    def _queue_keys(self, resource: str) -> tuple[str, str]:
        """The resource's queue and the prefix of its waiters' keys (the node name follows)."""
        return f"{self.prefix}:queue:{resource}", f"{self.prefix}:waiter:{resource}:"

    def queue_place(self, resource: str) -> tuple[int, int]:
        """Join the resource's queue (at the tail, if not in it yet) and renew this node's entry,
        which expires lock_queue.ENTRY_S after the last renewal (a waiter that died leaves the queue)."""
        import redis

        queue, waiters = self._queue_keys(resource)
        try:
            place, alive = self._place(keys=[queue], args=[self.node, waiters, int(lock_queue.ENTRY_S * 1000)])
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise self._unavailable(exc) from None
        return int(place), int(alive)

    def queue(self, resource: str) -> list[str]:
        """The live waiters for a resource, in arrival order (for status and tests)."""
        queue, waiters = self._queue_keys(resource)
        names = [m.decode() for m in self.client.zrange(queue, 0, -1)]
        return [n for n in names if self.client.exists(waiters + n)]

    def leave_queues(self, resources: list[str]) -> None:
        import redis

        pipe = self.client.pipeline()
        for resource in resources:
            queue, waiters = self._queue_keys(resource)
            pipe.zrem(queue, self.node)
            pipe.delete(waiters + self.node)
        try:
            pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # the entries expire on their own
            log.warning("event=queue_leave_failed reason=%s", str(exc).replace(" ", "_")[:120])

    def history(self, resource: str) -> list[dict]:
        """The resource's recent grants and releases, oldest first (see `_record`)."""
        raw = self.client.lrange(f"{self.prefix}:history:{resource}", 0, -1)
        return [json.loads(item) for item in reversed(raw)]

    def _record(self, resource: str, event: str, token: int) -> None:
        """Append to the resource's lease history in Redis (the newest HISTORY_LEN entries): who
        was granted or gave back which token when, for `status` and the contention tests."""
        key = f"{self.prefix}:history:{resource}"
        entry = json.dumps({"event": event, "node": self.node, "token": token, "t": time.time()})
        pipe = self.client.pipeline()
        pipe.lpush(key, entry)
        pipe.ltrim(key, 0, HISTORY_LEN - 1)
        pipe.execute()

    def acquire(self, resource: str, wait_s: float = 0.0, floor: int = 0) -> Lease | None:
        """Raises LockerUnavailable when Redis cannot be reached (a lock taken just before the
        connection broke is left to expire). `floor`: the newest fencing token the store has
        committed for the resource; the grant's token is above it even if Redis lost its counter
        (a server restarted without its data), so that the store's fence never refuses every
        writer from then on."""
        import redis

        try:
            return self._acquire(resource, wait_s, floor)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise self._unavailable(exc) from None

    def _acquire(self, resource: str, wait_s: float, floor: int) -> Lease | None:
        import redis.lock
        queue, waiters = self._queue_keys(resource)
        join = "1" if wait_s > 0 else "0"  # a blocking acquire waits its turn in the queue

        class QueuedLock(redis.lock.Lock):
            def do_acquire(inner, token: str) -> bool:  # noqa: N805 - redis-py's Lock hook
                return bool(self._admit(keys=[inner.name, queue], args=[
                    token, int(self.lease_s * 1000), self.node, waiters, join, int(lock_queue.ENTRY_S * 1000)]))

        lock = self.client.lock(
            self._lock_name(resource), timeout=self.lease_s, blocking=wait_s > 0,
            blocking_timeout=wait_s if wait_s > 0 else None, sleep=_POLL_S, thread_local=False,
            lock_class=QueuedLock,
        )
        if not lock.acquire(token=f"{self.node}:{uuid.uuid4().hex}"):
            return None
        token = int(self._next_token(keys=[f"{self.prefix}:fence:{resource}"], args=[int(floor)]))
        holder = json.dumps({"node": self.node, "since": time.time(), "token": token})
        self.client.set(f"{self.prefix}:holder:{resource}", holder, px=int(self.lease_s * 1000))
        self._record(resource, "acquired", token)

        def renew() -> bool:
            if not lock.owned():
                return False
            lock.reacquire()
            self.client.set(f"{self.prefix}:holder:{resource}", holder, px=int(self.lease_s * 1000))
            return True

        def release() -> None:
            if lock.owned():
                # recorded while still held, so the history's spans never overlap the next grant's
                self._record(resource, "released", token)
                self.client.delete(f"{self.prefix}:holder:{resource}")
                lock.release()

        lease = Lease(resource, token, renew, release, self.lease_s / 3)
        lease.newest_token = lambda: int(self.client.get(f"{self.prefix}:fence:{resource}") or 0)  # type: ignore[attr-defined]
        return lease


def fenced(lease: Lease | None) -> bool:
    """True when a write under this lease may commit: it is held and no newer grant exists."""
    if lease is None:
        return True
    if not lease.still_valid():
        return False
    newest = getattr(lease, "newest_token", None)
    if newest is None:
        return True
    try:
        return newest() == lease.token
    except Exception as exc:  # the lock service is out of reach: a newer grant cannot be ruled out
        log.warning("event=fence_unchecked resource=%s token=%d reason=%s", lease.resource, lease.token,
                    str(exc).replace(" ", "_")[:120])
        return False
