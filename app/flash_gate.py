"""The flash-sale gate: one Lua script in Redis decides a purchase attempt atomically.

It checks, in order: the buyer's rate, the sale window, the quantity against the per-buyer
limit, the buyer's count, the remaining units, and the pace of the winners' sagas; then takes
the units. Losers are answered from Redis alone.

Its state is a cache of SQL (quantity - admitted, per-buyer units), rebuilt from SQL whenever
Redis has lost it; SQL also caps admissions by itself, so a lost or stale gate can turn buyers
away wrongly for a moment but never oversell.

The pace: each winner's saga may start `1 / sagas_per_second` after the previous winner's (or
now, if that is past). A burst of winners thus runs its sagas at a steady rate rather than all
at once, so the load a sale puts on the workers and the database does not grow with its size
(figures in docs/benchmarks.md). A winner whose saga would wait longer than `max_wait_ms` is
turned away as `busy` before it takes a unit: load is shed so that the backlog stays bounded,
and the bound is measured where the backlog waits. The pace is not rebuilt after a Redis loss:
it restarts from now.

Keys (hash-tagged by sale, so a Redis Cluster keeps a sale's keys together):
    fs:{id}           hash: starts_ms, ends_ms, limit, remaining
    fs:{id}:buyers    hash: user id -> units held
    fs:{id}:restored  set: orders whose units were given back (so that happens once)
    fs:pace           string: when the next winner's saga may start (ms), across all sales
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

log = logging.getLogger(__name__)

# Outcomes of an attempt.
ADMITTED = "admitted"
SOLD_OUT = "sold-out"
LIMIT_EXCEEDED = "limit-exceeded"
NOT_ACTIVE = "not-active"
RATE_LIMITED = "rate-limited"
TOO_MANY = "too-many"  # more than per_user_limit in one purchase: a validation error
MISSING = "missing"  # the gate has no state for this sale: rebuild it from SQL
BUSY = "busy"  # the winners' sagas already wait longer than the bound: shed this one
TOKEN_UNKNOWN = "token-unknown"  # the buyer's token hash is not cached: check it in SQL, cache it
UNAUTHORIZED = "unauthorized"  # the token does not match the cached hash

PACE_KEY = "fs:pace"
MAX_WAIT_MS = 1500 * 1000  # the longest a winner's saga may wait for its turn

ADMIT = """
local sale = KEYS[1]
local buyers = KEYS[2]
local rate_key = KEYS[3]
local token_key = KEYS[4]
local pace = KEYS[5]
local now, user, qty, rate_limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local interval, max_wait = tonumber(ARGV[6]), tonumber(ARGV[7])
local cached = redis.call('GET', token_key)
if not cached then return 'token-unknown' end
if cached ~= ARGV[5] then return 'unauthorized' end
local rate = redis.call('INCR', rate_key)
if rate == 1 then redis.call('PEXPIRE', rate_key, 1000) end
if rate > rate_limit then return 'rate-limited' end
local s = redis.call('HMGET', sale, 'starts_ms', 'ends_ms', 'limit', 'remaining')
if not s[1] then return 'missing' end
if now < tonumber(s[1]) or now >= tonumber(s[2]) then return 'not-active' end
local limit = tonumber(s[3])
if qty > limit then return 'too-many' end
local held = tonumber(redis.call('HGET', buyers, user) or '0')
if held + qty > limit then return 'limit-exceeded' end
if tonumber(s[4]) < qty then return 'sold-out' end
local start = math.max(now, tonumber(redis.call('GET', pace) or '0'))
if start - now > max_wait then return 'busy' end
local after = start + interval
redis.call('SET', pace, string.format('%.3f', after), 'PX', math.ceil(after - now) + 1000)
redis.call('HINCRBY', sale, 'remaining', -qty)
redis.call('HINCRBY', buyers, user, qty)
return math.floor(start)
"""

# Give units back: once per order when `order` is given, unconditionally (an undo) when empty.
GIVE_BACK = """
local sale, buyers, restored = KEYS[1], KEYS[2], KEYS[3]
local user, qty, order = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if redis.call('EXISTS', sale) == 0 then return 0 end
if order ~= '' and redis.call('SADD', restored, order) == 0 then return 0 end
redis.call('HINCRBY', sale, 'remaining', qty)
local left = redis.call('HINCRBY', buyers, user, -qty)
if left <= 0 then redis.call('HDEL', buyers, user) end
return 1
"""


# An admission that SQL then refused gives its pace slot back, if nobody's saga has started in
# it yet: a database outage must not leave the pace full of slots that no saga uses.
PACE_BACK = """
local pace, now, interval = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local after = tonumber(redis.call('GET', pace) or '0') - interval
if after < now then return 0 end
redis.call('SET', pace, string.format('%.3f', after), 'PX', math.ceil(after - now) + 1000)
return 1
"""


@dataclass(frozen=True)
class SaleSnapshot:
    """What the gate needs of a sale, read from SQL."""

    sale_id: str
    starts_ms: int
    ends_ms: int
    per_user_limit: int
    remaining: int
    buyers: Mapping[str, int]
    given_back: tuple[str, ...] = ()


def token_key(user_id: str) -> str:
    return f"tok:{{{user_id}}}"


def _keys(sale_id: str) -> tuple[str, str, str]:
    base = f"fs:{{{sale_id}}}"
    return base, f"{base}:buyers", f"{base}:restored"


@dataclass(frozen=True)
class Attempt:
    """The gate's answer: an outcome, and for a winner when its saga may start (epoch ms)."""

    outcome: str
    start_ms: int = 0


class FlashGate:
    def __init__(
        self,
        client: redis.Redis[str],
        rate_per_second: int,
        sagas_per_second: int,
        max_waiting_sagas: int,
    ) -> None:
        self.client = client
        self.rate_per_second = rate_per_second
        self.interval_ms = 1000 / sagas_per_second
        # A buyer told 202 should get a payment link within minutes, not hours.
        self.max_wait_ms = min(max_waiting_sagas * self.interval_ms, MAX_WAIT_MS)
        self._admit_sha = hashlib.sha1(ADMIT.encode()).hexdigest()  # as Redis names the script
        self._give_back = client.register_script(GIVE_BACK)
        self._pace_back = client.register_script(PACE_BACK)

    def try_admit(self, sale_id: str, user_id: str, token_hash: str, quantity: int, now_ms: int) -> Attempt:
        """One round trip: the buyer's token (against its cached hash), rate, window, limits, pace."""
        sale, buyers, _ = _keys(sale_id)
        rate_key = f"fs:rate:{{{user_id}}}:{now_ms // 1000}"
        # The rate, token and pace keys live in other slots than the sale's keys: fine on one
        # Redis, which is what the service runs; a Cluster deployment would split this call.
        reply = self._evalsha_admit(
            [sale, buyers, rate_key, token_key(user_id), PACE_KEY],
            [
                now_ms,
                user_id,
                quantity,
                self.rate_per_second,
                token_hash,
                self.interval_ms,
                self.max_wait_ms,
            ],
        )
        if isinstance(reply, int):
            return Attempt(ADMITTED, reply)
        return Attempt(str(reply))

    def _evalsha_admit(self, keys: list[str], args: list[Any]) -> Any:
        """The ADMIT script, on a connection of the client's pool, without redis-py's
        per-command machinery (its retry wrapper, operation metrics and argument filtering):
        it costs a large share of an in-process refusal's CPU (docs/benchmarks.md).

        What a refusal needs of that machinery stays: the pool hands out a live connection (it
        replaces one that Redis closed), and a script that Redis lost (a restart, SCRIPT FLUSH)
        is loaded again. A call that fails midway is not retried: ADMIT takes units, so running
        it twice could admit a buyer twice; the buyer is answered 503 and retries."""
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            try:
                connection.send_command("EVALSHA", self._admit_sha, len(keys), *keys, *args)
                return connection.read_response()
            except redis.exceptions.NoScriptError:
                connection.send_command("SCRIPT", "LOAD", ADMIT)
                connection.read_response()
                connection.send_command("EVALSHA", self._admit_sha, len(keys), *keys, *args)
                return connection.read_response()
        finally:
            pool.release(connection)  # redis-py disconnects it first if a command failed on it

    def cache_token(self, user_id: str, token_hash: str, ttl_seconds: int = 24 * 3600) -> None:
        self.client.set(token_key(user_id), token_hash, ex=ttl_seconds)

    def undo(self, sale_id: str, user_id: str, quantity: int, now_ms: int) -> None:
        """The SQL write after an admission failed: give the units and the pace slot straight
        back."""
        self._give_back(keys=list(_keys(sale_id)), args=[user_id, quantity, ""])
        self._pace_back(keys=[PACE_KEY], args=[now_ms, self.interval_ms])

    def give_back(self, sale_id: str, order_id: str, user_id: str, quantity: int) -> bool:
        """A flash order was cancelled: its units return to the sale, once per order."""
        return bool(self._give_back(keys=list(_keys(sale_id)), args=[user_id, quantity, order_id]))

    def load(self, snapshot: SaleSnapshot) -> None:
        """Replace the gate's state for a sale with `snapshot` (taken from SQL)."""
        sale, buyers, restored = _keys(snapshot.sale_id)
        pipe: Any = self.client.pipeline(transaction=True)
        pipe.delete(sale, buyers, restored)
        if snapshot.buyers:
            pipe.hset(buyers, mapping={k: v for k, v in snapshot.buyers.items() if v > 0} or {"-": 0})
        if snapshot.given_back:
            pipe.sadd(restored, *snapshot.given_back)
        pipe.hset(
            sale,
            mapping={
                "starts_ms": snapshot.starts_ms,
                "ends_ms": snapshot.ends_ms,
                "limit": snapshot.per_user_limit,
                "remaining": snapshot.remaining,
            },
        )
        pipe.execute()

    def rebuild_lock(self, sale_id: str) -> bool:
        """One process rebuilds a lost gate; the others answer 503 for the moment it takes."""
        return bool(self.client.set(f"fs:{{{sale_id}}}:rebuilding", "1", nx=True, ex=10))

    def release_rebuild_lock(self, sale_id: str) -> None:
        self.client.delete(f"fs:{{{sale_id}}}:rebuilding")

    def remaining(self, sale_id: str) -> int | None:
        value = self.client.hget(_keys(sale_id)[0], "remaining")
        return None if value is None else int(value)
