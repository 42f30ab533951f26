import subprocess
import sys
import textwrap
import uuid

import pytest

from ptzjepa.storage.runlock import LEASE_FILE, RunLock, RunLockedError
from ptzjepa.storage.store import Store
from tests.conftest import REPO


def test_local_lock_refuses_a_second_process(tmp_path):
    store = Store(str(tmp_path))
    with RunLock(store):
        probe = textwrap.dedent(
            f"""
            import sys; sys.path.insert(0, {str(REPO)!r})
            from ptzjepa.storage.runlock import RunLock, RunLockedError
            from ptzjepa.storage.store import Store
            try:
                RunLock(Store({str(tmp_path)!r})).acquire()
            except RunLockedError as e:
                print("REFUSED", e)
            """
        )
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30).stdout
        assert out.startswith("REFUSED another run is using") and "pid" in out
    RunLock(store).acquire()  # free again once released


def test_memory_lock_in_process():
    store = Store(f"memory://lock-{uuid.uuid4().hex}")
    with RunLock(store):
        with pytest.raises(RunLockedError):
            RunLock(store).acquire()
    with RunLock(store):
        pass


def test_lease_lock_expires_and_refuses_while_fresh():
    store = Store(f"memory://lease-{uuid.uuid4().hex}")
    store.protocol = "remote-test"  # a memory store taken for a remote one: the lease path, no server
    first = RunLock(store, lease_s=30)
    first.acquire()
    with pytest.raises(RunLockedError, match="its lease expires"):
        RunLock(store, lease_s=30).acquire()
    first.release()
    assert not store.exists(LEASE_FILE)
    store.write_json(LEASE_FILE, {"host": "dead", "pid": 1, "expires": 0})  # a dead holder's lease
    late = RunLock(store, lease_s=30)
    late.acquire()
    late.release()
