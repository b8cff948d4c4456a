"""The stream consumer's ledger (transports/redis/stream/ledger.py): pure bookkeeping of
what a consumer holds and when it must look again, checked against a plain model."""

from __future__ import annotations

import math

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from transports import Delivery
from transports.redis.stream.ledger import StreamLedger

IDS = st.sampled_from([f"1-{n}" for n in range(8)])
LEASE = 30.0


class StreamLedgerMachine(RuleBasedStateMachine):
    """Deliveries come from reads, are settled in any order, reads get interrupted; the
    ledger holds exactly what was handed out and not settled, and skips re-reads."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = StreamLedger(LEASE)
        self.held: dict[str, int] = {}
        self.counted: set[str] = set()
        self.now = 0.0

    @rule(ids=st.lists(IDS, max_size=4, unique=True), attempt=st.integers(1, 3))
    def read(self, ids: list[str], attempt: int) -> None:
        got = self.ledger.delivered((entry_id, b"x", attempt) for entry_id in ids)
        # An entry the caller holds already (read again after an interruption) is skipped.
        assert [d.id for d in got] == [i for i in ids if i not in self.held]
        self.ledger.hand_out(got)
        for delivery in got:
            self.held[delivery.id] = attempt

    @rule(ids=st.lists(IDS, max_size=4, unique=True))
    def settle(self, ids: list[str]) -> None:
        asked = [Delivery(i, b"x", self.held.get(i, 1), token=i) for i in ids]
        holding = self.ledger.holding(asked)
        assert [d.id for d in holding] == [i for i in ids if i in self.held]
        self.ledger.forget(holding)
        for delivery in holding:
            del self.held[delivery.id]
            self.counted.discard(delivery.id)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        entry_id = data.draw(st.sampled_from(sorted(self.held)))
        self.ledger.counted_failure(Delivery(entry_id, b"x", self.held[entry_id]))
        self.counted.add(entry_id)
        assert self.ledger.has_failures

    @rule()
    def interrupted(self) -> None:
        self.ledger.lose_track()
        assert self.ledger.must_take(self.now)
        assert self.ledger.lost_track

    @rule(
        seconds=st.floats(0, 100),
        claimed=st.booleans(),
        done=st.booleans(),
        wait_ms=st.integers(-1, 60_000),
    )
    def take(self, seconds: float, claimed: bool, done: bool, wait_ms: int) -> None:
        self.now += seconds
        self.ledger.taken(
            self.now,
            claimed=claimed,
            history="" if done else "0",
            claim_cursor="0-0",
            wait_ms=wait_ms,
            has_failures=True,
        )
        if claimed:
            assert not self.ledger.claims(self.now)
            assert self.ledger.claims(self.now + LEASE / 2)
        if wait_ms >= 0:
            assert self.ledger.must_take(self.now + wait_ms / 1000)
        if not done:
            assert self.ledger.must_take(self.now)

    @invariant()
    def holds_what_was_handed_out(self) -> None:
        assert sorted(self.ledger.to_renew()) == sorted(self.held)
        assert self.ledger.unhanded([f"1-{n}" for n in range(8)]) == [
            f"1-{n}" for n in range(8) if f"1-{n}" not in self.held
        ]

    @invariant()
    def acks_clear_every_count_that_may_exist(self) -> None:
        held = [Delivery(entry_id, b"x", attempt) for entry_id, attempt in self.held.items()]
        fields = set(self.ledger.failure_ids(held))
        assert self.counted <= fields
        assert {i for i, attempt in self.held.items() if attempt > 1} <= fields

    @invariant()
    def waits_at_most_a_third_of_the_lease(self) -> None:
        assert self.ledger.wait_limit(self.now) <= LEASE / 3


TestStreamLedger = StreamLedgerMachine.TestCase


def test_a_new_ledger_reads_its_history_and_claims_at_once() -> None:
    ledger = StreamLedger(LEASE)
    assert ledger.must_take(0.0)
    assert ledger.claims(0.0)
    assert ledger.next_due == math.inf


def test_a_retry_due_shortens_the_wait() -> None:
    ledger = StreamLedger(LEASE)
    ledger.taken(0.0, claimed=True, history="", claim_cursor="0-0", wait_ms=-1, has_failures=False)
    assert not ledger.must_take(1.0)
    ledger.retry_due(2.0)
    assert ledger.wait_limit(1.0) == 1.0
    assert ledger.must_take(2.0)
