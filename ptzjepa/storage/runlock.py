"""One run per data folder: a second `run` on the same --data refuses instead of interleaving writes.

On local disk the lock is an OS file lock (fcntl.flock), which the kernel drops when the process
dies, even by SIGKILL, so a killed run never blocks its own restart. On memory:// stores it is a
process-wide set. On remote stores (SFTP, S3) it is a lease file renewed by a heartbeat thread; a
holder that dies stops renewing and its lease expires after `lease_s`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import time
import uuid
from typing import Any

import attrs

from ptzjepa.storage.damage import move_aside
from ptzjepa.storage.store import Store, StoreError

LOCK_NAME = ".run.lock"
LEASE_FILE = "state/run.lease"
_memory_held: set[str] = set()
_memory_guard = threading.Lock()


class RunLockedError(RuntimeError):
    """Another run holds the data folder."""


def _owner() -> dict[str, object]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


class RunLock:
    def __init__(self, store: Store, lease_s: float = 60.0) -> None:
        self.store = store
        self.lease_s = lease_s
        self._fd: int | None = None
        self._token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        if self.store.is_local:
            self._acquire_flock()
        elif self.store.protocol == "memory":
            with _memory_guard:
                if self.store.url in _memory_held:
                    raise RunLockedError(f"another run in this process is using {self.store.url}")
                _memory_held.add(self.store.url)
        else:
            self._acquire_lease()
        self._held = True

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        elif self.store.protocol == "memory":
            with _memory_guard:
                _memory_held.discard(self.store.url)
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
            try:
                lease = self.store.read_json(LEASE_FILE, default=None)
            except StoreError:  # damaged since: not ours to remove
                lease = None
            if isinstance(lease, dict) and lease.get("token") == self._token:
                self.store.delete(LEASE_FILE)

    # --- local -----------------------------------------------------------------------------

    def _acquire_flock(self) -> None:
        import fcntl

        path = self.store.local_path(LOCK_NAME)
        assert path is not None
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
            os.close(fd)
            raise RunLockedError(f"another run is using {self.store.url} ({_describe(holder)})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_owner()).encode(), 0)
        self._fd = fd

    # --- remote ----------------------------------------------------------------------------

    def _read_lease(self) -> dict | None:
        """The lease file; a damaged one counts as held until no heartbeat could have missed it
        for `lease_s`, then it is moved aside (docs/resilience.md)."""
        try:
            lease = self.store.read_json(LEASE_FILE, default=None)
            if lease is None or (isinstance(lease, dict) and isinstance(lease.get("expires"), (int, float))):
                return lease
        except StoreError:
            pass
        written = self.store.modified(LEASE_FILE)
        if time.time() - written < self.lease_s:
            return {"expires": written + self.lease_s, "holder": "unknown: its lease file is damaged"}
        move_aside(self.store, LEASE_FILE, "not a lease", f"no run has rewritten it for {self.lease_s:.0f} s, "
                   "so this run takes the folder")
        return None

    def _acquire_lease(self) -> None:
        lease = self._read_lease()
        if isinstance(lease, dict) and float(lease.get("expires", 0)) > time.time():
            raise RunLockedError(
                f"another run is using {self.store.url} ({_describe(json.dumps(lease))}); "
                f"its lease expires within {self.lease_s:.0f} s if that run is dead"
            )
        self._write_lease()
        self._thread = threading.Thread(target=self._heartbeat, name="run-lease", daemon=True)
        self._thread.start()

    def _write_lease(self) -> None:
        self.store.write_json(
            LEASE_FILE, {**_owner(), "token": self._token, "expires": time.time() + self.lease_s}
        )

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                self._write_lease()
            except Exception:  # a transient storage error: the next beat tries again
                continue


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        if "holder" in info:
            return str(info["holder"])
        return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
    except ValueError:
        return "holder unknown"


@attrs.frozen
class RunHolder:
    """Whether a run holds a data folder now (None: this store cannot tell), and who held it last."""

    alive: bool | None
    holder: dict[str, Any]


def run_holder(store: Store) -> RunHolder:
    """Tell a live run from a dead one without disturbing either: a killed run's OS lock is gone
    (the kernel drops it), a remote run's lease stops being renewed. Only reads."""
    if store.is_local:
        path = store.local_path(LOCK_NAME)
        assert path is not None
        try:
            with open(path, "rb") as handle:
                raw = handle.read(4096).decode(errors="replace")
                alive = _flock_held(handle.fileno())
        except FileNotFoundError:
            return RunHolder(False, {})
        except OSError:
            return RunHolder(None, {})
        return RunHolder(alive, _parse(raw))
    if store.protocol == "memory":
        with _memory_guard:
            return RunHolder(store.url in _memory_held, {})
    try:
        lease = store.read_json(LEASE_FILE, default=None)
    except Exception:  # an unreadable lease (damaged, or the store is unreachable): cannot tell
        return RunHolder(None, {})
    if not isinstance(lease, dict):
        return RunHolder(False, {})
    expires = lease.get("expires")
    alive = isinstance(expires, (int, float)) and expires > time.time()
    return RunHolder(alive, {k: v for k, v in lease.items() if k != "token"})


def _flock_held(fd: int) -> bool:
    """Whether any process holds an flock on the open file: from /proc/locks where Linux has it
    (reading it takes no lock, so it can never make a starting run think the folder is taken),
    else by a shared-lock probe released at once."""
    import fcntl

    info = os.fstat(fd)
    ident = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks") as handle:
            return any(line.split()[1:2] == ["FLOCK"] and ident in line.split() for line in handle)
    except OSError:
        pass
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _parse(holder: str) -> dict[str, Any]:
    try:
        info = json.loads(holder)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}
