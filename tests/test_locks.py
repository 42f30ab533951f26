import logging
import time
import uuid

import pytest

from ptzjepa.distributed.locks import LocalLocker, RedisLocker, fenced
from ptzjepa.storage.store import Store
from tests.redis_server import redis_server

PASSWORD = "redis-test-pw-7781"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis"), password=PASSWORD) as url:
        yield url


def test_redis_lease_is_exclusive_and_released(redis_url):
    a = RedisLocker(redis_url, "node-a", lease_s=5, password=PASSWORD, prefix=uuid.uuid4().hex)
    b = RedisLocker(redis_url, "node-b", lease_s=5, password=PASSWORD, prefix=a.prefix)
    lease = a.acquire("world_models/wm-0")
    assert lease is not None and b.holder("world_models/wm-0") == "node-a"
    assert b.acquire("world_models/wm-0") is None
    assert b.acquire("world_models/wm-1") is not None  # another model is free
    lease.release()
    second = b.acquire("world_models/wm-0", wait_s=1)
    assert second is not None and second.token > lease.token  # fencing tokens only grow
    second.release()


def test_redis_lease_renews_past_its_expiry(redis_url):
    a = RedisLocker(redis_url, "node-a", lease_s=0.6, password=PASSWORD, prefix=uuid.uuid4().hex)
    b = RedisLocker(redis_url, "node-b", lease_s=0.6, password=PASSWORD, prefix=a.prefix)
    with a.acquire("m") as lease:
        time.sleep(1.5)  # longer than the expiry: renewal must have kept it
        assert b.acquire("m") is None
        assert fenced(lease)


def test_lost_lease_is_detected_and_fenced(redis_url):
    a = RedisLocker(redis_url, "node-a", lease_s=0.6, password=PASSWORD, prefix=uuid.uuid4().hex)
    b = RedisLocker(redis_url, "node-b", lease_s=5, password=PASSWORD, prefix=a.prefix)
    lease = a.acquire("m")
    a.client.delete(f"{a.prefix}:lock:m")  # the lock vanishes (expiry during a long pause)
    newer = b.acquire("m")
    assert newer is not None
    deadline = time.time() + 3
    while time.time() < deadline and not lease.lost.is_set():
        time.sleep(0.05)
    assert lease.lost.is_set() and not fenced(lease) and fenced(newer)
    lease.release()  # releasing a lost lease must not free the new holder's lock
    assert a.holder("m") == "node-b"
    newer.release()


def test_waiting_acquire_gets_the_lock_when_freed(redis_url):
    a = RedisLocker(redis_url, "node-a", lease_s=5, password=PASSWORD, prefix=uuid.uuid4().hex)
    b = RedisLocker(redis_url, "node-b", lease_s=5, password=PASSWORD, prefix=a.prefix)
    lease = a.acquire("m")
    import threading

    threading.Timer(0.4, lease.release).start()
    began = time.monotonic()
    got = b.acquire("m", wait_s=5)
    assert got is not None and 0.3 < time.monotonic() - began < 5
    got.release()


def test_redis_password_is_not_logged(redis_url, caplog):
    caplog.set_level(logging.DEBUG)
    locker = RedisLocker(redis_url, "node-a", lease_s=1, password=PASSWORD, prefix=uuid.uuid4().hex)
    with locker.acquire("m"):
        pass
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_local_locker(kind, tmp_path):
    store = Store(str(tmp_path)) if kind == "local" else Store(f"memory://lk-{uuid.uuid4().hex}")
    a, b = LocalLocker(store, "one"), LocalLocker(store, "two")
    lease = a.acquire("world_models/wm-0")
    assert lease is not None and b.acquire("world_models/wm-0") is None
    assert b.holder("world_models/wm-0") == "one"
    lease.release()
    assert b.holder("world_models/wm-0") is None
    assert b.acquire("world_models/wm-0") is not None


def test_redis_tokens_stay_above_the_committed_floor_after_redis_lost_its_counter(redis_url):
    a = RedisLocker(redis_url, "node-a", lease_s=5, password=PASSWORD, prefix=uuid.uuid4().hex)
    with a.acquire("m") as first:
        assert first.token == 1
    a.client.delete(f"{a.prefix}:fence:m")  # a Redis restarted without its data
    with a.acquire("m", floor=7) as second:
        assert second.token == 8  # above what the store has committed
    with a.acquire("m", floor=3) as third:
        assert third.token == 9  # a lower floor never pulls the counter back


def test_local_tokens_stay_above_the_committed_floor(tmp_path):
    locker = LocalLocker(Store(str(tmp_path)), "node-a")
    with locker.acquire("m") as first:
        assert first.token == 1
    with locker.acquire("m", floor=5) as second:
        assert second.token == 6
    with locker.acquire("m") as third:
        assert third.token == 7


def test_redis_waiters_take_a_freed_model_in_arrival_order_and_a_late_comer_waits_its_turn(redis_url):
    prefix = uuid.uuid4().hex
    a, b, c, late = (RedisLocker(redis_url, n, lease_s=5, password=PASSWORD, prefix=prefix)
                     for n in ("node-a", "node-b", "node-c", "node-late"))
    held = a.acquire("wm")
    assert held is not None and a.queue_place("wm") == (1, 1)  # nobody else waits: a is alone in it
    a.leave_queues(["wm"])
    assert b.queue_place("wm") == (1, 1) and c.queue_place("wm") == (2, 2) and b.queue_place("wm") == (1, 2)
    held.release()
    assert c.acquire("wm") is None and late.acquire("wm") is None  # free, but b came first
    first = b.acquire("wm")
    assert first is not None and b.queue("wm") == ["node-c"]
    assert c.queue_place("wm") == (1, 1)  # b left the queue with its lease
    first.release()
    assert late.acquire("wm") is None  # a late comer who never queued does not jump ahead of c
    second = c.acquire("wm")
    assert second is not None and second.token > first.token and c.queue("wm") == []
    second.release()
    assert late.acquire("wm") is not None  # no one waits now: whoever comes takes it


def test_a_waiter_that_dies_leaves_the_queue_when_its_entry_expires(redis_url, monkeypatch):
    from ptzjepa.distributed import lock_queue

    monkeypatch.setattr(lock_queue, "ENTRY_S", 0.3)
    prefix = uuid.uuid4().hex
    dead, alive = (RedisLocker(redis_url, n, lease_s=5, password=PASSWORD, prefix=prefix) for n in ("dead", "alive"))
    assert dead.queue_place("wm") == (1, 1) and alive.queue_place("wm") == (2, 2)
    assert alive.acquire("wm") is None  # the first waiter's entry is live: its turn
    time.sleep(0.5)  # the first waiter renews no more (it died): its entry runs out
    lease = alive.acquire("wm")
    assert lease is not None and alive.queue("wm") == []
    lease.release()


def test_a_blocking_acquire_queues_itself_and_is_served_in_turn(redis_url):
    prefix = uuid.uuid4().hex
    a, b = (RedisLocker(redis_url, n, lease_s=5, password=PASSWORD, prefix=prefix) for n in ("node-a", "node-b"))
    held = a.acquire("wm")
    assert held is not None
    assert b.acquire("wm", wait_s=0.5) is None  # it waited, in the queue, while a held the model
    assert b.queue("wm") == ["node-b"]
    b.leave_queues(["wm"])
    held.release()


def test_waiting_for_lock_shows_the_nodes_place_in_each_queue_and_leaves_them_when_it_gives_up(redis_url, monkeypatch):
    from ptzjepa.config.loading import load_config
    from ptzjepa.node.context import Node
    from ptzjepa.stages.wait_for_lock import wait_for_lock
    from ptzjepa.view.status import NodeStatus

    prefix = uuid.uuid4().hex
    monkeypatch.setenv("PTZJEPA_REDIS_PASSWORD", PASSWORD)
    config = load_config("tiny", ["run.node=cam-b", "locks.kind=redis", f"locks.redis_url={redis_url}",
                                  "locks.wait_s=0.3", "world_model.population=1"])
    node = Node(config=config, store=Store(f"memory://queue-{prefix}"))
    node._locker = RedisLocker(redis_url, "cam-b", lease_s=5, password=PASSWORD, prefix=prefix)
    holder = RedisLocker(redis_url, "cam-a", lease_s=5, password=PASSWORD, prefix=prefix)
    ahead = RedisLocker(redis_url, "cam-first", lease_s=5, password=PASSWORD, prefix=prefix)
    lease = holder.acquire("world_models/wm-0")
    assert lease is not None and ahead.queue_place("world_models/wm-0") == (1, 1)
    status = NodeStatus()
    node.events.subscribe(status)
    assert wait_for_lock(node) == "timeout"
    snap = status.snapshot()
    assert "held by cam-a" in snap["locks"]["world_models/wm-0"]
    assert "place 2 of 2 in its queue" in snap["locks"]["world_models/wm-0"]
    assert snap["queue"] == {"world_models/wm-0": {"place": 2, "waiting": 2}}
    assert node._locker.queue("world_models/wm-0") == ["cam-first"]  # it gave up: out of the queue
    lease.release()
