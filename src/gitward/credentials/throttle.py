"""Guessing protection for account passwords that cannot be turned against their users.

Every attempt at an account password takes a place BEFORE the password is verified
(`PasswordGuard.reserve`), atomically across threads, processes and hosts, and gives it back
when the attempt succeeds (`release`): so however many guesses arrive at once, no more than
the limit are ever verified, and a right password costs nothing.

Three counters, each a fixed window of `window_seconds` (docs/accounts.md):

- per account and address, `pair_limit` (10): the limit a guesser meets first;
- per account from anywhere, `account_limit` (100): a ceiling for guessing spread over many
  addresses. It is much higher than the first, so that someone guessing from elsewhere
  locks out only their own address, not the account's owner;
- per address over every account, `address_limit` (100): one address trying a common
  password on many accounts.

Counters live in Redis when `GITWARD_REDIS_URL` is set, otherwise in SQL (storage/throttle.py).
Only account passwords are counted: tokens, app passwords and OAuth tokens are never
throttled, and keep working while the password is locked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gitward.storage.throttle import CounterState, SqlCounters

__all__ = [
    "AddressLimit",
    "Blocked",
    "CounterStore",
    "Limits",
    "LockState",
    "PasswordGuard",
    "RedisCounters",
    "Reservation",
    "SqlCounters",
]


@dataclass(frozen=True)
class Limits:
    pair: int = 10
    account: int = 100
    address: int = 100
    window_seconds: int = 600


@dataclass(frozen=True)
class Blocked:
    retry_after: int


@dataclass(frozen=True)
class Reservation:
    """The places one attempt took; handed back with `PasswordGuard.release`."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class LockState:
    """An account's standing with the guard, for administrators."""

    #: Attempts counted against the account from every address in the current window.
    failures: int
    #: Seconds until the account's ceiling lifts, if it is reached (None: it is not).
    locked_for: int | None


class CounterStore(Protocol):
    def reserve(self, limits: Sequence[tuple[str, int]], window: int) -> int | None: ...

    def release(self, keys: Sequence[str]) -> None: ...

    def clear(self, keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> int: ...

    def state(self, keys: Sequence[str], window: int) -> dict[str, CounterState]: ...


_RESERVE = """
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = 1 end
    return ttl
  end
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return 0
"""

_RELEASE = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisCounters:
    """The counters in Redis; each step is one Lua script, so it is atomic."""

    PREFIX = "gitward:auth-attempts:"

    def __init__(self, client: Any) -> None:
        self._client = client
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)

    def reserve(self, limits: Sequence[tuple[str, int]], window: int) -> int | None:
        keys = [self.PREFIX + key for key, _ in limits]
        wait = int(self._reserve(keys=keys, args=[window, *(limit for _, limit in limits)]))
        return wait or None

    def release(self, keys: Sequence[str]) -> None:
        self._release(keys=[self.PREFIX + key for key in keys], args=[])

    def clear(self, keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> int:
        names = [self.PREFIX + key for key in keys]
        for prefix in prefixes:
            pattern = _glob_escape(self.PREFIX + prefix) + "*"
            names.extend(self._client.scan_iter(match=pattern, count=500))
        return int(self._client.delete(*names)) if names else 0

    def state(self, keys: Sequence[str], window: int) -> dict[str, CounterState]:
        pipe = self._client.pipeline()
        for key in keys:
            pipe.get(self.PREFIX + key)
            pipe.ttl(self.PREFIX + key)
        values = pipe.execute()
        found: dict[str, CounterState] = {}
        for i, key in enumerate(keys):
            count, ttl = values[2 * i], values[2 * i + 1]
            if count is not None:
                found[key] = CounterState(int(count), max(int(ttl), 1))
        return found


class PasswordGuard:
    """Takes a place for every password attempt before it is verified; see the module."""

    def __init__(self, counters: CounterStore, limits: Limits | None = None) -> None:
        self.counters = counters
        self.limits = limits or Limits()

    @staticmethod
    def _account(username: str) -> str:
        return f"user:{username.lower()[:200]}"

    @staticmethod
    def _pair_prefix(username: str) -> str:
        return f"pair:{username.lower()[:200]}|"

    def _limits(self, username: str, client_ip: str | None) -> list[tuple[str, int]]:
        # NOTE: the order matters only for deadlocks: every attempt locks its keys pair
        # first, then account, then address, so no two attempts wait for each other.
        address = (client_ip or "-")[:64]
        limits = [
            (self._pair_prefix(username) + address, self.limits.pair),
            (self._account(username), self.limits.account),
        ]
        if client_ip:
            limits.append((f"ip:{address}", self.limits.address))
        return limits

    def reserve(self, username: str, client_ip: str | None) -> Reservation | Blocked:
        """A place for one attempt at `username`'s password from `client_ip`, or Blocked
        with the seconds to wait when a counter is full (nothing is counted then)."""
        limits = self._limits(username, client_ip)
        wait = self.counters.reserve(limits, self.limits.window_seconds)
        if wait is not None:
            return Blocked(wait)
        return Reservation(tuple(key for key, _ in limits))

    def check(self, username: str, client_ip: str | None) -> Blocked | None:
        """Blocked if a counter of this attempt is full, without counting it (for a
        password the server verified moments ago: not a guess, but still locked out)."""
        limits = self._limits(username, client_ip)
        found = self.counters.state([key for key, _ in limits], self.limits.window_seconds)
        waits = [
            found[key].retry_after
            for key, limit in limits
            if key in found and found[key].count >= limit
        ]
        return Blocked(max(waits)) if waits else None

    def release(self, reservation: Reservation) -> None:
        """The attempt was not a wrong guess (it succeeded, or failed for another reason)."""
        self.counters.release(reservation.keys)

    def unlock(self, username: str) -> int:
        """Forget every failed attempt at `username`, from every address (an administrator
        lifting a lock). Counters of addresses over all accounts are left as they are."""
        return self.counters.clear(
            keys=[self._account(username)], prefixes=[self._pair_prefix(username)]
        )

    def state(self, username: str) -> LockState:
        key = self._account(username)
        found = self.counters.state([key], self.limits.window_seconds).get(key)
        if found is None:
            return LockState(0, None)
        locked = found.retry_after if found.count >= self.limits.account else None
        return LockState(found.count, locked)


class AddressLimit:
    """Requests of one kind counted per client address in fixed windows, on the same
    counters as the guessing protection (Redis, or SQL: storage/throttle.py), under keys of
    their own (`<name>:<address>`), so that every process and host shares the count."""

    def __init__(self, counters: CounterStore, name: str, limit: int, window_seconds: int) -> None:
        self.counters = counters
        self.name = name
        self.limit = limit
        self.window_seconds = window_seconds

    def take(self, client_ip: str | None) -> Blocked | None:
        """Count one request from `client_ip`, or Blocked (not counted) when its address has
        had `limit` in the current window. Requests without an address share one count."""
        key = f"{self.name}:{(client_ip or '-')[:64]}"
        wait = self.counters.reserve([(key, self.limit)], self.window_seconds)
        return None if wait is None else Blocked(wait)
