"""The fair queue of waiters for one Redis lease (a shared world model), as two Lua scripts.

A resource's queue is a sorted set of node names scored by first arrival, in the server's time
(so the nodes' clocks do not matter), plus one waiter key per node that expires ENTRY_S after the
waiter last renewed it: a waiter that dies leaves the queue by itself. Scripts run atomically in
Redis, so dropping dead waiters from the head, checking that the caller is the head (or that no one
waits) and taking the lock is one step, and no node can take a freed model out of turn.

Keys: `<prefix>:queue:<resource>` (the set) and `<prefix>:waiter:<resource>:<node>` (the entries).
The waiter keys are built inside the scripts, so a Redis Cluster would need the resource's keys in
one hash slot (docs/scale.md); a single Redis, as used here, has no such limit.
"""

from __future__ import annotations

# Longer than waiting_for_lock's longest pause between polls (5 s, times its jitter, plus the
# polls themselves on a busy machine), so a live waiter never drops out between two polls.
ENTRY_S = 20.0

# KEYS: lock, queue. ARGV: lock token, lease ms, node, waiter-key prefix, join ('1': a blocking
# acquire that queues itself first), entry ms. Returns 1 when the lock was taken.
ADMIT = (
    "local head = nil "
    "if ARGV[5] == '1' then "
    "  redis.call('SET', ARGV[4] .. ARGV[3], '1', 'PX', ARGV[6]) "
    "  local t = redis.call('TIME') "
    "  redis.call('ZADD', KEYS[2], 'NX', t[1] * 1000000 + t[2], ARGV[3]) "
    "end "
    "while true do "
    "  local first = redis.call('ZRANGE', KEYS[2], 0, 0) "
    "  if #first == 0 then break end "
    "  if redis.call('EXISTS', ARGV[4] .. first[1]) == 1 then head = first[1] break end "
    "  redis.call('ZREM', KEYS[2], first[1]) "
    "end "
    "if head and head ~= ARGV[3] then return 0 end "
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
    "  redis.call('ZREM', KEYS[2], ARGV[3]) redis.call('DEL', ARGV[4] .. ARGV[3]) return 1 "
    "end "
    "return 0"
)

# KEYS: queue. ARGV: node, waiter-key prefix, entry ms. Joins at the tail (once), renews the
# node's entry, drops dead waiters; returns {place of the node from 1, live waiters}.
PLACE = (
    "redis.call('SET', ARGV[2] .. ARGV[1], '1', 'PX', ARGV[3]) "
    "local t = redis.call('TIME') "
    "redis.call('ZADD', KEYS[1], 'NX', t[1] * 1000000 + t[2], ARGV[1]) "
    "local place, alive = 0, 0 "
    "for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do "
    "  if redis.call('EXISTS', ARGV[2] .. m) == 1 then "
    "    alive = alive + 1 if m == ARGV[1] then place = alive end "
    "  else redis.call('ZREM', KEYS[1], m) end "
    "end "
    "return {place, alive}"
)
