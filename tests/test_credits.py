"""Credits: reservations never overdraw, settle exactly once, and the ledger agrees."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from core import credits
from core.errors import InsufficientCredits
from core.sessions import upsert_user
from tests.corekit import ledger_ok, user


async def _new_user(pool: asyncpg.Pool, name: str, starter: int) -> int:
    async with pool.acquire() as conn:
        return await upsert_user(conn, user(name), starter)


async def test_starter_grant_is_given_once(pool: asyncpg.Pool) -> None:
    first = await _new_user(pool, "ada", 50)
    again = await _new_user(pool, "ada", 50)
    assert first == again
    async with pool.acquire() as conn:
        balance = await credits.balance(conn, first)
        grants = await conn.fetchval("SELECT count(*) FROM ledger WHERE kind = 'grant'")
    assert balance is not None and (balance.granted, balance.available) == (50, 50)
    assert grants == 1


@pytest.mark.parametrize(("balance", "cost"), [(100, 7), (50, 50), (30, 1)])
async def test_200_concurrent_reservations_take_exactly_what_fits(
    pool: asyncpg.Pool, balance: int, cost: int
) -> None:
    user_id = await _new_user(pool, "racer", balance)

    async def one() -> bool:
        async with pool.acquire() as conn:
            try:
                await credits.reserve(conn, user_id, cost, reason="race", ttl_s=60)
            except InsufficientCredits:
                return False
            return True

    results = await asyncio.gather(*(one() for _ in range(200)))
    assert sum(results) == min(200, balance // cost)
    async with pool.acquire() as conn:
        account = await credits.balance(conn, user_id)
    assert account is not None
    assert account.available == balance - sum(results) * cost >= 0
    assert account.reserved == sum(results) * cost
    assert await ledger_ok(pool) == []


async def test_settle_happens_once_whatever_comes_second(pool: asyncpg.Pool) -> None:
    user_id = await _new_user(pool, "once", 20)
    async with pool.acquire() as conn:
        first = await credits.reserve(conn, user_id, 5, reason="a", ttl_s=60)
        second = await credits.reserve(conn, user_id, 5, reason="b", ttl_s=60)
        assert await credits.confirm(conn, first)
        assert not await credits.confirm(conn, first)
        assert not await credits.release(conn, first)
        assert await credits.release(conn, second)
        assert not await credits.confirm(conn, second)
        account = await credits.balance(conn, user_id)
    assert account is not None
    assert (account.available, account.reserved, account.spent) == (15, 0, 5)
    assert await ledger_ok(pool) == []


async def test_concurrent_confirm_and_release_settle_once(pool: asyncpg.Pool) -> None:
    user_id = await _new_user(pool, "dup", 100)
    async with pool.acquire() as conn:
        ids = [await credits.reserve(conn, user_id, 3, reason="x", ttl_s=60) for _ in range(20)]

    async def settle(reservation: int, kind: str) -> bool:
        async with pool.acquire() as conn:
            fn = credits.confirm if kind == "c" else credits.release
            return await fn(conn, reservation)

    outcomes = await asyncio.gather(
        *(settle(r, k) for r in ids for k in ("c", "r", "c", "r"))
    )
    assert sum(outcomes) == len(ids)  # one winner per reservation
    async with pool.acquire() as conn:
        account = await credits.balance(conn, user_id)
    assert account is not None and account.reserved == 0
    assert account.available + account.spent == 100
    assert await ledger_ok(pool) == []


async def test_admin_deduction_cannot_overdraw_and_keys_are_idempotent(
    pool: asyncpg.Pool,
) -> None:
    user_id = await _new_user(pool, "adm", 10)
    async with pool.acquire() as conn:
        assert not await credits.adjust(conn, user_id, -11, reason="too much", key="d1")
        assert await credits.adjust(conn, user_id, -4, reason="fine", key="d2")
        assert await credits.adjust(conn, user_id, 25, reason="gift", key="g1")
        with pytest.raises(asyncpg.UniqueViolationError):
            await credits.adjust(conn, user_id, 25, reason="gift again", key="g1")
        account = await credits.balance(conn, user_id)
    assert account is not None and (account.granted, account.available) == (31, 31)
    assert await ledger_ok(pool) == []


async def test_ledger_is_append_only(pool: asyncpg.Pool) -> None:
    await _new_user(pool, "app", 10)
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE ledger SET amount = 999")
