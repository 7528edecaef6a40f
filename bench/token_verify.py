"""Cost of verifying a personal access token, in process (no HTTP).

(a) cached, on SQLite. Three figures, each a median over many calls:
    - cache-hit path: codec checksum + HMAC-SHA256 keyed hash + CredentialCache lookup;
    - authenticate(), session already in a transaction: adds the one statement read on every
      request (the owner's standing, so that deactivation is seen at once, together with the
      credential generation that says whether the cached entry is still valid) and the
      AuthContext;
    - authenticate() as a request's first statement: also checks out a connection and BEGINs,
      which every request (anonymous included) pays once anyway.
    Target: verifying a cached token <= 20 us.

(b) uncached (the cache is cleared before each call: one indexed query by hash), on
    PostgreSQL, with 1,000 and with 1,000,000 token rows, in two databases measured interleaved.
    Target: the 1,000,000 median within 10% of the 1,000 median.

    PYTHONPATH=src python bench/token_verify.py            # (a) and (b)
    PYTHONPATH=src python bench/token_verify.py --skip-postgres
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from gitward.config import Settings
from gitward.credentials import codec
from gitward.credentials.registry import Presented
from gitward.domain.identity import AuthContext, CredentialKind, UserPrincipal
from gitward.runtime import Runtime
from gitward.services.caller import Caller
from gitward.services.personal_tokens import create_token
from gitward.services.users import create_user
from gitward.storage.database import migrate

PG = "postgresql://postgres@127.0.0.1:5432/{db}"
PG_DBS = {1_000: "gitward_bench_verify_1k", 1_000_000: "gitward_bench_verify_1m"}
CACHED_TARGET_US = 20.0
SIZE_TARGET = 1.10
#: Tokens whose secrets we know, spread among the filler rows; requests pick among them.
KNOWN_TOKENS = 500


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", sql],
        check=True,
        capture_output=True,
    )


def settings_for(data: Path, database_url: str | None = None) -> Settings:
    # Cheap argon2 only to create the one account quickly; passwords are not measured here.
    return Settings(data_dir=data, database_url=database_url, argon2_memory_kib=1024,
                    argon2_time_cost=1, argon2_parallelism=1)


def open_runtime(settings: Settings) -> Runtime:
    migrate(settings.sqlalchemy_url)
    return Runtime.open(settings)


def make_user(runtime: Runtime) -> int:
    with runtime.unit_of_work() as store:
        user = create_user(store, runtime.passwords, username="bencher", email="b@example.com",
                           password="bench-password-0123456789")
        store.flush()
        return user.id


def make_token(runtime: Runtime, user_id: int) -> str:
    """A token created through the service, as the REST call does."""
    with runtime.unit_of_work() as store:
        ctx = AuthContext(UserPrincipal(user_id, "bencher"), CredentialKind.PASSWORD)
        created = create_token(Caller(store, ctx), runtime.personal_tokens, runtime.settings,
                               "bencher", name="bench", permissions=["REPO_READ"])
        return created.secret


def median_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def p90_us(samples: list[int]) -> float:
    return statistics.quantiles(samples, n=10)[-1] / 1000


@contextmanager
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# -- (a) cached -----------------------------------------------------------------------------------


def cached(iterations: int) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="gitward-bench-verify-"))
    try:
        runtime = open_runtime(settings_for(tmp))
        user_id = make_user(runtime)
        secret = make_token(runtime, user_id)
        pats = runtime.personal_tokens
        registry = runtime.credentials
        presented = Presented("bearer", secret, None, "127.0.0.1")
        key = runtime.secret_key

        def cache_hit() -> int:
            start = time.perf_counter_ns()
            codec.prefix_of(presented.secret)
            token_hash = codec.keyed_hash(key, presented.secret)
            found = pats.cache.get(token_hash)
            elapsed = time.perf_counter_ns() - start
            assert found is not None
            return elapsed

        def in_transaction() -> int:
            with runtime.unit_of_work() as store:
                store.open().connection()  # BEGIN first: only authentication is timed
                start = time.perf_counter_ns()
                ctx = registry.authenticate(store, presented)
                elapsed = time.perf_counter_ns() - start
            assert ctx.credential is CredentialKind.PERSONAL_ACCESS_TOKEN
            return elapsed

        def first_statement() -> int:
            with runtime.unit_of_work() as store:
                start = time.perf_counter_ns()
                registry.authenticate(store, presented)
                return time.perf_counter_ns() - start

        def select_one() -> int:
            """For scale: one trivial ORM-free statement at the start of a request."""
            with runtime.unit_of_work() as store:
                start = time.perf_counter_ns()
                store.open().connection().exec_driver_sql("SELECT 1").scalar()
                return time.perf_counter_ns() - start

        cases: list[tuple[str, Callable[[], int]]] = [
            ("cache-hit path (codec + HMAC + cache)", cache_hit),
            ("authenticate(), in a transaction", in_transaction),
            ("authenticate(), first statement", first_statement),
            ("(scale) SELECT 1, first statement", select_one),
        ]
        in_transaction()  # fills the cache
        for _name, case in cases:  # warm: cache filled, last-use written, code paths hot
            for _ in range(200):
                case()
        samples: dict[str, list[int]] = {name: [] for name, _ in cases}
        with no_gc():
            for _round in range(5):
                for name, case in cases:
                    samples[name].extend(case() for _ in range(iterations // 5))
        print(f"(a) cached PAT, SQLite: {iterations} calls each, "
              "5 interleaved rounds")
        print(f"    {'':<42} {'median us':>10} {'p90 us':>8}")
        for name, _ in cases:
            print(f"    {name:<42} {median_us(samples[name]):>10.1f} "
                  f"{p90_us(samples[name]):>8.1f}")
        full = median_us(samples["authenticate(), in a transaction"])
        ok = full <= CACHED_TARGET_US
        print(f"    target: authenticate() of a cached token <= {CACHED_TARGET_US:.0f} us: "
              f"{'met' if ok else 'MISSED'} ({full:.1f} us)")
        runtime.close()
        return ok
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- (b) uncached, 1k vs 1M rows ------------------------------------------------------------------


def fill(runtime: Runtime, user_id: int, total: int, known: list[str]) -> float:
    """`total` token rows, of which the `known` secrets sit at random positions. Seconds taken."""
    start = time.monotonic()
    known_at = dict(zip(random.sample(range(total), len(known)), known, strict=True))
    key = runtime.secret_key
    now = datetime.now(UTC)
    raw = runtime.engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(
            "COPY personal_access_tokens (user_id, name, token_hash, repo_permission, "
            "created_on) FROM STDIN"
        ) as copy:
            for i in range(total):
                secret = known_at.get(i)
                if secret is not None:
                    token_hash = codec.keyed_hash(key, secret)
                else:
                    # Filler: a hash no secret maps to, shaped like the real ones.
                    token_hash = hashlib.sha256(b"filler-%d" % i).hexdigest()
                copy.write_row((user_id, f"t{i}", token_hash, "REPO_READ", now))
        cursor.execute("ANALYZE personal_access_tokens")
        raw.commit()
    finally:
        raw.close()
    return time.monotonic() - start


def uncached(iterations: int) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="gitward-bench-verify-"))
    runtimes: dict[int, Runtime] = {}
    try:
        known: dict[int, list[str]] = {}
        for size, db in PG_DBS.items():
            psql(f"DROP DATABASE IF EXISTS {db}")
            psql(f"CREATE DATABASE {db}")
            runtime = open_runtime(settings_for(tmp / db, PG.format(db=db)))
            runtimes[size] = runtime
            user_id = make_user(runtime)
            pats = runtime.personal_tokens
            known[size] = [pats.new_secret()[0] for _ in range(KNOWN_TOKENS)]
            seconds = fill(runtime, user_id, size, known[size])
            print(f"(b) filled {size:>9,} rows in {seconds:.1f} s", flush=True)

        def one(size: int) -> int:
            runtime = runtimes[size]
            presented = Presented("bearer", random.choice(known[size]), None, "127.0.0.1")
            runtime.personal_tokens.cache.clear()
            with runtime.unit_of_work() as store:
                store.open().connection()
                start = time.perf_counter_ns()
                runtime.credentials.authenticate(store, presented)
                return time.perf_counter_ns() - start

        for size in runtimes:  # every known token once: last-use rows written, pool warm
            for secret in known[size]:
                with runtimes[size].unit_of_work() as store:
                    runtimes[size].credentials.authenticate(
                        store, Presented("bearer", secret, None, "127.0.0.1"))
        samples: dict[int, list[int]] = {size: [] for size in runtimes}
        rounds = 10
        with no_gc():
            for round_ in range(rounds):
                order = list(runtimes) if round_ % 2 == 0 else list(reversed(runtimes))
                for size in order:
                    samples[size].extend(one(size) for _ in range(iterations // rounds))
        print(f"(b) uncached PAT, PostgreSQL: {iterations} calls per size, "
              f"{rounds} interleaved rounds, random among {KNOWN_TOKENS} known tokens")
        print(f"    {'rows':>11} {'median us':>10} {'p90 us':>8}")
        for size in runtimes:
            print(f"    {size:>11,} {median_us(samples[size]):>10.1f} "
                  f"{p90_us(samples[size]):>8.1f}")
        small, large = (median_us(samples[size]) for size in PG_DBS)
        ratio = large / small
        ok = ratio <= SIZE_TARGET
        print(f"    target: 1,000,000 within 10% of 1,000: {'met' if ok else 'MISSED'} "
              f"(ratio {ratio:.3f})")
        return ok
    finally:
        for runtime in runtimes.values():
            runtime.close()
        for db in PG_DBS.values():
            psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="PAT verification cost")
    parser.add_argument("--iterations", type=int, default=20_000, help="cached calls per case")
    parser.add_argument("--pg-iterations", type=int, default=4_000, help="uncached per size")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    random.seed(1)
    ok = cached(args.iterations)
    if not args.skip_postgres:
        ok = uncached(args.pg_iterations) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
