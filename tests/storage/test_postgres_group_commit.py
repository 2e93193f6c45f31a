"""Group commit on PostgreSQL: writes that queue up share one transaction, yet each
one keeps the outcome, order and isolation it would have had alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DBAPIError

from rentabot.domain.audit import AuditEntry, AuditQuery, AuditRequest
from rentabot.domain.errors import LockRefused
from rentabot.domain.events import Event
from rentabot.domain.models import Actor, Holder
from rentabot.domain.ports import Transaction
from rentabot.storage.base import StoreUnavailable
from rentabot.storage.sql.postgres import PostgresStore
from rentabot.storage.sql.schema import resources
from rentabot.storage.sql.transaction import SqlTransaction
from tests.support.lab import Lab, specs
from tests.support.postgres import fresh_schema

pytestmark = pytest.mark.postgres

POOL = 5
CLIENTS = 40


@pytest.fixture
def lab() -> Iterator[Lab]:
    with fresh_schema() as url:
        lab = Lab(specs(*[(f"board-{n}", "pool") for n in range(1, POOL + 1)]), store_url=url)
        try:
            yield lab
        finally:
            lab.close()


def postgres(lab: Lab) -> PostgresStore:
    assert isinstance(lab.store, PostgresStore)
    return lab.store


def count_commits(store: PostgresStore) -> list[int]:
    commits = [0]

    def counted(_connection: Any) -> None:
        commits[0] += 1

    event.listen(store.engine, "commit", counted)
    return commits


class Gate:
    """A write that holds the write lock until the test opens the gate, so that the
    writes started meanwhile queue up behind it and form one batch."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def operation(self, _tx: Transaction) -> None:
        self.entered.set()
        assert self.opened.wait(timeout=30), "the test never opened the gate"

    async def hold(self, store: PostgresStore) -> asyncio.Task[None]:
        task = asyncio.create_task(store.write(self.operation))
        await asyncio.to_thread(self.entered.wait, 30)
        return task


def describe(resource_id: int, text: str) -> Callable[[Transaction], str]:
    def operation(tx: Transaction) -> str:
        resource = tx.resource(resource_id)
        assert resource is not None
        resource.description = text
        tx.put_resource(resource)
        return text

    return operation


def descriptions(lab: Lab) -> dict[int, str]:
    with postgres(lab).engine.connect() as connection:
        rows = connection.execute(select(resources.c.id, resources.c.description))
        return {row.id: row.description for row in rows}


async def settle() -> None:
    """Let every task created so far run up to its first wait."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_concurrent_locks_share_one_commit(lab: Lab) -> None:
    store = postgres(lab)
    commits = count_commits(store)
    audit = AuditRequest("POST /api/v1/resources/lock", Actor(), 200, 1)

    async def client(number: int) -> object:
        try:
            resource, _ = await lab.service.lock_matching(
                None, None, ["pool"], 60, Holder(label=f"job-{number}"), audit
            )
            return resource.id
        except LockRefused as refused:
            return refused

    async def run() -> list[object]:
        gate = Gate()
        held = await gate.hold(store)
        clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
        await settle()
        gate.opened.set()
        await held
        return await asyncio.gather(*clients)

    outcomes = lab.run(run())

    winners = [outcome for outcome in outcomes if isinstance(outcome, int)]
    assert sorted(winners) == list(range(1, POOL + 1))
    assert sum(isinstance(outcome, LockRefused) for outcome in outcomes) == CLIENTS - POOL
    # The gate's transaction, then one batch for all the clients.
    assert commits[0] == 2
    entries, total = lab.run(store.audit_log(AuditQuery(limit=1000)))
    assert total == CLIENTS
    assert [entry.status for entry in entries].count(200) == POOL


def test_batch_events_keep_emission_order(lab: Lab) -> None:
    store = postgres(lab)

    async def run() -> None:
        gate = Gate()
        held = await gate.hold(store)
        locks = [asyncio.create_task(lab.service.lock(n, 60, Holder())) for n in range(1, 4)]
        await settle()
        gate.opened.set()
        await held
        await asyncio.gather(*locks)

    lab.run(run())
    history = store.events_between(1)
    locked = [event_ for event_ in history if event_.name == "resource.locked"]
    assert [event_.resource_id for event_ in locked] == [1, 2, 3]
    ids = [event_.id for event_ in history]
    assert ids == sorted(ids)


def test_failing_write_spares_its_batch(lab: Lab) -> None:
    store = postgres(lab)
    before = descriptions(lab)

    def fail_after_writing(tx: Transaction) -> None:
        describe(2, "half-done")(tx)
        raise RuntimeError("a bug in the middle of a write")

    async def run() -> list[object]:
        gate = Gate()
        held = await gate.hold(store)
        writes = [
            asyncio.create_task(store.write(describe(1, "first"))),
            asyncio.create_task(store.write(fail_after_writing)),
            asyncio.create_task(store.write(describe(3, "third"))),
        ]
        await settle()
        gate.opened.set()
        await held
        return await asyncio.gather(*writes, return_exceptions=True)

    first, failed, third = lab.run(run())

    assert first == "first"
    assert third == "third"
    assert isinstance(failed, RuntimeError)
    after = descriptions(lab)
    assert after[1] == "first"
    assert after[3] == "third"
    # The failing operation's own write was rolled back with it.
    assert after[2] == before[2]


def test_cancelled_queued_write_never_runs(lab: Lab) -> None:
    store = postgres(lab)

    async def run() -> object:
        gate = Gate()
        held = await gate.hold(store)
        doomed = asyncio.create_task(store.write(describe(1, "cancelled")))
        await settle()
        doomed.cancel()
        gate.opened.set()
        await held
        outcome = await asyncio.gather(doomed, return_exceptions=True)
        # A later write forms its own batch, so the cancelled one had its chance to run.
        await store.write(describe(2, "later"))
        return outcome[0]

    outcome = lab.run(run())

    assert isinstance(outcome, asyncio.CancelledError)
    after = descriptions(lab)
    assert after[1] != "cancelled"
    assert after[2] == "later"


def run_between(lab: Lab, middle: Callable[[Transaction], object]) -> tuple[object, object, object]:
    """Run ``middle`` in one batch between two good writes; return the three outcomes."""
    store = postgres(lab)

    async def run() -> list[object]:
        gate = Gate()
        held = await gate.hold(store)
        writes = [
            asyncio.create_task(store.write(describe(1, "first"))),
            asyncio.create_task(store.write(middle)),
            asyncio.create_task(store.write(describe(3, "third"))),
        ]
        await settle()
        gate.opened.set()
        await held
        return await asyncio.gather(*writes, return_exceptions=True)

    first, outcome, third = lab.run(run())
    return first, outcome, third


def test_unstorable_audit_spares_its_batch(lab: Lab) -> None:
    before = descriptions(lab)

    def too_long_operation(tx: Transaction) -> None:
        describe(2, "half-done")(tx)
        # The operation column holds 128 characters, so the batch's INSERT fails.
        tx.add_audit(AuditEntry(at=lab.clock.now(), operation="x" * 200, outcome="ok"))

    first, failed, third = run_between(lab, too_long_operation)

    assert first == "first"
    assert third == "third"
    assert isinstance(failed, DBAPIError)
    after = descriptions(lab)
    assert after[1] == "first"
    assert after[3] == "third"
    assert after[2] == before[2]


def test_unserialisable_event_spares_its_batch(lab: Lab) -> None:
    before = descriptions(lab)

    def bad_event(tx: Transaction) -> None:
        describe(2, "half-done")(tx)
        tx.emit(Event("resource.locked", lab.clock.now(), 2, data={"holder": object()}))

    first, failed, third = run_between(lab, bad_event)

    assert first == "first"
    assert third == "third"
    assert isinstance(failed, TypeError)
    assert descriptions(lab)[2] == before[2]


def test_statement_timeout_spares_its_batch(lab: Lab) -> None:
    def slow(tx: Transaction) -> None:
        assert isinstance(tx, SqlTransaction)
        tx.connection.exec_driver_sql("SET LOCAL statement_timeout = '50ms'")
        tx.connection.exec_driver_sql("SELECT pg_sleep(5)")

    first, failed, third = run_between(lab, slow)

    assert first == "first"
    assert third == "third"
    # Answered 503, as a timeout was before writes were grouped.
    assert isinstance(failed, StoreUnavailable)
    after = descriptions(lab)
    assert after[1] == "first"
    assert after[3] == "third"


def test_cancelled_leader_finishes_its_batch(lab: Lab) -> None:
    store = postgres(lab)
    leader_gate = Gate()

    def lead(tx: Transaction) -> str:
        describe(1, "leader")(tx)
        leader_gate.operation(tx)
        return "leader"

    async def run() -> list[object]:
        gate = Gate()
        held = await gate.hold(store)
        leader = asyncio.create_task(store.write(lead))
        follower = asyncio.create_task(store.write(describe(2, "follower")))
        await settle()
        gate.opened.set()
        await held
        # The leader's batch, with the follower in it, now runs in a worker thread.
        await asyncio.to_thread(leader_gate.entered.wait, 30)
        leader.cancel()
        await settle()
        leader_gate.opened.set()
        return await asyncio.gather(leader, follower, return_exceptions=True)

    leader, follower = lab.run(run())

    assert isinstance(leader, asyncio.CancelledError)
    assert follower == "follower"
    after = descriptions(lab)
    # The batch ran to its end: a cancelled caller cannot take back a running write.
    assert after[1] == "leader"
    assert after[2] == "follower"
