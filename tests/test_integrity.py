"""Write integrity: id reuse (ABA), items of earlier builds, and retries among other writers.

- A saga deleted and inserted again under the same id starts again at version 0: a state
  loaded from the earlier saga must never overwrite the later one (``sagaIncarnation``).
- Items written by an earlier build (one ``writeToken``) or by the TypeScript store (no token)
  keep working, and move to the new scheme on their first update.
- A write that DynamoDB applied but whose response was lost is recognised by its retry even
  when other workers wrote in between (the ``sagaWrite0..9`` history): up to 9 later writes
  for an update, any number for an insert. Beyond that the limit is pinned, not hidden.
- ``SagaStoreUnavailableError.may_have_landed`` / ``.write`` and ``store.write_landed()``.

The fault tests run on DynamoDB Local behind the fault proxy (``tests/ddb_proxy.py``); the
other writers between a write's attempts go straight to DynamoDB Local, fault-free, from the
``on_retry`` hook of the faulty store's retry policy, so they land after the first attempt was
applied and before the retry is sent.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_store_pynamo import (
    ConcurrencyError,
    DynamoDBSagaStore,
    RetryPolicy,
    SagaAlreadyExistsError,
    SagaNotFoundError,
    SagaStoreError,
    SagaStoreUnavailableError,
    SagaValidationError,
    UnresolvedWrite,
    create_table,
)
from saga_store_pynamo._tokens import HISTORY, INCARNATION, SLOTS, incarnation_of
from tests.conftest import CREDENTIALS, REGION, Backend
from tests.ddb_proxy import DROP_RESPONSE, RESET, DynamoDBProxy, FaultInjector, error
from tests.models import CounterSaga, OrderSaga

NAME = "OrderSaga"
OLD = datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def raw_item(backend: Backend, store: DynamoDBSagaStore[Any], saga_id: str) -> dict[str, Any]:
    """The stored item as DynamoDB holds it, read behind the store's back."""
    response = backend.client().get_item(
        TableName=store.table_name,
        Key={"sagaName": {"S": NAME}, "sagaId": {"S": saga_id}},
        ConsistentRead=True,
    )
    item: dict[str, Any] = response["Item"]
    return item


# -- (a) id reuse: a stale state never overwrites a later saga under the same id -------------------


def replace(store: DynamoDBSagaStore[Any], saga_id: str, correlation_id: str) -> OrderSaga:
    """Delete the saga and insert a successor under the same id (version 0 again)."""
    store.delete(NAME, saga_id)
    successor = OrderSaga(status="successor", total_cents=2)
    if not store.unique_correlation:
        successor.saga_id = saga_id
    store.insert(NAME, correlation_id, successor)
    assert successor.saga_id == saga_id
    return successor


def assert_is_successor(store: DynamoDBSagaStore[Any], successor: OrderSaga, version: int) -> None:
    stored = store.get_by_id(NAME, successor.saga_id)
    assert stored is not None
    assert (stored.status, stored.total_cents, stored.note) == ("successor", 2, None)
    assert stored.version == version
    assert stored.created_at == successor.created_at != OLD
    assert incarnation_of(stored) == incarnation_of(successor)


@pytest.mark.parametrize("mode", ["unique-correlation", "caller-given-id"])
@pytest.mark.parametrize("style", ["orm", "saga-bus"])
def test_stale_state_of_a_deleted_saga_does_not_overwrite_its_successor(
    make_store: Any, mode: str, style: str
) -> None:
    store = make_store(unique_correlation=mode == "unique-correlation")
    first = OrderSaga(status="first", created_at=OLD)
    if mode == "caller-given-id":
        first.saga_id = f"order-{uuid.uuid4().hex[:8]}"
    store.insert(NAME, "order-1", first)
    if mode == "unique-correlation":
        stale = store.get_by_correlation_id(NAME, "order-1")
    else:
        stale = store.get_by_id(NAME, first.saga_id)
    assert stale is not None
    assert stale.version == 0  # a worker holds version 0

    successor = replace(store, first.saga_id, "order-1")  # version 0 again

    stale.status = "stale"
    stale.note = "written from the deleted saga's state"
    if style == "saga-bus":
        stale.version = 1
    with pytest.raises(SagaNotFoundError):
        store.update(NAME, stale, 0)
    assert_is_successor(store, successor, version=0)


@pytest.mark.parametrize("mode", ["unique-correlation", "caller-given-id"])
def test_stale_state_at_the_successors_version_does_not_overwrite_it(
    make_store: Any, mode: str
) -> None:
    store = make_store(unique_correlation=mode == "unique-correlation")
    first = OrderSaga(status="first", created_at=OLD)
    if mode == "caller-given-id":
        first.saga_id = f"order-{uuid.uuid4().hex[:8]}"
    store.insert(NAME, "order-1", first)
    for expected in range(3):
        store.update(NAME, first, expected)
    stale = store.get_by_id(NAME, first.saga_id)
    assert stale is not None
    assert stale.version == 3

    successor = replace(store, first.saga_id, "order-1")
    for expected in range(3):  # the successor reaches the stale state's version
        state = store.get_by_id(NAME, successor.saga_id)
        store.update(NAME, state, expected)

    stale.status = "stale"
    with pytest.raises(SagaNotFoundError):
        store.update(NAME, stale, 3)
    assert_is_successor(store, successor, version=3)


def test_states_found_by_name_carry_their_incarnation(make_store: Any) -> None:
    store = make_store()
    first = OrderSaga(saga_id="fixed-id", status="first", created_at=OLD)
    store.insert(NAME, "order-1", first)
    (stale,) = store.find_by_name(NAME).items
    successor = replace(store, "fixed-id", "order-1")
    stale.status = "stale"
    with pytest.raises(SagaNotFoundError):
        store.update(NAME, stale, 0)
    assert_is_successor(store, successor, version=0)


@pytest.mark.parametrize("returns", ["in-place", "new-state"])
def test_modify_of_a_saga_replaced_meanwhile_raises_not_found(
    make_store: Any, returns: str
) -> None:
    store = make_store(unique_correlation=True)
    first = OrderSaga(status="first", created_at=OLD)
    store.insert(NAME, "order-1", first)
    successors: list[OrderSaga] = []
    calls = 0

    def fn(state: OrderSaga) -> OrderSaga | None:
        nonlocal calls
        calls += 1
        if not successors:  # another worker replaces the saga while this one works on it
            successors.append(replace(store, state.saga_id, "order-1"))
        if returns == "new-state":
            # Built by hand, so without an incarnation: modify gives it the loaded one's.
            return OrderSaga(status="stale", total_cents=99, created_at=state.created_at)
        state.status = "stale"
        state.total_cents = 99
        return None

    with pytest.raises(SagaNotFoundError):
        store.modify(NAME, first.saga_id, fn)
    assert calls == 1
    assert_is_successor(store, successors[0], version=0)


def test_insert_and_update_keep_the_incarnation_on_the_state(make_store: Any) -> None:
    store = make_store()
    state = OrderSaga()
    store.insert(NAME, "order-1", state)
    token = incarnation_of(state)
    assert token is not None
    assert len(token) == 16
    store.update(NAME, state, 0)
    assert incarnation_of(state) == token
    loaded = store.get_by_id(NAME, state.saga_id)
    assert incarnation_of(loaded) == token
    assert store.get_by_correlation_id(NAME, "order-1") is not None
    assert incarnation_of(store.get_by_correlation_id(NAME, "order-1")) == token


# -- (b) items written by an earlier build or by the TypeScript store ------------------------------

LEGACY_KINDS = {
    # The earlier build of this store: one writeToken, microsecond timestamps.
    "earlier-build": {"writeToken": {"S": "5f0c7d1e9a2b4c3d8e7f6a5b4c3d2e1f"}},
    # The TypeScript store: no token attribute at all, millisecond timestamps.
    "typescript": {},
}


def put_legacy(
    backend: Backend, store: DynamoDBSagaStore[Any], kind: str, saga_id: str, version: int = 3
) -> None:
    stamp = "2024-05-06T07:08:09.123Z" if kind == "typescript" else "2024-05-06T07:08:09.123456Z"
    item = {
        "sagaName": {"S": NAME},
        "sagaId": {"S": saga_id},
        "correlationId": {"S": f"corr-{saga_id}"},
        "version": {"N": str(version)},
        "isCompleted": {"BOOL": False},
        "createdAt": {"S": stamp},
        "updatedAt": {"S": stamp},
        "status": {"S": "legacy"},
        "total_cents": {"N": "7"},
        **LEGACY_KINDS[kind],
    }
    backend.client().put_item(TableName=store.table_name, Item=item)


@pytest.mark.parametrize("kind", list(LEGACY_KINDS))
def test_legacy_item_loads_updates_and_gains_an_incarnation(
    backend: Backend, make_store: Any, kind: str
) -> None:
    store = make_store()
    put_legacy(backend, store, kind, "legacy-1")

    loaded = store.get_by_id(NAME, "legacy-1")
    assert loaded is not None
    assert (loaded.status, loaded.total_cents, loaded.version) == ("legacy", 7, 3)
    assert incarnation_of(loaded) == ""  # loaded from an item without one
    assert incarnation_of(store.get_by_correlation_id(NAME, "corr-legacy-1")) == ""

    loaded.status = "updated"
    store.update(NAME, loaded, 3)  # must not fail

    item = raw_item(backend, store, "legacy-1")
    assert item["version"] == {"N": "4"}
    assert item["status"] == {"S": "updated"}
    assert len(item[INCARNATION]["S"]) == 16
    assert incarnation_of(loaded) == item[INCARNATION]["S"]
    assert sum(name in item for name in SLOTS) == 1

    # The same state saves again (now checked by its new incarnation), and modify works.
    loaded.total_cents = 8
    store.update(NAME, loaded, 4)
    saved = store.modify(NAME, "legacy-1", lambda s: setattr(s, "note", "modified"))
    assert (saved.version, saved.total_cents, saved.note) == (6, 8, "modified")
    assert raw_item(backend, store, "legacy-1")[INCARNATION] == item[INCARNATION]


@pytest.mark.parametrize("kind", list(LEGACY_KINDS))
def test_legacy_item_modify_works_first(backend: Backend, make_store: Any, kind: str) -> None:
    store = make_store()
    put_legacy(backend, store, kind, "legacy-1")
    saved = store.modify(NAME, "legacy-1", lambda s: setattr(s, "status", "modified"))
    assert (saved.version, saved.status) == (4, "modified")
    assert INCARNATION in raw_item(backend, store, "legacy-1")


@pytest.mark.parametrize("kind", list(LEGACY_KINDS))
def test_two_copies_of_a_legacy_item_conflict_as_a_version_conflict(
    backend: Backend, make_store: Any, kind: str
) -> None:
    """The second of two workers that loaded the same legacy item loses a version race: the
    saga still exists, so it is a ``ConcurrencyError`` (which ``modify`` retries), not a
    ``SagaNotFoundError``."""
    store = make_store()
    put_legacy(backend, store, kind, "legacy-1")
    first = store.get_by_id(NAME, "legacy-1")
    second = store.get_by_id(NAME, "legacy-1")
    first.status = "first"
    store.update(NAME, first, 3)
    second.status = "second"
    with pytest.raises(ConcurrencyError) as caught:
        store.update(NAME, second, 3)
    assert (caught.value.expected_version, caught.value.actual_version) == (3, 4)
    assert raw_item(backend, store, "legacy-1")["status"] == {"S": "first"}


@pytest.mark.parametrize("kind", list(LEGACY_KINDS))
def test_modify_of_a_legacy_item_retries_a_conflict(
    backend: Backend, make_store: Any, kind: str
) -> None:
    store = make_store()
    put_legacy(backend, store, kind, "legacy-1")
    calls = 0

    def fn(state: OrderSaga) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # another worker saves the legacy item first
            other = store.get_by_id(NAME, "legacy-1")
            other.total_cents += 100
            store.update(NAME, other, other.version)
        state.total_cents += 1

    saved = store.modify(NAME, "legacy-1", fn, base_delay=0)
    assert calls == 2
    assert (saved.version, saved.total_cents) == (5, 108)


@pytest.mark.parametrize("kind", list(LEGACY_KINDS))
def test_stale_legacy_copy_does_not_overwrite_a_saga_inserted_since(
    backend: Backend, make_store: Any, kind: str
) -> None:
    store = make_store()
    put_legacy(backend, store, kind, "legacy-1", version=0)
    stale = store.get_by_id(NAME, "legacy-1")
    successor = replace(store, "legacy-1", "corr-legacy-1")  # by this store: it has a token
    stale.status = "stale"
    # Refused either way; which error it is depends on whether the store can tell a saga
    # inserted since from the same legacy saga upgraded by another worker's update.
    with pytest.raises((SagaNotFoundError, ConcurrencyError)):
        store.update(NAME, stale, 0)
    stored = store.get_by_id(NAME, "legacy-1")
    assert (stored.status, stored.version, stored.created_at) == (
        "successor",
        0,
        successor.created_at,
    )
    assert incarnation_of(stored) == incarnation_of(successor)


@pytest.mark.parametrize("kind", list(LEGACY_KINDS))
def test_stale_legacy_copy_does_not_overwrite_a_successor_that_moved_past_it(
    backend: Backend, make_store: Any, kind: str
) -> None:
    store = make_store()
    put_legacy(backend, store, kind, "legacy-1", version=3)
    stale = store.get_by_id(NAME, "legacy-1")
    successor = replace(store, "legacy-1", "corr-legacy-1")
    for expected in range(5):  # the successor moves past the stale copy's version 3
        store.update(NAME, store.get_by_id(NAME, "legacy-1"), expected)
    before = raw_item(backend, store, "legacy-1")
    stale.status = "stale"
    # Refused. (A ConcurrencyError here: from a copy without an incarnation the store cannot
    # tell a successor past its version from the same saga upgraded and updated since.)
    with pytest.raises((SagaNotFoundError, ConcurrencyError)):
        store.update(NAME, stale, 3)
    assert raw_item(backend, store, "legacy-1") == before
    assert incarnation_of(store.get_by_id(NAME, "legacy-1")) == incarnation_of(successor)


@pytest.mark.parametrize("successor_version", [0, 2])
def test_stale_copy_does_not_overwrite_a_successor_written_by_another_tool(
    backend: Backend, make_store: Any, successor_version: int
) -> None:
    """The id now holds a saga inserted by the TypeScript store (no incarnation at all)."""
    store = make_store()
    first = OrderSaga(saga_id="s-1", status="first", created_at=OLD)
    store.insert(NAME, "corr-s-1", first)
    stale = store.get_by_id(NAME, "s-1")
    store.delete(NAME, "s-1")
    put_legacy(backend, store, "typescript", "s-1", version=successor_version)
    before = raw_item(backend, store, "s-1")
    stale.status = "stale"
    if successor_version == 0:
        with pytest.raises(SagaNotFoundError):
            store.update(NAME, stale, 0)
    else:
        with pytest.raises((SagaNotFoundError, ConcurrencyError)):
            store.update(NAME, stale, 0)
    assert raw_item(backend, store, "s-1") == before


@pytest.mark.parametrize("target", ["store-inserted", "typescript"])
def test_state_built_by_hand_updates_by_version_alone(
    backend: Backend, make_store: Any, target: str
) -> None:
    store = make_store()
    if target == "store-inserted":
        inserted = OrderSaga(saga_id="s-1", status="inserted")
        store.insert(NAME, "corr-s-1", inserted)
        store.update(NAME, inserted, 0)
        store.update(NAME, inserted, 1)
    else:
        put_legacy(backend, store, "typescript", "s-1", version=2)
    before = raw_item(backend, store, "s-1").get(INCARNATION)

    by_hand = OrderSaga(saga_id="s-1", correlation_id="corr-s-1", version=2, status="by-hand")
    assert incarnation_of(by_hand) is None
    store.update(NAME, by_hand, 2)
    assert by_hand.version == 3
    item = raw_item(backend, store, "s-1")
    assert (item["status"], item["version"]) == ({"S": "by-hand"}, {"N": "3"})
    assert item.get(INCARNATION) == before  # the incarnation is not the hand-built state's

    stale = OrderSaga(saga_id="s-1", correlation_id="corr-s-1", version=2)
    with pytest.raises(ConcurrencyError) as caught:
        store.update(NAME, stale, 2)
    assert caught.value.actual_version == 3


# -- (c) a lost response followed by other writers (DynamoDB Local behind the fault proxy) ---------


COUNTER = "CounterSaga"


@dataclass
class Others:
    """Other workers: updates straight to DynamoDB Local, fault-free.

    ``after_next(operation, ...)`` runs them from the faulty store's ``on_retry`` hook, that
    is after an attempt of ``operation`` failed (and, with ``DROP_RESPONSE``, was applied)
    and before the next attempt is sent.
    """

    direct: DynamoDBSagaStore[CounterSaga] | None = None
    #: operation -> (saga id getter, how many updates) for the next retry of that operation
    pending: dict[str, tuple[Callable[[], str], int]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)

    def write(self, saga_id: str, writes: int) -> None:
        """``writes`` increments by other workers, each recording its op id."""
        assert self.direct is not None
        for _ in range(writes):
            op = f"other-{len(self.ran)}"
            state = self.direct.get_by_id(COUNTER, saga_id)
            assert state is not None
            state.count += 1
            state.ops = [*state.ops, op]
            self.direct.update(COUNTER, state, state.version)
            self.ran.append(op)

    def after_next(self, operation: str, saga_id: Callable[[], str], writes: int) -> None:
        self.pending[operation] = (saga_id, writes)

    def on_retry(self, operation: str, attempt: int, failure: BaseException) -> None:
        job = self.pending.pop(operation, None)
        if job is not None:
            self.write(job[0](), job[1])


@dataclass
class Rig:
    injector: FaultInjector
    store: DynamoDBSagaStore[CounterSaga]  # through the fault proxy
    direct: DynamoDBSagaStore[CounterSaga]  # straight to DynamoDB Local, no faults
    others: Others


@pytest.fixture(params=["botocore", "http"])
def rig(dynamodb_local_endpoint: str, request: pytest.FixtureRequest) -> Iterator[Rig]:
    """The faulty store sends through each transport in turn."""
    injector = FaultInjector()
    others = Others()
    table = f"integrity-{uuid.uuid4().hex[:10]}"
    with DynamoDBProxy(dynamodb_local_endpoint, injector) as proxy:
        store = DynamoDBSagaStore(
            CounterSaga,
            table_name=table,
            endpoint=proxy.endpoint,
            region=REGION,
            credentials=CREDENTIALS,
            retry=RetryPolicy(max_attempts=4, base_delay=0, on_retry=others.on_retry),
            transport=request.param,
        )
        direct = DynamoDBSagaStore(
            CounterSaga,
            table_name=table,
            endpoint=dynamodb_local_endpoint,
            region=REGION,
            credentials=CREDENTIALS,
        )
        create_table(direct)
        others.direct = direct
        yield Rig(injector, store, direct, others)
        direct.connection.delete_table(table)


def inserted(rig: Rig, **fields: Any) -> CounterSaga:
    state = CounterSaga(**fields)
    rig.direct.insert(COUNTER, f"c-{uuid.uuid4().hex[:6]}", state)
    return state


@pytest.mark.ddblocal
@pytest.mark.parametrize("later_writes", [1, 8, HISTORY - 1])
def test_landed_update_is_recognised_after_later_writes_by_others(
    rig: Rig, later_writes: int
) -> None:
    saga = inserted(rig)
    state = rig.store.get_by_id(COUNTER, saga.saga_id)
    rig.injector.queue("UpdateItem", DROP_RESPONSE)  # applied, answer lost
    rig.others.after_next("UpdateItem", lambda: saga.saga_id, later_writes)

    state.count += 1
    state.ops = [*state.ops, "A"]
    rig.store.update(COUNTER, state, 0)  # the retry fails its condition: must still succeed

    assert rig.injector.requests["UpdateItem"] == 2
    assert state.version == 1
    stored = rig.direct.get_by_id(COUNTER, saga.saga_id)
    assert stored.ops == ["A", *rig.others.ran]
    assert len(rig.others.ran) == later_writes
    assert stored.count == 1 + later_writes
    assert stored.version == 1 + later_writes


class StepA:
    """A ``modify`` step that records the op id "A" and counts how often it was applied."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, state: CounterSaga) -> None:
        self.calls += 1
        state.count += 1
        state.ops = [*state.ops, "A"]


@pytest.mark.ddblocal
@pytest.mark.parametrize("later_writes", [1, 8, HISTORY - 1])
def test_modify_applies_fn_once_when_its_landed_write_was_followed_by_others(
    rig: Rig, later_writes: int
) -> None:
    saga = inserted(rig)
    rig.injector.queue("UpdateItem", DROP_RESPONSE)
    rig.others.after_next("UpdateItem", lambda: saga.saga_id, later_writes)
    step = StepA()

    saved = rig.store.modify(COUNTER, saga.saga_id, step)

    assert step.calls == 1
    assert saved.version == 1
    stored = rig.direct.get_by_id(COUNTER, saga.saga_id)
    assert stored.ops.count("A") == 1
    assert stored.count == 1 + later_writes == len(stored.ops)


@pytest.mark.ddblocal
def test_beyond_the_window_a_landed_update_is_reported_as_unknown(rig: Rig) -> None:
    """The limit: the item remembers the tokens of its last HISTORY (10) writes. After 10
    later writes the slot of the landed write holds another write's token, and the retry
    cannot tell its own landed write from a lost race. Since an earlier attempt may have
    landed, the store says so (``SagaStoreUnavailableError`` with ``may_have_landed``)
    instead of a ``ConcurrencyError`` that would make the caller repeat the step."""
    saga = inserted(rig)
    state = rig.store.get_by_id(COUNTER, saga.saga_id)
    rig.injector.queue("UpdateItem", DROP_RESPONSE)
    rig.others.after_next("UpdateItem", lambda: saga.saga_id, HISTORY)

    state.count += 1
    state.ops = [*state.ops, "A"]
    with pytest.raises(SagaStoreUnavailableError) as caught:
        rig.store.update(COUNTER, state, 0)
    assert caught.value.may_have_landed is True
    assert caught.value.write is not None
    assert (caught.value.write.saga_id, caught.value.write.version) == (saga.saga_id, 1)
    assert state.version == 0  # not reported as a success either
    stored = rig.direct.get_by_id(COUNTER, saga.saga_id)
    assert stored.ops[0] == "A"  # it did land
    # Its slot was reused: write_landed cannot confirm it any more (documented).
    assert rig.store.write_landed(caught.value) is False


@pytest.mark.ddblocal
def test_a_conflict_after_a_lost_answer_within_the_window_is_still_a_conflict(rig: Rig) -> None:
    """An attempt in doubt (its answer lost) followed by a genuine conflict: another worker
    wrote the version this write wanted, so its slot is someone else's and the store can
    say ConcurrencyError."""
    saga = inserted(rig)
    state = rig.store.get_by_id(COUNTER, saga.saga_id)
    rig.injector.queue("UpdateItem", RESET)  # never forwarded, so never applied
    rig.others.after_next("UpdateItem", lambda: saga.saga_id, 3)
    state.count += 1
    with pytest.raises(ConcurrencyError) as caught:
        rig.store.update(COUNTER, state, 0)
    assert caught.value.actual_version == 3


@pytest.mark.ddblocal
def test_beyond_the_window_modify_does_not_apply_fn_twice(rig: Rig) -> None:
    """The same limit seen through ``modify``: the unknown outcome propagates, and ``fn``
    is not applied a second time on a reloaded state."""
    saga = inserted(rig)
    rig.injector.queue("UpdateItem", DROP_RESPONSE)
    rig.others.after_next("UpdateItem", lambda: saga.saga_id, HISTORY)
    step = StepA()

    with pytest.raises(SagaStoreUnavailableError) as caught:
        rig.store.modify(COUNTER, saga.saga_id, step, base_delay=0)
    assert caught.value.may_have_landed is True
    assert step.calls == 1
    assert rig.direct.get_by_id(COUNTER, saga.saga_id).ops.count("A") == 1


@pytest.mark.ddblocal
@pytest.mark.parametrize("later_writes", [8, HISTORY - 1, 3 * HISTORY])
@pytest.mark.parametrize("unique", [False, True])
def test_landed_insert_is_recognised_after_later_writes_by_others(
    rig: Rig, later_writes: int, unique: bool
) -> None:
    if unique:
        rig.store.unique_correlation = True
    state = CounterSaga(ops=["insert"])
    rig.injector.queue("PutItem", DROP_RESPONSE)
    rig.others.after_next("PutItem", lambda: state.saga_id, later_writes)

    rig.store.insert(COUNTER, "order-1", state)  # no SagaAlreadyExistsError

    assert rig.injector.requests["PutItem"] == 2
    assert state.version == 0
    stored = rig.direct.get_by_id(COUNTER, state.saga_id)
    assert stored.ops == ["insert", *rig.others.ran]
    assert stored.version == later_writes
    # A genuine duplicate is still one.
    with pytest.raises(SagaAlreadyExistsError):
        rig.store.insert(COUNTER, "order-1", CounterSaga(saga_id=state.saga_id))


# -- (d) may_have_landed, .write and write_landed() ------------------------------------------------

THROTTLED = error("ThrottlingException")
SERVER_ERROR = error("InternalServerError", status=500)


def a_write(rig: Rig, operation: str, saga: CounterSaga) -> Callable[[], None]:
    """An update of ``saga`` (version 0), or an insert of a new saga, through the proxy."""
    if operation == "UpdateItem":
        state = rig.store.get_by_id(COUNTER, saga.saga_id)
        return lambda: rig.store.update(COUNTER, state, 0)
    return lambda: rig.store.insert(COUNTER, "c", CounterSaga())


@pytest.mark.ddblocal
def test_update_applied_then_throttled_may_have_landed_and_did(rig: Rig) -> None:
    saga = inserted(rig)
    state = rig.store.get_by_id(COUNTER, saga.saga_id)
    rig.injector.queue("UpdateItem", DROP_RESPONSE, THROTTLED, THROTTLED, THROTTLED)
    state.ops = ["A"]
    with pytest.raises(SagaStoreUnavailableError) as caught:
        rig.store.update(COUNTER, state, 0)
    err = caught.value
    assert (err.attempts, err.code) == (4, "ThrottlingException")
    assert err.may_have_landed is True  # attempt 1 may have been applied (and was)
    assert isinstance(err.write, UnresolvedWrite)
    assert (err.write.saga_name, err.write.saga_id, err.write.version) == (
        COUNTER,
        saga.saga_id,
        1,
    )
    assert state.version == 0  # the caller was not told it succeeded
    assert rig.store.write_landed(err) is True
    assert rig.direct.get_by_id(COUNTER, saga.saga_id).ops == ["A"]


@pytest.mark.ddblocal
def test_insert_applied_then_throttled_may_have_landed_and_did(rig: Rig) -> None:
    state = CounterSaga()
    rig.injector.queue("PutItem", DROP_RESPONSE, THROTTLED, THROTTLED, THROTTLED)
    with pytest.raises(SagaStoreUnavailableError) as caught:
        rig.store.insert(COUNTER, "c", state)
    err = caught.value
    assert err.may_have_landed is True
    assert err.write is not None
    assert (err.write.saga_id, err.write.version) == (state.saga_id, 0)
    assert rig.store.write_landed(err) is True
    # ...even after any number of later updates (the insert is known by its incarnation).
    rig.others.write(state.saga_id, 2 * HISTORY)
    assert rig.store.write_landed(err) is True


@pytest.mark.ddblocal
def test_write_landed_follows_the_history_window(rig: Rig) -> None:
    saga = inserted(rig)
    state = rig.store.get_by_id(COUNTER, saga.saga_id)
    rig.injector.queue("UpdateItem", DROP_RESPONSE, THROTTLED, THROTTLED, THROTTLED)
    with pytest.raises(SagaStoreUnavailableError) as caught:
        rig.store.update(COUNTER, state, 0)
    rig.others.write(saga.saga_id, HISTORY - 1)
    assert rig.store.write_landed(caught.value) is True
    rig.others.write(saga.saga_id, 1)
    # The known limit: 10 later writes and the write is no longer recognised.
    assert rig.store.write_landed(caught.value) is False


@pytest.mark.ddblocal
@pytest.mark.parametrize("operation", ["UpdateItem", "PutItem"])
def test_all_attempts_throttled_never_landed(rig: Rig, operation: str) -> None:
    saga = inserted(rig)
    write = a_write(rig, operation, saga)
    rig.injector.queue(operation, THROTTLED, THROTTLED, THROTTLED, THROTTLED)
    with pytest.raises(SagaStoreUnavailableError) as caught:
        write()
    assert caught.value.attempts == 4
    assert caught.value.may_have_landed is False
    assert caught.value.write is None
    with pytest.raises(SagaValidationError):
        rig.store.write_landed(caught.value)
    assert rig.direct.get_by_id(COUNTER, saga.saga_id).version == 0
    assert len(rig.direct.find_by_name(COUNTER).items) == 1  # nothing inserted either


@pytest.mark.ddblocal
@pytest.mark.parametrize("fault", ["500", "reset-before-forwarding"])
@pytest.mark.parametrize("operation", ["UpdateItem", "PutItem"])
def test_unapplied_failures_may_have_landed_but_did_not(
    rig: Rig, fault: str, operation: str
) -> None:
    """A 500 or a reset answered by the proxy without forwarding: the store cannot know the
    request was never applied (``may_have_landed``), and ``write_landed`` finds it was not."""
    saga = inserted(rig)
    write = a_write(rig, operation, saga)
    decision = SERVER_ERROR if fault == "500" else RESET
    rig.injector.queue(operation, *[decision] * 4)
    with pytest.raises(SagaStoreUnavailableError) as caught:
        write()
    err = caught.value
    assert err.may_have_landed is True
    assert err.write is not None
    assert rig.store.write_landed(err) is False
    assert rig.injector.requests[operation] == 4
    assert rig.direct.get_by_id(COUNTER, saga.saga_id).version == 0
    assert len(rig.direct.find_by_name(COUNTER).items) == 1  # nothing inserted either


@pytest.mark.ddblocal
def test_write_landed_of_a_saga_deleted_since_is_false(rig: Rig) -> None:
    state = CounterSaga()
    rig.injector.queue("PutItem", DROP_RESPONSE, THROTTLED, THROTTLED, THROTTLED)
    with pytest.raises(SagaStoreUnavailableError) as caught:
        rig.store.insert(COUNTER, "c", state)
    rig.direct.delete(COUNTER, state.saga_id)
    assert rig.store.write_landed(caught.value) is False
    # ...and a successor under the same id is not mistaken for it.
    rig.direct.insert(COUNTER, "c", CounterSaga(saga_id=state.saga_id))
    assert rig.store.write_landed(caught.value) is False


@pytest.mark.ddblocal
@pytest.mark.parametrize("operation", ["UpdateItem", "PutItem"])
def test_a_landed_write_then_a_non_retryable_error_still_may_have_landed(
    rig: Rig, operation: str
) -> None:
    """Attempt 1 is applied and its response lost; attempt 2 is refused with an error that
    is not retried (credentials that expired between the attempts). The write did land, so
    the error must say it may have (and ``write_landed`` must be able to resolve it); a
    plain ``SagaStoreRequestError`` tells the caller it failed, and the caller repeats it."""
    saga = inserted(rig)
    write = a_write(rig, operation, saga)
    rig.injector.queue(
        operation,
        DROP_RESPONSE,
        error(
            "ExpiredTokenException", message="The security token included in the request is expired"
        ),
    )
    with pytest.raises(SagaStoreError) as caught:
        write()
    assert rig.injector.requests[operation] == 2
    err = caught.value
    assert getattr(err, "may_have_landed", False) is True, repr(err)
    assert rig.store.write_landed(err) is True


@pytest.mark.ddblocal
def test_a_landed_insert_deleted_before_its_retry_is_created_again(rig: Rig) -> None:
    """A known limit, pinned: A's insert lands and its response is lost; before the retry,
    another worker deletes the saga (it ran to completion, say); the retry's
    ``attribute_not_exists`` condition then holds again and re-creates the saga at version
    0. Only a tombstone could prevent it; the window is one retry delay."""
    state = CounterSaga(ops=["insert"])
    rig.injector.queue("PutItem", DROP_RESPONSE)

    def delete_it(operation: str, attempt: int, failure: BaseException) -> None:
        rig.direct.delete(COUNTER, state.saga_id)

    rig.store.retry = RetryPolicy(max_attempts=4, base_delay=0, on_retry=delete_it)
    rig.store.insert(COUNTER, "order-1", state)
    assert rig.injector.requests["PutItem"] == 2
    stored = rig.direct.get_by_id(COUNTER, state.saga_id)
    assert stored is not None
    assert (stored.version, stored.ops) == (0, ["insert"])


# -- (e) property: random interleavings on one id against a model ---------------------------------


@dataclass
class Copy:
    """A state some worker loaded, and what the model says it was loaded from."""

    state: OrderSaga
    incarnation: int
    version: int


@dataclass
class World:
    """The model: what the one saga id holds after each successful call."""

    exists: bool = False
    incarnation: int = 0  # bumped by every insert
    version: int = 0
    status: str = ""
    created_at: datetime | None = None
    token: str | None = None  # the store's incarnation token of the current saga
    copies: list[Copy] = field(default_factory=list)


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.just(0)),
        st.tuples(st.just("delete"), st.just(0)),
        st.tuples(st.just("load"), st.just(0)),
        st.tuples(st.just("update-current"), st.just(0)),
        st.tuples(st.just("update-copy"), st.integers(0, 1_000)),
    ),
    min_size=10,
    max_size=40,
)


def test_random_interleavings_on_one_id_match_the_model(backend: Backend, make_store: Any) -> None:
    store = make_store()
    # The same property on the real server, with fewer examples (each one is slower there).
    examples = 50 if backend.name == "moto" else 15

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        # No example database: the same examples on every machine, so that the coverage
        # check below means the same in CI as here.
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(OPERATIONS)
    def check(operations: list[tuple[str, int]]) -> None:
        saga_id = f"saga-{uuid.uuid4().hex}"
        world = World()
        for step, (operation, pick) in enumerate(operations):
            tag = f"{operation}-{step}"
            if operation == "insert":
                state = OrderSaga(saga_id=saga_id, status=tag)
                if world.exists:
                    with pytest.raises(SagaAlreadyExistsError):
                        store.insert(NAME, "corr", state)
                    seen["duplicate insert refused"] += 1
                else:
                    store.insert(NAME, "corr", state)
                    world.exists, world.version, world.status = True, 0, tag
                    world.incarnation += 1
                    world.created_at, world.token = state.created_at, incarnation_of(state)
            elif operation == "delete":
                store.delete(NAME, saga_id)
                world.exists = False
            elif operation == "load":
                loaded = store.get_by_id(NAME, saga_id)
                assert (loaded is not None) == world.exists
                if loaded is not None:
                    world.copies.append(Copy(loaded, world.incarnation, world.version))
            elif operation == "update-current":
                current = store.get_by_id(NAME, saga_id)
                if current is None:
                    assert not world.exists
                    continue
                current.status = tag
                store.update(NAME, current, current.version)  # a current copy always wins
                world.version, world.status = world.version + 1, tag
            elif world.copies:  # update from a copy loaded earlier (maybe stale)
                copy = world.copies[pick % len(world.copies)]
                copy.state.status = tag
                current_copy = (
                    world.exists
                    and copy.incarnation == world.incarnation
                    and copy.version == world.version
                )
                if current_copy:
                    store.update(NAME, copy.state, copy.version)
                    world.version, world.status = world.version + 1, tag
                    copy.version = world.version
                    assert copy.state.version == world.version
                    seen["current copy won"] += 1
                elif not world.exists or copy.incarnation != world.incarnation:
                    with pytest.raises(SagaNotFoundError):  # never wins over a successor
                        store.update(NAME, copy.state, copy.version)
                    if not world.exists:
                        seen["copy of a deleted saga refused"] += 1
                    elif copy.version == world.version:
                        seen["copy of an earlier incarnation at the same version refused"] += 1
                    else:
                        seen["copy of an earlier incarnation refused"] += 1
                else:
                    with pytest.raises(ConcurrencyError) as caught:
                        store.update(NAME, copy.state, copy.version)
                    assert caught.value.actual_version == world.version
                    seen["copy at an older version refused"] += 1
            # The stored item is always the last successful write.
            stored = store.get_by_id(NAME, saga_id)
            if not world.exists:
                assert stored is None
                continue
            assert stored is not None
            assert (stored.status, stored.version) == (world.status, world.version)
            assert stored.created_at == world.created_at
            assert incarnation_of(stored) == world.token

    seen: Counter[str] = Counter()
    check()
    # The examples did reach every case the property is about.
    assert set(seen) == {
        "current copy won",
        "copy of a deleted saga refused",
        "copy of an earlier incarnation at the same version refused",
        "copy of an earlier incarnation refused",
        "copy at an older version refused",
        "duplicate insert refused",
    }, seen
