"""The saga change feed: typed changes from the table's DynamoDB stream.

- ``decode_record(record, store)``: one stream record (as Lambda delivers it, or as the
  Streams API returns it) as a ``SagaChange``, whose ``old`` and ``new`` images are
  instances of the model the store serves for that saga name.
- ``handle_lambda_event(event, store, handler)``: a Lambda function's body for a DynamoDB
  event source with ``FunctionResponseTypes: [ReportBatchItemFailures]``.
- ``iter_changes(store, ...)``: read the stream through the Streams API, with a
  ``checkpoint`` to resume from, for audit trails, back-fills and ``saga-store tail``.

The stream must be enabled on the table (``create_table(store,
stream_view_type="NEW_AND_OLD_IMAGES")``); see ``docs/streams.md`` for which view gives which
kinds and images, and for the IAM actions (``iam_policy(store, streams=True)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

from typing_extensions import TypedDict

from ._stream_reader import CHECKPOINT_FORMAT, ChangeStream, iter_changes, streams_client
from ._stream_records import (
    CHANGE_KINDS,
    ChangeKind,
    SagaChange,
    StreamGap,
    StreamGapError,
    StreamNotEnabledError,
    decode_record,
    sync_store,
)
from ._telemetry import LOGGER_NAME
from .errors import SagaValidationError

__all__ = [
    "CHANGE_KINDS",
    "CHECKPOINT_FORMAT",
    "BatchItemFailure",
    "BatchResponse",
    "ChangeKind",
    "ChangeStream",
    "SagaChange",
    "StreamGap",
    "StreamGapError",
    "StreamNotEnabledError",
    "decode_record",
    "handle_lambda_event",
    "iter_changes",
    "streams_client",
]

_log = logging.getLogger(LOGGER_NAME)


class BatchItemFailure(TypedDict):
    """One failed record in a Lambda partial batch response."""

    itemIdentifier: str  # Lambda's key


class BatchResponse(TypedDict):
    """A Lambda partial batch response (``ReportBatchItemFailures``)."""

    batchItemFailures: list[BatchItemFailure]  # Lambda's key


def handle_lambda_event(
    event: Mapping[str, Any],
    store: Any,
    handler: Callable[[SagaChange], object],
    *,
    saga_names: Collection[str] | None = None,
) -> BatchResponse:
    """Call ``handler`` with each saga change of a DynamoDB Streams Lambda event, in order.

    Stops at the first record that fails (it cannot be decoded, or ``handler`` raises) and
    reports only that record, by its sequence number, in the partial batch response: Lambda
    then retries the batch from that record, so the changes before it are not handled twice
    and none after it is handled before it. Records that are not saga changes of this store
    (another table, another kind of item, a saga name outside ``saga_names``) are skipped.
    The failure is logged (``saga_store_pynamo`` logger, with its traceback); a record
    without a sequence number is reported as ``""``, which makes Lambda retry the whole batch.

    Return the result from the Lambda handler, with the event source mapping's
    ``FunctionResponseTypes`` set to ``["ReportBatchItemFailures"]`` (without it Lambda
    ignores the response and retries the whole batch only when the function raises).

    :param store: a ``DynamoDBSagaStore`` or ``AsyncDynamoDBSagaStore``; nothing is sent.
    :param handler: called with each ``SagaChange``; its return value is ignored.
    :returns: ``{"batchItemFailures": []}``, or the one failed record.
    :raises SagaValidationError: ``event`` has no ``Records`` list, or ``store`` is not a store.
    """
    sync = sync_store(store)
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise SagaValidationError(
            "event", "is not a DynamoDB Streams event: it has no 'Records' list"
        )
    for record in records:
        try:
            change = decode_record(record, sync, saga_names=saga_names)
            if change is not None:
                handler(change)
        except Exception:
            sequence_number = _sequence_number(record)
            _log.exception(
                "stream record %s of table %s failed; reported for retry",
                sequence_number or "(no sequence number)",
                sync.table_name,
            )
            return {"batchItemFailures": [{"itemIdentifier": sequence_number}]}
    return {"batchItemFailures": []}


def _sequence_number(record: Any) -> str:
    body = record.get("dynamodb") if isinstance(record, Mapping) else None
    number = body.get("SequenceNumber") if isinstance(body, Mapping) else None
    return number if isinstance(number, str) else ""
