"""The list consumer's ledger (transports/redis/list/ledger.py): pure bookkeeping of the
deliveries a consumer holds, its epoch and ack ids, checked against a plain model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from transports import Delivery
from transports.redis.keys import digest
from transports.redis.list.ledger import NO_LEFTOVERS, RESYNC, ListLedger

PAYLOADS = st.sampled_from([b"a", b"b", b"c"])  # few: equal payloads are common
LEASE = 30.0


class ListLedgerMachine(RuleBasedStateMachine):
    """Takes hand out deliveries (equal payloads included), which are acked, released or
    failed in any grouping, stale ones among them; calls get lost. The ledger holds
    exactly the deliveries handed out and not settled, by identity."""

    def __init__(self) -> None:
        super().__init__()
        self.ledger = ListLedger(LEASE, durable=True)
        self.held: list[Delivery] = []
        self.stale: list[Delivery] = []  # settled ones, which acks must skip
        self.now = 0.0
        self.ledger.taken(
            0.0, maintained=True, leftovers=RESYNC, lost_before=0, epoch="e1", wait_ms=-1
        )

    @rule(payloads=st.lists(PAYLOADS, max_size=4), failed=st.booleans())
    def take(self, payloads: list[bytes], failed: bool) -> None:
        counts = [1] * len(payloads) if failed else []
        got = self.ledger.deliveries(payloads, (), counts, ())
        assert [d.payload for d in got] == payloads
        assert all(d.attempt == (2 if failed else 1) for d in got)
        self.ledger.hand_out(got)
        self.held += got

    @rule(data=st.data(), stale=st.booleans())
    def ack(self, data: st.DataObject, stale: bool) -> None:
        chosen = data.draw(st.lists(st.sampled_from(self.held), unique_by=id)) if self.held else []
        asked = chosen + (self.stale[-1:] if stale else [])
        holding = self.ledger.holding(asked)
        assert [id(d) for d in holding] == [id(d) for d in chosen]
        everything = len(chosen) == len(self.held)
        made = self.ledger.ack_of(holding)
        if not holding:
            assert made.form == ""
        else:
            # By count only when it is all the consumer holds, each payload once (copies
            # go payload by payload), and it knows its processing list.
            distinct = len({d.payload for d in self.held}) == len(self.held)
            expect_all = everything and distinct and not self.ledger.resync
            assert made.form == ("all" if expect_all else "each")
            assert made.size == len(holding)
            assert made.ack_id.startswith(self.ledger.epoch)
            # Every count that may exist is forgotten with the ack.
            failed = {d.payload for d in holding if d.attempt > 1}
            assert set(made.fields) >= {digest(p) for p in failed}
        self.ledger.acked(holding)
        self._settled(holding)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def release_one(self, data: st.DataObject) -> None:
        delivery = data.draw(st.sampled_from(self.held))
        self.ledger.forget(delivery)
        self._settled([delivery])

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def fail_one(self, data: st.DataObject) -> None:
        delivery = data.draw(st.sampled_from(self.held))
        self.ledger.counted_failure(delivery)
        assert delivery.payload in self.ledger.failed

    @precondition(lambda self: bool(self.held))
    @rule()
    def ack_lost_then_retried(self) -> None:
        batch = list(self.held)
        first = self.ledger.ack_of(batch)
        self.ledger.lose_track()  # the reply was lost: made or not, nobody knows
        again = self.ledger.ack_of(batch)
        assert again.ack_id == first.ack_id  # the store skips it if it was made
        assert again.form == "each"
        self.ledger.acked(batch)
        self._settled(batch)
        assert self.ledger.unsure_ack is None

    @rule()
    def resync(self) -> None:
        lost = self.ledger.lost
        self.ledger.taken(
            self.now, maintained=False, leftovers=RESYNC, lost_before=lost, epoch="", wait_ms=-1
        )
        assert not self.ledger.resync
        assert self.ledger.leftovers() == NO_LEFTOVERS

    @rule()
    def interrupted(self) -> None:
        self.ledger.lose_track()
        assert self.ledger.resync
        assert self.ledger.leftovers() == RESYNC
        assert not self.ledger.may_wait_at_once(self.now)

    def _settled(self, deliveries: Sequence[Delivery]) -> None:
        gone = {id(d) for d in deliveries}
        self.stale += [d for d in self.held if id(d) in gone]
        self.held = [d for d in self.held if id(d) not in gone]

    @invariant()
    def holds_what_was_handed_out(self) -> None:
        held = Counter((d.payload, d.attempt) for d in self.held)
        assert Counter(self.ledger.held.attempts()) == held
        assert self.ledger.failed <= {d.payload for d in self.held}
        for delivery in self.held:
            assert self.ledger.held.holds(delivery)
        for delivery in self.stale:
            if not any(d is delivery for d in self.held):
                assert not self.ledger.held.holds(delivery)


TestListLedger = ListLedgerMachine.TestCase


def test_a_leftover_already_held_is_not_handed_out_twice() -> None:
    ledger = ListLedger(LEASE, durable=True)
    first = ledger.deliveries([b"a"], (), (), ())
    ledger.hand_out(first)
    # A resync finds two copies of "a" in the processing list: one is held already.
    again = ledger.deliveries([], [b"a", b"a"], [0, 3], ())
    assert [(d.payload, d.attempt) for d in again] == [(b"a", 4)]


def test_an_at_most_once_ledger_holds_nothing() -> None:
    ledger = ListLedger(LEASE, durable=False)
    got = ledger.deliveries([b"a"], (), (), ())
    ledger.hand_out(got)
    assert ledger.holding(got) == ()
    assert not ledger.maintains(0.0)


def test_a_quiet_list_is_waited_on_at_once_only_briefly() -> None:
    ledger = ListLedger(LEASE, durable=True)
    ledger.taken(0.0, maintained=True, leftovers=NO_LEFTOVERS, lost_before=0, epoch="e", wait_ms=-1)
    ledger.quiet = True
    assert ledger.may_wait_at_once(0.1)
    assert not ledger.may_wait_at_once(0.1)  # consumed
    ledger.quiet = True
    assert not ledger.may_wait_at_once(1.0)  # the last take is too old


def test_a_delivery_is_settled_by_its_token_not_by_its_fields_or_identity() -> None:
    ledger = ListLedger(LEASE, durable=True)
    first, second = ledger.deliveries([b"a", b"a"], (), (), ())
    ledger.hand_out([first, second])
    assert first == second and first.token != second.token  # equal, yet two deliveries
    # A copy that carries the token (as a delivery passed through a queue may) is the
    # delivery; an equal delivery with another token is not.
    assert ledger.holding([attrs.evolve(first)]) == [attrs.evolve(first)]
    assert ledger.holding([attrs.evolve(first, token=object())]) == []
    ledger.acked(ledger.holding([attrs.evolve(first)]))
    assert list(ledger.held.attempts()) == [(b"a", 1)]
    assert ledger.holding([second]) == [second]


def test_tokens_are_unique_across_ledgers() -> None:
    one, two = ListLedger(LEASE, durable=True), ListLedger(LEASE, durable=True)
    [a] = one.deliveries([b"a"], (), (), ())
    [b] = two.deliveries([b"a"], (), (), ())
    two.hand_out([b])
    assert two.holding([a]) == []  # another consumer's delivery settles nothing here
