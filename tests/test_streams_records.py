"""Decoding stream records (Lambda and Streams API shapes) and the Lambda batch helper.

No backend: decoding sends nothing, so the records are built here as each source sends them.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timezone
from typing import Any

import pytest
from dateutil.tz import tzlocal
from pynamodb.attributes import BinaryAttribute, BinarySetAttribute

from saga_store_pynamo import DynamoDBSagaStore, SagaDataError, SagaModel, SagaValidationError
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore
from saga_store_pynamo.streams import (
    SagaChange,
    decode_record,
    handle_lambda_event,
)
from tests.conftest import CREDENTIALS, REGION
from tests.models import OrderSaga, PaymentSaga

NAME = "OrderSaga"
TABLE = "orders-table"
ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/stream/2026-11-30T00:00:00.000"


@pytest.fixture
def store() -> DynamoDBSagaStore[Any]:
    return DynamoDBSagaStore(
        OrderSaga,
        models={"PaymentSaga": PaymentSaga},
        table_name=TABLE,
        region=REGION,
        credentials=CREDENTIALS,
    )


def image(
    saga_id: str = "s-1", version: int = 0, completed: bool = False, **extra: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "sagaName": {"S": extra.pop("saga_name", NAME)},
        "sagaId": {"S": saga_id},
        "correlationId": {"S": "order-1"},
        "version": {"N": str(version)},
        "isCompleted": {"BOOL": completed},
        "createdAt": {"S": "2026-11-30T10:00:00.000000+0000"},
        "updatedAt": {"S": f"2026-11-30T10:00:0{version}.000000+0000"},
        "sagaIncarnation": {"S": "token-a"},
        "status": {"S": "pending"},
    }
    item.update(extra)
    return item


def lambda_record(
    event: str,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    sequence: str = "100",
    view: str = "NEW_AND_OLD_IMAGES",
    **fields: Any,
) -> dict[str, Any]:
    """A record as the Lambda runtime delivers it."""
    source = old or new or image()
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": 1796040000.0,
        "Keys": {"sagaName": source["sagaName"], "sagaId": source["sagaId"]},
        "SequenceNumber": sequence,
        "SizeBytes": 200,
        "StreamViewType": view,
    }
    if old is not None:
        body["OldImage"] = old
    if new is not None:
        body["NewImage"] = new
    record = {
        "eventID": f"e-{sequence}",
        "eventName": event,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": body,
        "eventSourceARN": ARN,
    }
    record.update(fields)
    return record


def api_record(record: dict[str, Any]) -> dict[str, Any]:
    """The same record as botocore returns it from GetRecords."""
    converted = copy.deepcopy(record)
    del converted["eventSourceARN"]
    seconds = converted["dynamodb"]["ApproximateCreationDateTime"]
    converted["dynamodb"]["ApproximateCreationDateTime"] = datetime.fromtimestamp(
        seconds, tzlocal()
    )
    identity = converted.pop("userIdentity", None)
    if identity is not None:
        converted["userIdentity"] = {
            "PrincipalId": identity["principalId"],
            "Type": identity["type"],
        }
    return converted


TTL_IDENTITY = {"principalId": "dynamodb.amazonaws.com", "type": "Service"}


@pytest.mark.parametrize("shape", ["lambda", "api"])
@pytest.mark.parametrize(
    ("record", "kind"),
    [
        (lambda_record("INSERT", new=image()), "started"),
        (lambda_record("MODIFY", old=image(), new=image(version=1)), "updated"),
        (lambda_record("MODIFY", old=image(), new=image(version=1, completed=True)), "completed"),
        (lambda_record("MODIFY", old=image(completed=True), new=image(version=1)), "reopened"),
        (
            lambda_record(
                "MODIFY", old=image(completed=True), new=image(version=1, completed=True)
            ),
            "updated",
        ),
        (lambda_record("REMOVE", old=image(version=4)), "deleted"),
        (lambda_record("REMOVE", old=image(version=4), userIdentity=TTL_IDENTITY), "expired"),
        (
            lambda_record(
                "REMOVE",
                old=image(version=4),
                userIdentity={"principalId": "someone", "type": "Service"},
            ),
            "deleted",
        ),
        # DynamoDB Local 3.3's TTL deletion record.
        (lambda_record("UNKNOWN_TO_SDK_VERSION", old=image(version=4)), "expired"),
    ],
)
def test_kinds_in_both_shapes(
    store: DynamoDBSagaStore[Any], record: dict[str, Any], kind: str, shape: str
) -> None:
    change = decode_record(record if shape == "lambda" else api_record(record), store)
    assert isinstance(change, SagaChange)
    assert change.kind == kind
    assert (change.saga_name, change.saga_id, change.correlation_id) == (NAME, "s-1", "order-1")
    assert change.event_time == datetime.fromtimestamp(1796040000, timezone.utc)
    assert change.event_time.tzinfo is timezone.utc
    assert change.sequence_number == "100"
    for which in ("old", "new"):
        state = getattr(change, which)
        has_image = f"{which.capitalize()}Image" in record["dynamodb"]
        assert (state is not None) == has_image
        if state is not None:
            assert isinstance(state, OrderSaga)
            assert state.saga_id == "s-1"


def test_version_is_the_new_image_s_then_the_old_one_s(store: DynamoDBSagaStore[Any]) -> None:
    modified = decode_record(lambda_record("MODIFY", old=image(), new=image(version=1)), store)
    removed = decode_record(lambda_record("REMOVE", old=image(version=4)), store)
    assert modified is not None
    assert modified.version == 1
    assert removed is not None
    assert removed.version == 4


def test_each_saga_name_gets_its_model(store: DynamoDBSagaStore[Any]) -> None:
    payment = image(saga_name="PaymentSaga", amount_cents={"N": "250"})
    change = decode_record(lambda_record("INSERT", new=payment), store)
    assert change is not None
    assert isinstance(change.new, PaymentSaga)
    assert change.new.amount_cents == 250
    # Any other name gets the store's default model, as get_by_id loads it.
    other = decode_record(lambda_record("INSERT", new=image(saga_name="Other")), store)
    assert other is not None
    assert type(other.new) is OrderSaga


def test_records_that_are_not_changes_of_the_store_are_skipped(
    store: DynamoDBSagaStore[Any],
) -> None:
    other_table = lambda_record(
        "INSERT", new=image(), eventSourceARN=ARN.replace(TABLE, "another-table")
    )
    assert decode_record(other_table, store) is None
    not_a_saga = lambda_record("INSERT", new=image())
    not_a_saga["dynamodb"]["Keys"] = {"pk": {"S": "lock#1"}}
    assert decode_record(not_a_saga, store) is None
    numeric_key = lambda_record("INSERT", new=image())
    numeric_key["dynamodb"]["Keys"]["sagaId"] = {"N": "1"}
    assert decode_record(numeric_key, store) is None
    assert decode_record(lambda_record("INSERT", new=image()), store, saga_names=["X"]) is None
    assert decode_record(lambda_record("SOMETHING", new=image()), store) is None


def test_keys_only_and_single_image_views(store: DynamoDBSagaStore[Any]) -> None:
    keys_only = lambda_record("MODIFY", view="KEYS_ONLY")
    change = decode_record(keys_only, store)
    assert change is not None
    assert (change.kind, change.old, change.new, change.version) == ("updated", None, None, None)
    assert change.correlation_id is None
    assert change.stream_view_type == "KEYS_ONLY"
    assert change.changed_fields() == {}
    new_only = decode_record(
        lambda_record("MODIFY", new=image(version=1, completed=True), view="NEW_IMAGE"), store
    )
    assert new_only is not None
    assert new_only.kind == "updated"  # a completion needs the old image to be seen
    assert new_only.new is not None
    assert new_only.new.is_completed


def test_changed_fields_leave_out_the_store_s_bookkeeping(store: DynamoDBSagaStore[Any]) -> None:
    old = image()
    new = image(version=1, status={"S": "paid"}, sagaWrite1={"S": "tok"}, unknownField={"N": "1"})
    change = decode_record(lambda_record("MODIFY", old=old, new=new), store)
    assert change is not None
    assert change.changed_fields() == {
        "status": ({"S": "pending"}, {"S": "paid"}),
        "unknownField": (None, {"N": "1"}),
    }
    started = decode_record(lambda_record("INSERT", new=image()), store)
    assert started is not None
    assert set(started.changed_fields()) == {
        "correlation_id",
        "is_completed",
        "created_at",
        "status",
    }


def test_malformed_records_and_bad_images_raise_named_errors(
    store: DynamoDBSagaStore[Any],
) -> None:
    with pytest.raises(SagaValidationError, match="record"):
        decode_record({"eventName": "INSERT"}, store)
    no_sequence = lambda_record("INSERT", new=image())
    del no_sequence["dynamodb"]["SequenceNumber"]
    with pytest.raises(SagaValidationError, match="SequenceNumber"):
        decode_record(no_sequence, store)
    bad = lambda_record("INSERT", new=image(version=1, total_cents={"S": "lots"}))
    with pytest.raises(SagaDataError) as raised:
        decode_record(bad, store)
    assert raised.value.saga_id == "s-1"
    with pytest.raises(SagaValidationError, match="store"):
        decode_record(lambda_record("INSERT", new=image()), object())  # type: ignore[arg-type]


def test_the_asyncio_store_decodes_alike(store: DynamoDBSagaStore[Any]) -> None:
    aio = AsyncDynamoDBSagaStore(
        OrderSaga, table_name=TABLE, region=REGION, credentials=CREDENTIALS
    )
    record = lambda_record("INSERT", new=image())
    assert decode_record(record, aio) == decode_record(record, store)


# -- the Lambda helper ---------------------------------------------------------------------


def batch() -> dict[str, Any]:
    return {
        "Records": [
            lambda_record("INSERT", new=image("a"), sequence="101"),
            lambda_record("MODIFY", old=image("a"), new=image("a", version=1), sequence="102"),
            lambda_record("INSERT", new=image("b"), sequence="103"),
        ]
    }


def test_a_clean_batch_reports_no_failures(store: DynamoDBSagaStore[Any]) -> None:
    seen: list[tuple[str, str]] = []
    result = handle_lambda_event(batch(), store, lambda c: seen.append((c.kind, c.saga_id)))
    assert result == {"batchItemFailures": []}
    assert seen == [("started", "a"), ("updated", "a"), ("started", "b")]


def test_a_broken_record_is_reported_alone_and_nothing_after_it_is_handled(
    store: DynamoDBSagaStore[Any], caplog: pytest.LogCaptureFixture
) -> None:
    event = batch()
    event["Records"][1]["dynamodb"]["NewImage"]["version"] = {"S": "not a number"}
    seen: list[str] = []
    with caplog.at_level(logging.ERROR, logger="saga_store_pynamo"):
        result = handle_lambda_event(event, store, lambda c: seen.append(c.sequence_number))
    assert result == {"batchItemFailures": [{"itemIdentifier": "102"}]}
    assert seen == ["101"]
    assert "102" in caplog.text


def test_a_failing_handler_is_reported_at_its_record(store: DynamoDBSagaStore[Any]) -> None:
    def handler(change: SagaChange) -> None:
        if change.saga_id == "b":
            raise RuntimeError("downstream is down")

    assert handle_lambda_event(batch(), store, handler) == {
        "batchItemFailures": [{"itemIdentifier": "103"}]
    }


def test_skipped_records_are_not_failures(store: DynamoDBSagaStore[Any]) -> None:
    event = batch()
    event["Records"][0]["eventSourceARN"] = ARN.replace(TABLE, "another-table")
    seen: list[str] = []
    result = handle_lambda_event(event, store, lambda c: seen.append(c.sequence_number))
    assert result == {"batchItemFailures": []}
    assert seen == ["102", "103"]


def test_a_record_without_sequence_number_fails_the_whole_batch(
    store: DynamoDBSagaStore[Any],
) -> None:
    event = batch()
    del event["Records"][2]["dynamodb"]["SequenceNumber"]
    assert handle_lambda_event(event, store, lambda c: None) == {
        "batchItemFailures": [{"itemIdentifier": ""}]
    }


def test_an_event_without_records_is_refused(store: DynamoDBSagaStore[Any]) -> None:
    with pytest.raises(SagaValidationError, match="Records"):
        handle_lambda_event({"detail": {}}, store, lambda c: None)


class BlobSaga(SagaModel):
    class Meta:
        table_name = TABLE
        region = REGION

    blob = BinaryAttribute(null=True, legacy_encoding=False)
    blobs = BinarySetAttribute(null=True, legacy_encoding=False)


def test_binary_values_load_as_bytes_in_both_shapes() -> None:
    # The Lambda runtime delivers binary as base64 text; the Streams API as bytes.
    store = DynamoDBSagaStore(BlobSaga, region=REGION, credentials=CREDENTIALS)
    as_text = image(saga_name="BlobSaga", blob={"B": "AAE="}, blobs={"BS": ["AAE=", "AgM="]})
    record = lambda_record("INSERT", new=as_text)
    untouched = copy.deepcopy(record)
    from_lambda = decode_record(record, store)
    assert record == untouched  # the caller's record is not changed
    as_bytes = image(
        saga_name="BlobSaga", blob={"B": b"\x00\x01"}, blobs={"BS": [b"\x00\x01", b"\x02\x03"]}
    )
    from_api = decode_record(api_record(lambda_record("INSERT", new=as_bytes)), store)
    for change in (from_lambda, from_api):
        assert change is not None
        assert isinstance(change.new, BlobSaga)
        assert change.new.blob == b"\x00\x01"
        assert change.new.blobs == {b"\x00\x01", b"\x02\x03"}


def test_binary_text_that_is_not_base64_is_a_data_error() -> None:
    store = DynamoDBSagaStore(BlobSaga, region=REGION, credentials=CREDENTIALS)
    record = lambda_record("INSERT", new=image(saga_name="BlobSaga", blob={"B": "not base64!"}))
    with pytest.raises(SagaDataError, match="base64") as caught:
        decode_record(record, store)
    assert caught.value.__cause__ is not None
