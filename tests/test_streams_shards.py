"""Reading several shards: a recorded multi-shard stream answered by a fake Streams client.

DynamoDB Local and moto keep one shard per stream, so the shard lineage (parents, children,
paginated DescribeStream), expiring iterators, trimmed records and replaced streams are
played here by ``FakeStreams``, which answers as the Streams API does. The table itself (and
its DescribeTable) is a real one on moto.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from saga_store_pynamo import DynamoDBSagaStore, create_table
from saga_store_pynamo.moto import atomic_moto
from saga_store_pynamo.streams import StreamGap, StreamGapError, iter_changes
from tests.conftest import CREDENTIALS, REGION
from tests.models import OrderSaga

NAME = "OrderSaga"
OLD_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-11-29T00:00:00.000"


def record(shard_id: str, sequence: int) -> dict[str, Any]:
    """A Streams API record: saga ``<shard>-<sequence>`` started."""
    saga_id = f"{shard_id}-{sequence}"
    item = {
        "sagaName": {"S": NAME},
        "sagaId": {"S": saga_id},
        "correlationId": {"S": saga_id},
        "version": {"N": "0"},
    }
    return {
        "eventID": saga_id,
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": {
            "Keys": {"sagaName": item["sagaName"], "sagaId": item["sagaId"]},
            "NewImage": item,
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }


def error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (recorded)"}}, operation)


class FakeStreams:
    """A DynamoDB Streams client over recorded shards.

    ``streams`` maps a stream ARN to its shards as DescribeStream lists them (any order),
    each with its records; a shard with ``EndingSequenceNumber`` is closed. DescribeStream
    pages hold ``page_size`` shards; GetRecords pages hold ``page_size`` records.
    """

    def __init__(self, streams: dict[str, list[dict[str, Any]]], page_size: int = 2) -> None:
        self.streams = streams
        self.page_size = page_size
        self.calls: list[tuple[str, Any]] = []
        #: Iterator strings that answer ExpiredIteratorException once.
        self.expire: set[str] = set()
        #: (shard, sequence) positions older than the retention: TrimmedDataAccessException.
        self.trimmed: set[tuple[str, str]] = set()
        self.closed = False
        self.status = "ENABLED"

    def _shard(self, arn: str, shard_id: str) -> dict[str, Any]:
        for shard in self.streams.get(arn, []):
            if shard["ShardId"] == shard_id:
                return shard
        raise error("ResourceNotFoundException", "GetShardIterator")

    def describe_stream(
        self, StreamArn: str, ExclusiveStartShardId: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(("DescribeStream", ExclusiveStartShardId))
        if StreamArn not in self.streams:
            raise error("ResourceNotFoundException", "DescribeStream")
        shards = [{k: v for k, v in s.items() if k != "records"} for s in self.streams[StreamArn]]
        start = 0
        if ExclusiveStartShardId is not None:
            start = [s["ShardId"] for s in shards].index(ExclusiveStartShardId) + 1
        page = shards[start : start + self.page_size]
        description: dict[str, Any] = {
            "StreamArn": StreamArn,
            "StreamStatus": self.status,
            "Shards": page,
        }
        if start + self.page_size < len(shards):
            description["LastEvaluatedShardId"] = page[-1]["ShardId"]
        return {"StreamDescription": description}

    def get_shard_iterator(
        self, StreamArn: str, ShardId: str, ShardIteratorType: str, SequenceNumber: str = ""
    ) -> dict[str, Any]:
        self.calls.append(("GetShardIterator", (ShardId, ShardIteratorType, SequenceNumber)))
        shard = self._shard(StreamArn, ShardId)
        numbers = [r["dynamodb"]["SequenceNumber"] for r in shard["records"]]
        if ShardIteratorType == "TRIM_HORIZON":
            index = 0
        elif ShardIteratorType == "LATEST":
            index = len(numbers)
        else:
            if (ShardId, SequenceNumber) in self.trimmed:
                raise error("TrimmedDataAccessException", "GetShardIterator")
            index = numbers.index(SequenceNumber) + 1
        return {"ShardIterator": f"{StreamArn}|{ShardId}|{index}|{uuid.uuid4().hex[:6]}"}

    def get_records(self, ShardIterator: str) -> dict[str, Any]:
        arn, shard_id, index_text, _ = ShardIterator.split("|")
        self.calls.append(("GetRecords", (shard_id, int(index_text))))
        if ShardIterator in self.expire:
            self.expire.discard(ShardIterator)
            raise error("ExpiredIteratorException", "GetRecords")
        shard = self._shard(arn, shard_id)
        index = int(index_text)
        page = shard["records"][index : index + self.page_size]
        end = index + len(page)
        closed = "EndingSequenceNumber" in shard["SequenceNumberRange"]
        response: dict[str, Any] = {"Records": page}
        if not (closed and end >= len(shard["records"])):
            response["NextShardIterator"] = f"{arn}|{shard_id}|{end}|{uuid.uuid4().hex[:6]}"
        return response

    def close(self) -> None:
        self.closed = True


def shard(
    shard_id: str, first: int, count: int, *, parent: str | None = None, closed: bool = True
) -> dict[str, Any]:
    numbers: dict[str, str] = {"StartingSequenceNumber": f"{first:021d}"}
    if closed:
        numbers["EndingSequenceNumber"] = f"{first + count - 1:021d}"
    description: dict[str, Any] = {"ShardId": shard_id, "SequenceNumberRange": numbers}
    if parent is not None:
        description["ParentShardId"] = parent
    description["records"] = [record(shard_id, first + i) for i in range(count)]
    return description


def lineage() -> list[dict[str, Any]]:
    """A split: parent P (closed) -> C1 (closed) -> G (open), and P -> C2 (open); listed with
    children before parents, as DescribeStream does not promise an order."""
    return [
        shard("G", 300, 1, parent="C1", closed=False),
        shard("C2", 210, 2, parent="P", closed=False),
        shard("P", 100, 3),
        shard("C1", 200, 1, parent="P"),
    ]


IN_ORDER = ["P-100", "P-101", "P-102", "C1-200", "C2-210", "C2-211", "G-300"]


@pytest.fixture
def store() -> Iterator[DynamoDBSagaStore[Any]]:
    with atomic_moto():
        store = DynamoDBSagaStore(
            OrderSaga, table_name="sagas-shards", region=REGION, credentials=CREDENTIALS
        )
        create_table(store, stream_view_type="NEW_AND_OLD_IMAGES")
        yield store


def arn_of(store: DynamoDBSagaStore[Any]) -> str:
    table = store._dispatch("DescribeTable", {"TableName": store.table_name})["Table"]
    arn: str = table["LatestStreamArn"]
    return arn


def ids(changes: Any) -> list[str]:
    return [c.saga_id for c in changes]


def test_parents_are_read_before_children_across_describe_pages(
    store: DynamoDBSagaStore[Any],
) -> None:
    fake = FakeStreams({arn_of(store): lineage()})
    stream = iter_changes(store, client=fake)
    assert ids(stream) == IN_ORDER
    assert stream.gaps == []
    assert not stream.timed_out
    describe_pages = [c for c in fake.calls if c[0] == "DescribeStream"]
    assert describe_pages[:2] == [("DescribeStream", None), ("DescribeStream", "C2")]
    assert not fake.closed  # a client passed in is the caller's to close
    positions = stream.checkpoint["shards"]
    assert positions["P"] == {
        "sequence_number": f"{102:021d}",
        "start": "trim_horizon",
        "finished": True,
    }
    assert positions["C2"]["finished"] is False


def test_an_expired_iterator_is_renewed_after_the_last_record(
    store: DynamoDBSagaStore[Any],
) -> None:
    fake = FakeStreams({arn_of(store): lineage()})
    stream = iter_changes(store, client=fake)
    assert ids([next(stream), next(stream)]) == ["P-100", "P-101"]
    # The next page's iterator is now older than 15 minutes.
    next_iterator_calls = [c for c in fake.calls if c[0] == "GetRecords"]
    assert next_iterator_calls == [("GetRecords", ("P", 0))]
    original_get_records = fake.get_records

    def expire_once(ShardIterator: str) -> dict[str, Any]:
        fake.expire.add(ShardIterator)
        fake.get_records = original_get_records  # type: ignore[method-assign]
        return original_get_records(ShardIterator)

    fake.get_records = expire_once  # type: ignore[method-assign]
    assert ids(stream) == IN_ORDER[2:]
    renewals = [c for c in fake.calls if c[0] == "GetShardIterator" and c[1][0] == "P"]
    assert renewals[-1] == ("GetShardIterator", ("P", "AFTER_SEQUENCE_NUMBER", f"{101:021d}"))


def test_checkpoint_resume_across_shards_has_no_duplicates(
    store: DynamoDBSagaStore[Any],
) -> None:
    fake = FakeStreams({arn_of(store): lineage()})
    seen: list[str] = []
    saved: str | None = None
    for take in (1, 3, 1, 1, 10):  # each run reads a few changes, then saves its checkpoint
        stream = iter_changes(
            store, client=fake, checkpoint=None if saved is None else json.loads(saved)
        )
        for change in itertools.islice(stream, take):
            seen.append(change.saga_id)
        saved = json.dumps(stream.checkpoint)
    assert seen == IN_ORDER


def test_trimmed_records_are_reported_as_a_gap_and_reading_goes_on(
    store: DynamoDBSagaStore[Any],
) -> None:
    fake = FakeStreams({arn_of(store): lineage()})
    first = iter_changes(store, client=fake)
    assert ids([next(first)]) == ["P-100"]
    checkpoint = first.checkpoint
    fake.trimmed.add(("P", f"{100:021d}"))
    gaps: list[StreamGap] = []
    resumed = iter_changes(store, client=fake, checkpoint=checkpoint, on_gap=gaps.append)
    rest = ids(resumed)
    assert [(g.reason, g.shard_id, g.after_sequence_number) for g in gaps] == [
        ("trimmed", "P", f"{100:021d}")
    ]
    assert rest == IN_ORDER  # from the oldest record still kept: here, all of them


def test_a_gap_raises_without_on_gap(store: DynamoDBSagaStore[Any]) -> None:
    fake = FakeStreams({arn_of(store): lineage()})
    first = iter_changes(store, client=fake)
    next(first)
    fake.trimmed.add(("P", f"{100:021d}"))
    resumed = iter_changes(store, client=fake, checkpoint=first.checkpoint)
    with pytest.raises(StreamGapError, match="trimmed") as raised:
        next(resumed)
    assert raised.value.gap.shard_id == "P"


def test_shards_trimmed_since_the_checkpoint_are_gaps(store: DynamoDBSagaStore[Any]) -> None:
    arn = arn_of(store)
    fake = FakeStreams({arn: lineage()})
    first = iter_changes(store, client=fake)
    assert ids([next(first)]) == ["P-100"]
    checkpoint = first.checkpoint
    # A day later P and C1 are trimmed; G (C1's child) was never read.
    fake.streams[arn] = [s for s in lineage() if s["ShardId"] in ("G", "C2")]
    gaps: list[StreamGap] = []
    checkpoint["shards"] = {"P": checkpoint["shards"]["P"]}
    resumed = iter_changes(store, client=fake, checkpoint=checkpoint, on_gap=gaps.append)
    assert sorted((g.reason, g.shard_id) for g in gaps) == [
        ("parent-trimmed", "G"),
        ("trimmed", "P"),
    ]
    assert ids(resumed) == ["C2-210", "C2-211", "G-300"]


def test_a_replaced_stream_is_read_to_its_end_then_reported(
    store: DynamoDBSagaStore[Any],
) -> None:
    new_arn = arn_of(store)
    fake = FakeStreams({OLD_ARN: [shard("A", 10, 3)], new_arn: [shard("N", 20, 1, closed=False)]})
    checkpoint = {
        "format": "saga-store-pynamo/stream-checkpoint/1",
        "table_name": store.table_name,
        "stream_arn": OLD_ARN,
        "stream_label": "2026-11-29T00:00:00.000",
        "shards": {
            "A": {"sequence_number": f"{10:021d}", "start": "trim_horizon", "finished": False}
        },
    }
    events: list[str] = []
    stream = iter_changes(
        store,
        client=fake,
        checkpoint=checkpoint,
        on_gap=lambda gap: events.append(f"gap:{gap.reason}"),
    )
    assert stream.stream_arn == OLD_ARN
    for change in stream:
        events.append(change.saga_id)
    assert events == ["A-11", "A-12", "gap:stream-replaced", "N-20"]
    assert stream.checkpoint["stream_arn"] == new_arn
    assert stream.checkpoint["stream_label"] == new_arn.rsplit("/", 1)[-1]


def test_follow_false_is_bounded_in_time(store: DynamoDBSagaStore[Any]) -> None:
    fake = FakeStreams({arn_of(store): lineage()})
    stream = iter_changes(store, client=fake, max_seconds=5.0)
    clock = iter([1.0, 2.0, 9.0])  # past the 5-second bound after the first page
    stream._started = 0.0
    stream._clock = lambda: next(clock, 9.0)
    assert ids(stream) == ["P-100", "P-101"]  # the second page is never read
    assert stream.timed_out


@pytest.mark.parametrize(
    ("checkpoint", "field"),
    [
        ({"format": "other"}, "checkpoint"),
        ("text", "checkpoint"),
    ],
)
def test_bad_checkpoints_are_refused(
    store: DynamoDBSagaStore[Any], checkpoint: Any, field: str
) -> None:
    from saga_store_pynamo import SagaValidationError

    with pytest.raises(SagaValidationError) as raised:
        iter_changes(store, client=FakeStreams({}), checkpoint=checkpoint)
    assert raised.value.field == field


def test_a_checkpoint_of_another_table_is_refused(store: DynamoDBSagaStore[Any]) -> None:
    from saga_store_pynamo import SagaValidationError

    fake = FakeStreams({arn_of(store): lineage()})
    checkpoint = iter_changes(store, client=fake).checkpoint
    checkpoint["table_name"] = "another-table"
    with pytest.raises(SagaValidationError, match="another-table"):
        iter_changes(store, client=fake, checkpoint=checkpoint)


def test_follow_waits_for_the_next_shard_of_an_enabled_stream(
    store: DynamoDBSagaStore[Any],
) -> None:
    arn = arn_of(store)
    fake = FakeStreams({arn: [shard("P", 100, 1)]})  # closed; its child is not listed yet
    stream = iter_changes(store, client=fake, follow=True, max_backoff_seconds=1.0)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 2:
            fake.streams[arn].append(shard("C", 200, 1, parent="P", closed=False))

    stream._sleep = pause
    assert ids(itertools.islice(stream, 2)) == ["P-100", "C-200"]
    assert pauses == [0.25, 0.5]


def test_follow_ends_once_a_disabled_stream_is_read(store: DynamoDBSagaStore[Any]) -> None:
    fake = FakeStreams({arn_of(store): [shard("P", 100, 2)]})
    fake.status = "DISABLED"
    stream = iter_changes(store, client=fake, follow=True)
    stream._sleep = lambda seconds: pytest.fail("no pause: nothing more can come")
    assert ids(stream) == ["P-100", "P-101"]
    assert not stream.timed_out
