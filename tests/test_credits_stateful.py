"""A Hypothesis state machine drives the real credit operations against a model.

Random grant / deduct / reserve / confirm / release / expire / duplicate-settle
sequences; after every step the account must equal the model and the audit of
the rows (ledger sums, settled-once) must be clean.
"""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from core import credits
from core.audit import audit
from core.errors import InsufficientCredits
from core.sessions import upsert_user
from tests.corekit import user

EXPIRE = "UPDATE reservations SET expires_at = now() - interval '1 second' WHERE id = $1"
ORPHAN_SWEEP = """SELECT id FROM reservations
                  WHERE status = 'pending' AND generation_id IS NULL AND expires_at < now()"""


class CreditMachine(RuleBasedStateMachine):
    """One user's account, driven through the real SQL on a dedicated connection."""

    url: str = ""
    reservations = Bundle("reservations")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(self.url))
        self.keys = itertools.count()
        self.model = {"available": 0, "reserved": 0, "spent": 0}
        self.pending: dict[int, int] = {}

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(coro)

    @initialize(start=st.integers(0, 60))
    def new_user(self, start: int) -> None:
        self.run(self.conn.execute(
            "TRUNCATE users, accounts, ledger, reservations RESTART IDENTITY CASCADE"))
        self.user_id = self.run(upsert_user(self.conn, user("hyp"), start))
        self.model["available"] = start

    @rule(amount=st.integers(1, 40))
    def grant(self, amount: int) -> None:
        assert self.run(credits.adjust(self.conn, self.user_id, amount, reason="g",
                                       key=f"k{next(self.keys)}"))
        self.model["available"] += amount

    @rule(amount=st.integers(1, 40))
    def deduct(self, amount: int) -> None:
        ok = self.run(credits.adjust(self.conn, self.user_id, -amount, reason="d",
                                     key=f"k{next(self.keys)}"))
        assert ok == (amount <= self.model["available"])
        if ok:
            self.model["available"] -= amount

    @rule(target=reservations, amount=st.integers(0, 30))
    def reserve(self, amount: int) -> int:
        try:
            reservation = self.run(credits.reserve(self.conn, self.user_id, amount, reason="r",
                                                   ttl_s=60))
        except InsufficientCredits:
            assert amount > self.model["available"]
            return -1
        assert amount <= self.model["available"]
        self.model["available"] -= amount
        self.model["reserved"] += amount
        self.pending[reservation] = amount
        return int(reservation)

    @rule(reservation=reservations)
    def confirm(self, reservation: int) -> None:
        settled = self.run(credits.confirm(self.conn, reservation)) if reservation > 0 else False
        assert settled == (reservation in self.pending)
        if settled:
            amount = self.pending.pop(reservation)
            self.model["reserved"] -= amount
            self.model["spent"] += amount

    @rule(reservation=reservations)
    def release(self, reservation: int) -> None:
        settled = self.run(credits.release(self.conn, reservation)) if reservation > 0 else False
        assert settled == (reservation in self.pending)
        if settled:
            amount = self.pending.pop(reservation)
            self.model["reserved"] -= amount
            self.model["available"] += amount

    @rule(reservation=reservations)
    def expire_and_sweep(self, reservation: int) -> None:
        """A reservation left pending past its expiry is released by recovery, once."""
        if reservation <= 0:
            return
        self.run(self.conn.execute(EXPIRE, reservation))
        for row in self.run(self.conn.fetch(ORPHAN_SWEEP)):
            assert self.run(credits.release(self.conn, row["id"]))
            amount = self.pending.pop(row["id"])
            self.model["reserved"] -= amount
            self.model["available"] += amount

    @invariant()
    def account_matches_model_and_audit_is_clean(self) -> None:
        if not hasattr(self, "user_id"):
            return
        balance = self.run(credits.balance(self.conn, self.user_id))
        assert balance is not None
        assert (balance.available, balance.reserved, balance.spent) == (
            self.model["available"], self.model["reserved"], self.model["spent"])
        assert min(balance.available, balance.reserved, balance.spent) >= 0
        assert self.run(audit(self.conn)) == []

    def teardown(self) -> None:
        self.run(self.conn.close())
        self.loop.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_credit_state_machine(pg_admin_url: str, template_url: str) -> None:
    async def fresh_database() -> str:
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute('DROP DATABASE IF EXISTS "hypothesis_credits" WITH (FORCE)')
            await conn.execute('CREATE DATABASE "hypothesis_credits" TEMPLATE "easel_template"')
        finally:
            await conn.close()
        return pg_admin_url.replace("/postgres?", "/hypothesis_credits?", 1)

    CreditMachine.url = asyncio.run(fresh_database())
    runner = CreditMachine.TestCase
    runner.settings = settings(
        max_examples=40, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    runner().runTest()
