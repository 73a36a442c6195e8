"""The saga change feed on real backends: moto and DynamoDB Local, through the Streams API."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from saga_store_pynamo import DynamoDBSagaStore, SagaDataError, create_table
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore
from saga_store_pynamo.moto import atomic_moto
from saga_store_pynamo.streams import (
    SagaChange,
    StreamGap,
    StreamNotEnabledError,
    decode_record,
    iter_changes,
    streams_client,
)
from saga_store_pynamo.testing import serve_dynamodb_local
from tests.conftest import Backend
from tests.models import OrderSaga, PaymentSaga

NAME = "OrderSaga"


@pytest.fixture(params=["moto", pytest.param("dynamodb-local", marks=pytest.mark.ddblocal)])
def stream_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """moto in-process, then DynamoDB Local (streams do not depend on the store's transport)."""
    if request.param == "moto":
        with atomic_moto():
            yield Backend("moto", None, max_item_bytes=405_000)
    else:
        endpoint = request.getfixturevalue("dynamodb_local_endpoint")
        yield Backend("dynamodb-local", endpoint, max_item_bytes=409_600)


@pytest.fixture
def make_stream_store(
    stream_backend: Backend,
) -> Iterator[Callable[..., DynamoDBSagaStore[Any]]]:
    """Stores on fresh tables with a stream (``view``: the stream view type)."""
    tables: list[str] = []

    def factory(view: str | None = "NEW_AND_OLD_IMAGES", **options: Any) -> DynamoDBSagaStore[Any]:
        options.setdefault("table_name", f"stream-{uuid.uuid4().hex[:12]}")
        options.setdefault("models", {"PaymentSaga": PaymentSaga})
        store = stream_backend.store(OrderSaga, **options)
        tables.append(store.table_name)
        create_table(store, stream_view_type=view)  # type: ignore[arg-type]
        return store

    yield factory
    if stream_backend.endpoint is not None:
        client = stream_backend.client()
        for name in tables:
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_table(TableName=name)


def live(store: DynamoDBSagaStore[Any]) -> str:
    """A saga's whole life: start, a step, completion, reopening, deletion. Its id."""
    state = OrderSaga(total_cents=100)
    store.insert(NAME, "order-1", state)
    state.status = "paid"
    store.update(NAME, state, 0)
    state.is_completed = True
    store.update(NAME, state, 1)
    state.is_completed = False
    state.note = "refund"
    store.update(NAME, state, 2)
    store.delete(NAME, state.saga_id)
    return str(state.saga_id)


def test_a_saga_life_reads_back_as_typed_changes(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]],
) -> None:
    store = make_stream_store()
    saga_id = live(store)
    store.insert("PaymentSaga", "order-1", PaymentSaga(amount_cents=7))

    changes = list(iter_changes(store))
    assert [(c.kind, c.saga_name) for c in changes] == [
        ("started", NAME),
        ("updated", NAME),
        ("completed", NAME),
        ("reopened", NAME),
        ("deleted", NAME),
        ("started", "PaymentSaga"),
    ]
    started, paid, completed, reopened, deleted, payment = changes
    assert {c.saga_id for c in changes[:5]} == {saga_id}
    assert [c.version for c in changes[:5]] == [0, 1, 2, 3, 3]
    assert all(c.correlation_id == "order-1" for c in changes)
    assert started.old is None
    assert isinstance(started.new, OrderSaga)
    assert started.new.total_cents == 100
    assert started.new.status == "pending"
    assert isinstance(paid.old, OrderSaga)
    assert paid.old.status == "pending"
    assert isinstance(paid.new, OrderSaga)
    assert paid.new.status == "paid"
    assert paid.changed_fields() == {"status": ({"S": "pending"}, {"S": "paid"})}
    assert completed.new is not None
    assert completed.new.is_completed
    assert reopened.new is not None
    assert reopened.new.note == "refund"
    assert deleted.new is None
    assert isinstance(deleted.old, OrderSaga)
    assert isinstance(payment.new, PaymentSaga)
    assert payment.new.amount_cents == 7
    now = datetime.now(timezone.utc)
    for change in changes:
        assert change.event_time is not None
        assert now - timedelta(minutes=5) < change.event_time <= now + timedelta(minutes=1)
    numbers = [int(c.sequence_number) for c in changes]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)


def test_saga_names_filter_and_streams_api_records_decode_alone(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]],
) -> None:
    store = make_stream_store()
    store.insert(NAME, "o-1", OrderSaga())
    store.insert("PaymentSaga", "o-1", PaymentSaga())
    stream = iter_changes(store, saga_names=["PaymentSaga"])
    changes = list(stream)
    assert [c.saga_name for c in changes] == ["PaymentSaga"]
    assert stream.skipped == 1
    again = decode_record(changes[0].record, store)  # a Streams API record, decoded alone
    assert again == changes[0]


def test_checkpoint_resume_has_no_duplicates_and_no_gaps(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]],
) -> None:
    store = make_stream_store()
    sagas = []
    for i in range(3):
        state = OrderSaga(total_cents=i)
        store.insert(NAME, f"order-{i}", state)
        sagas.append(state)

    stream = iter_changes(store)
    first = [next(stream), next(stream)]
    saved = json.dumps(stream.checkpoint)  # what a caller stores between runs
    stream.close()
    assert json.loads(saved)["stream_arn"] == stream.stream_arn
    assert json.loads(saved)["table_name"] == store.table_name

    sagas[0].status = "shipped"
    store.update(NAME, sagas[0], 0)
    resumed = iter_changes(store, checkpoint=json.loads(saved))
    rest = list(resumed)
    assert resumed.gaps == []
    seen = [(c.kind, c.correlation_id, c.version) for c in first + rest]
    assert seen == [
        ("started", "order-0", 0),
        ("started", "order-1", 0),
        ("started", "order-2", 0),
        ("updated", "order-0", 1),
    ]
    # From the end: nothing new, nothing repeated.
    assert list(iter_changes(store, checkpoint=resumed.checkpoint)) == []


def test_start_latest_reads_only_later_changes(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]],
) -> None:
    store = make_stream_store()
    store.insert(NAME, "before", OrderSaga())
    stream = iter_changes(store, start="latest")
    store.insert(NAME, "after", OrderSaga())
    assert [c.correlation_id for c in stream] == ["after"]
    assert [c.correlation_id for c in iter_changes(store, start="latest")] == []


def test_follow_stops_at_its_idle_bound(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]],
) -> None:
    store = make_stream_store()
    store.insert(NAME, "o-1", OrderSaga())
    pauses: list[float] = []
    stream = iter_changes(store, follow=True, idle_seconds=0.0, max_backoff_seconds=1.0)
    stream._sleep = pauses.append  # no real waiting in the test
    assert [c.kind for c in stream] == ["started"]
    assert stream.timed_out


def test_follow_backs_off_on_empty_reads_and_reads_new_changes(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]],
) -> None:
    store = make_stream_store()
    stream = iter_changes(store, follow=True, max_backoff_seconds=1.0)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 4:  # someone writes while the reader waits
            store.insert(NAME, "late", OrderSaga())

    stream._sleep = pause
    change = next(stream)
    stream.close()
    assert change.correlation_id == "late"
    assert pauses[:4] == [0.25, 0.5, 1.0, 1.0]  # doubling up to max_backoff_seconds
    assert list(stream) == []


def test_keys_only_view_gives_kinds_without_images(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]],
) -> None:
    store = make_stream_store("KEYS_ONLY")
    live(store)
    changes = list(iter_changes(store))
    # Without the old image a completion cannot be told from any other update.
    assert [c.kind for c in changes] == ["started", "updated", "updated", "updated", "deleted"]
    assert all(c.old is None and c.new is None for c in changes)
    assert all(c.version is None and c.correlation_id is None for c in changes)
    assert {c.stream_view_type for c in changes} == {"KEYS_ONLY"}


def test_a_table_without_a_stream_is_named_in_the_error(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]],
) -> None:
    store = make_stream_store(None)
    with pytest.raises(StreamNotEnabledError, match=store.table_name) as raised:
        iter_changes(store)
    assert raised.value.table_name == store.table_name


def test_an_undecodable_image_raises_or_is_passed_to_on_error(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]], stream_backend: Backend
) -> None:
    store = make_stream_store()
    client = stream_backend.client()
    client.put_item(
        TableName=store.table_name,
        Item={"sagaName": {"S": NAME}, "sagaId": {"S": "bad"}, "version": {"S": "x"}},
    )
    store.insert(NAME, "good", OrderSaga())
    stream = iter_changes(store)
    with pytest.raises(SagaDataError, match="version"):
        next(stream)
    with pytest.raises(SagaDataError):  # the checkpoint stays before the bad record
        next(stream)
    assert all(p["sequence_number"] is None for p in stream.checkpoint["shards"].values())

    failed: list[str] = []
    accepting = iter_changes(store, on_error=lambda record, exc: failed.append(exc.field))  # type: ignore[attr-defined]
    assert [c.correlation_id for c in accepting] == ["good"]
    assert failed == ["version"]
    assert accepting.skipped == 1


def test_the_asyncio_store_is_accepted(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]], stream_backend: Backend
) -> None:
    store = make_stream_store()
    store.insert(NAME, "o-1", OrderSaga())
    aio = AsyncDynamoDBSagaStore(
        OrderSaga, **stream_backend.options({"table_name": store.table_name})
    )
    changes = list(iter_changes(aio))
    assert [c.kind for c in changes] == ["started"]
    assert decode_record(changes[0].record, aio) == changes[0]


@pytest.fixture(scope="module")
def quiet_dynamodb_local() -> Iterator[str]:
    """A DynamoDB Local of this module's own: its TTL sweep walks every table of the server,
    and on the session's server, after the whole suite's tables, an expired item can wait
    for longer than a test should."""
    with serve_dynamodb_local() as endpoint:
        yield endpoint


@pytest.mark.ddblocal
def test_ttl_expiry_reads_back_as_expired_on_dynamodb_local(quiet_dynamodb_local: str) -> None:
    """DynamoDB Local deletes expired items within seconds and records them with the event
    name ``UNKNOWN_TO_SDK_VERSION`` (no ``userIdentity``); read as ``expired``."""
    backend = Backend("dynamodb-local", quiet_dynamodb_local, max_item_bytes=409_600)
    store = backend.store(OrderSaga, table_name=f"stream-ttl-{uuid.uuid4().hex[:8]}")
    create_table(store, stream_view_type="NEW_AND_OLD_IMAGES")
    try:
        state = OrderSaga(ttl=datetime.now(timezone.utc) - timedelta(hours=1))
        store.insert(NAME, "expiring", state)
        stream = iter_changes(store, follow=True, max_seconds=60, max_backoff_seconds=0.5)
        kinds = []
        for change in stream:
            kinds.append(change.kind)
            if change.kind == "expired":
                assert isinstance(change.old, OrderSaga)
                assert change.old.saga_id == state.saga_id
                break
        stream.close()
        assert kinds == ["started", "expired"]
    finally:
        backend.client().delete_table(TableName=store.table_name)


@pytest.mark.ddblocal
def test_an_expired_iterator_is_renewed_after_the_last_change(
    dynamodb_local_endpoint: str,
) -> None:
    """DynamoDB Local answers an iterator older than 15 minutes with
    ExpiredIteratorException; the reader gets a new one after the last sequence number."""
    backend = Backend("dynamodb-local", dynamodb_local_endpoint, max_item_bytes=409_600)
    store = backend.store(OrderSaga, table_name=f"stream-exp-{uuid.uuid4().hex[:8]}")
    create_table(store, stream_view_type="NEW_AND_OLD_IMAGES")
    try:
        store.insert(NAME, "o-1", OrderSaga())
        store.insert(NAME, "o-2", OrderSaga())
        client = AgingClient(streams_client(store))
        stream = iter_changes(store, client=client)
        first = next(stream)
        store.insert(NAME, "o-3", OrderSaga())
        client.age_next = True  # the iterator the next page returns is 16 minutes old
        rest = list(stream)
        assert [c.correlation_id for c in [first, *rest]] == ["o-1", "o-2", "o-3"]
        assert client.expired == 1
        # Renewed after the last change returned, so nothing is read twice or skipped.
        assert client.positions[-1] == ("AFTER_SEQUENCE_NUMBER", rest[-1].sequence_number)
    finally:
        backend.client().delete_table(TableName=store.table_name)


class AgingClient:
    """A real streams client whose next iterator can be made to look 16 minutes old
    (DynamoDB Local's iterators carry their creation time in milliseconds)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.age_next = False
        self.expired = 0
        self.positions: list[tuple[str, str | None]] = []

    def describe_stream(self, **request: Any) -> Any:
        return self.client.describe_stream(**request)

    def get_shard_iterator(self, **request: Any) -> Any:
        self.positions.append((request["ShardIteratorType"], request.get("SequenceNumber")))
        return self.client.get_shard_iterator(**request)

    def get_records(self, **request: Any) -> Any:
        try:
            page = self.client.get_records(**request)
        except self.client.exceptions.ExpiredIteratorException:
            self.expired += 1
            raise
        if self.age_next and page.get("NextShardIterator"):
            self.age_next = False
            page["NextShardIterator"] = _aged(page["NextShardIterator"])
        return page

    def close(self) -> None:
        self.client.close()


def _aged(iterator: str) -> str:
    import base64

    prefix, version, blob = iterator.split("|")
    shard, sequence, created = base64.b64decode(blob).decode().split("|")
    old = str(int(created) - 16 * 60 * 1000).zfill(len(created))
    return "|".join(
        [prefix, version, base64.b64encode(f"{shard}|{sequence}|{old}".encode()).decode()]
    )


def test_gaps_are_reported_when_a_checkpoint_shard_is_gone(
    make_stream_store: Callable[..., DynamoDBSagaStore[Any]],
) -> None:
    store = make_stream_store()
    store.insert(NAME, "o-1", OrderSaga())
    stream = iter_changes(store)
    list(stream)
    checkpoint = json.loads(json.dumps(stream.checkpoint))
    checkpoint["shards"]["shardId-00000000000000000000-trimmed"] = {
        "sequence_number": "1",
        "start": "trim_horizon",
        "finished": False,
    }
    gaps: list[StreamGap] = []
    store.insert(NAME, "o-2", OrderSaga())
    resumed = iter_changes(store, checkpoint=checkpoint, on_gap=gaps.append)
    assert [c.correlation_id for c in resumed] == ["o-2"]
    assert [(g.reason, g.shard_id) for g in gaps] == [
        ("trimmed", "shardId-00000000000000000000-trimmed")
    ]


def test_changes_are_saga_changes(make_stream_store: Callable[..., DynamoDBSagaStore[Any]]) -> None:
    store = make_stream_store("NEW_IMAGE")
    live(store)
    changes = list(iter_changes(store))
    assert all(isinstance(c, SagaChange) for c in changes)
    assert [c.kind for c in changes] == ["started", "updated", "updated", "updated", "deleted"]
    assert all(c.old is None for c in changes)
    assert [c.new is not None for c in changes] == [True, True, True, True, False]
