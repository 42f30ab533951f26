import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ptzjepa.storage.store import Store, StoreError
from tests.conftest import REPO


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    if request.param == "local":
        return Store(str(tmp_path / "data"))
    import uuid

    return Store(f"memory://test-{uuid.uuid4().hex}")


def test_round_trip_and_listing(store):
    store.write_bytes("a/x.bin", b"123")
    store.write_json("a/y.json", {"k": 1})
    store.write_text("b/z.txt", "hi")
    assert store.read_bytes("a/x.bin") == b"123"
    assert store.read_json("a/y.json") == {"k": 1}
    assert store.list("a") == ["x.bin", "y.json"]
    assert store.list("a", ".json") == ["y.json"]
    assert store.list("missing") == []
    assert store.read_json("nope.json", default=None) is None
    with pytest.raises(StoreError, match="nope.json: no such file"):
        store.read_bytes("nope.json")
    assert store.disk_usage() == 3 + len(store.read_bytes("a/y.json")) + 2


def test_overwrite_is_whole(store):
    store.write_bytes("f", b"old")
    store.write_bytes("f", b"new-content")
    assert store.read_bytes("f") == b"new-content"


def test_names_cannot_leave_the_store(store):
    with pytest.raises(StoreError, match="leaves the store"):
        store.path("../etc/passwd")


def test_killed_writer_leaves_no_partial_file(tmp_path):
    """A writer SIGKILLed mid-write leaves each name either absent or complete; leftovers are hidden."""
    root = tmp_path / "data"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from ptzjepa.storage.store import Store
        s = Store({str(root)!r})
        payload = bytes(range(256)) * 40000  # 10 MB: large enough to be caught mid-write
        i = 0
        while True:
            s.write_bytes(f"blobs/{{i % 5}}.bin", payload)
            i += 1
            print(i, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline()  # at least one write done
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(str(root))
    expected = bytes(range(256)) * 40000
    names = store.list("blobs")
    assert names
    for name in names:
        assert store.read_bytes(f"blobs/{name}") == expected
    hidden = [n for n in os.listdir(root / "blobs") if n.startswith(".")]
    assert store.sweep_temp_files(older_than_s=0) == len(hidden)
    assert [n for n in os.listdir(root / "blobs") if n.startswith(".")] == []


def test_sweep_skips_shared_folders_and_keeps_fresh_temp_files(tmp_path):
    """World models may be shared with live writers on other nodes: a start-up sweep must not take
    their temporary files, while a dead writer's in the node's own folders goes."""
    store = Store(str(tmp_path))
    for folder in ("collected_imgs", "world_models/wm-0", "world_models_extra"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / ".x.tmp-123").write_bytes(b"partial")
    assert store.sweep_temp_files(older_than_s=0, shared=("world_models",)) == 2
    assert (tmp_path / "world_models/wm-0/.x.tmp-123").exists()  # fresh: a live writer's, kept
    assert not (tmp_path / "world_models_extra/.x.tmp-123").exists()  # a prefix is not the folder
    stale = time.time() - 2 * 3600
    os.utime(tmp_path / "world_models/wm-0/.x.tmp-123", (stale, stale))
    assert store.sweep_temp_files(older_than_s=0, shared=("world_models",)) == 1
