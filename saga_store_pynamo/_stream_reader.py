"""Reading a table's DynamoDB stream through the Streams API: ``iter_changes``.

The reader finds the stream with DescribeTable (sent like the store's own requests), lists
its shards with DescribeStream and reads them with GetShardIterator and GetRecords through
botocore's ``dynamodbstreams`` client, built from the store's connection: its region, its
credentials, and its custom endpoint when it has one (else the endpoint botocore resolves for
Streams in that region).

Order: a shard is read only once its parent has been read to its end (or when its parent is
no longer listed), so a saga's changes, which live in one shard at a time, come in order.
Positions: the last sequence number returned per shard, kept in ``checkpoint``; a shard
iterator that expires (after 15 minutes) is renewed after that sequence number.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Literal, NoReturn

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from ._checksum import checked_client
from ._stream_records import (
    SagaChange,
    StreamGap,
    StreamGapError,
    StreamNotEnabledError,
    decode_record,
    sync_store,
)
from ._telemetry import LOGGER_NAME
from ._transport import moto_mock_active
from .errors import SagaStoreError, SagaStoreRequestError, SagaValidationError, TableNotFoundError
from .retry import is_retryable
from .store import DynamoDBSagaStore

__all__ = ["CHECKPOINT_FORMAT", "ChangeStream", "iter_changes", "streams_client"]

_log = logging.getLogger(LOGGER_NAME)

#: The ``format`` of the checkpoints this version writes and reads.
CHECKPOINT_FORMAT = "saga-store-pynamo/stream-checkpoint/1"
#: ``max_seconds`` when ``follow`` is False and none is given.
DEFAULT_MAX_SECONDS = 60.0
#: The first pause after a round of empty reads when following; it doubles up to the most.
FIRST_BACKOFF_SECONDS = 0.25

Start = Literal["trim_horizon", "latest"]
_STARTS = ("trim_horizon", "latest")
_UNSET: Any = object()


def streams_client(store: Any) -> Any:
    """A botocore ``dynamodbstreams`` client with the store's region, credentials and endpoint.

    Built from the store's connection's botocore session, which resolves the store's
    ``credentials`` option (refreshable ones keep refreshing) or botocore's default chain.
    While moto's in-process mock is active, account-id endpoints are turned off: botocore
    sends DescribeStream and GetShardIterator to ``{account}.streams-ddb.{region}...``, which
    moto 5.2 does not intercept.
    """
    sync = sync_store(store)
    # One botocore attempt: the reader retries by itself (``_call``), corrupted answers too.
    options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": 1}}
    if moto_mock_active():
        options["account_id_endpoint_mode"] = "disabled"
    try:
        config = Config(**options)
    except TypeError:  # a botocore without account-id endpoints
        options.pop("account_id_endpoint_mode", None)
        config = Config(**options)
    session = sync.connection.session
    return session.create_client(
        "dynamodbstreams",
        region_name=sync.region,
        endpoint_url=sync.endpoint,
        config=config,
    )


def _checked(client: Any) -> Any:
    """``client`` with every answer checked against its ``x-amz-crc32`` (``checked_client``);
    a stand-in without botocore's event system is used as it is.

    Without the check a Streams body corrupted on the way could parse as a page without
    records (botocore reads unparsable JSON as an error message), ending a shard early, or
    carry a wrong image.
    """
    return checked_client(client) if hasattr(client, "meta") else client


@dataclasses.dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    starting: str
    #: Closed when described: it has an end, and every record is already in it.
    closed: bool
    #: The last sequence number returned (or skipped) in this shard.
    last: str | None = None
    #: Where to start when nothing was returned yet: "trim_horizon" or "latest".
    start: Start = "trim_horizon"
    iterator: str | None = None
    #: Read to its end (a closed shard whose GetRecords returned no next iterator).
    finished: bool = False
    #: Returned an empty page since the last pause.
    caught_up: bool = False


class ChangeStream(Iterator[SagaChange]):
    """The changes of one table's stream, as ``iter_changes`` returns them.

    Iterate it for ``SagaChange`` objects. ``checkpoint`` covers every change returned so far:
    save it (it is JSON-serialisable) and pass it back as ``iter_changes(store,
    checkpoint=...)`` to go on after the last change you saw.
    """

    def __init__(
        self,
        store: DynamoDBSagaStore[Any],
        client: Any,
        *,
        owns_client: bool,
        start: Start,
        checkpoint: Mapping[str, Any] | None,
        follow: bool,
        saga_names: Collection[str] | None,
        max_seconds: float | None,
        idle_seconds: float | None,
        max_backoff_seconds: float,
        on_gap: Callable[[StreamGap], None] | None,
        on_error: Callable[[Mapping[str, Any], SagaStoreError], None] | None,
    ) -> None:
        self._store = store
        self._client = client
        self._owns_client = owns_client
        self._follow = follow
        self._saga_names = None if saga_names is None else frozenset(saga_names)
        self._on_gap = on_gap
        self._on_error = on_error
        self._max_backoff = max_backoff_seconds
        self._idle_seconds = idle_seconds
        self._sleep: Callable[[float], object] = time.sleep
        self._clock: Callable[[], float] = time.monotonic
        self._started = self._clock()
        self._max_seconds = max_seconds
        self._last_change = self._started
        self._backoff = FIRST_BACKOFF_SECONDS
        self._pending: collections.deque[tuple[_Shard, Mapping[str, Any]]] = collections.deque()
        self._shards: dict[str, _Shard] = {}
        self._stopped = False
        self._closed = False
        self._new_label = ""
        self._stream_status = "ENABLED"
        #: Every gap met so far (each was passed to ``on_gap``).
        self.gaps: list[StreamGap] = []
        #: Records read but not returned: other saga names, items that are not sagas,
        #: records ``on_error`` accepted.
        self.skipped = 0
        #: True when reading stopped at ``max_seconds`` or ``idle_seconds``, not caught up.
        self.timed_out = False

        table = self._describe_table()
        latest_arn = table.get("LatestStreamArn")
        enabled = bool(table.get("StreamSpecification", {}).get("StreamEnabled"))
        #: Streams still to read after the current one: (arn, gap to report when switching).
        self._next_streams: list[tuple[str, StreamGap | None]] = []
        if checkpoint is not None:
            arn, label, positions = _read_checkpoint(checkpoint, store.table_name)
            self.stream_arn = arn
            self.stream_label = label
            if arn != latest_arn or not enabled:
                self._queue_replacement(arn, latest_arn if enabled else None)
            self._load_shards(positions)
        else:
            if not latest_arn or not enabled:
                raise StreamNotEnabledError(store.table_name)
            self.stream_arn = latest_arn
            self.stream_label = str(table.get("LatestStreamLabel") or "")
            self._load_shards(None, start)

    # -- public ----------------------------------------------------------------------------

    @property
    def checkpoint(self) -> dict[str, Any]:
        """Where this read stands: JSON-serialisable, naming the table and the stream."""
        shards = {
            shard.shard_id: {
                "sequence_number": shard.last,
                "start": shard.start,
                "finished": shard.finished,
            }
            for shard in self._shards.values()
        }
        return {
            "format": CHECKPOINT_FORMAT,
            "table_name": self._store.table_name,
            "stream_arn": self.stream_arn,
            "stream_label": self.stream_label,
            "shards": shards,
        }

    def close(self) -> None:
        """Stop reading; the iterator ends and ``checkpoint`` stays valid."""
        self._stopped = True
        self._pending.clear()
        self._close_client()

    def _close_client(self) -> None:
        if self._owns_client and not self._closed:
            self._closed = True
            self._client.close()

    def __iter__(self) -> ChangeStream:
        return self

    def __next__(self) -> SagaChange:
        while True:
            while self._pending:
                shard, record = self._pending[0]
                try:
                    change = decode_record(record, self._store, saga_names=self._saga_names)
                except SagaStoreError as exc:
                    if self._on_error is None:
                        raise  # the record stays first: the checkpoint is before it
                    self._on_error(record, exc)
                    change = None
                self._pending.popleft()
                shard.last = _sequence_number(record) or shard.last
                if change is not None:
                    self._last_change = self._clock()
                    return change
                self.skipped += 1
            if self._stopped or not self._read_more():
                self._stopped = True
                self._close_client()
                raise StopIteration

    # -- reading ---------------------------------------------------------------------------

    def _read_more(self) -> bool:
        """Read pages until some records are pending; False when reading is over."""
        while not self._pending:
            now = self._clock()
            if self._max_seconds is not None and now - self._started >= self._max_seconds:
                self.timed_out = True
                return False
            shard = self._ready_shard()
            if shard is not None:
                self._read_page(shard)
                continue
            if all(s.finished for s in self._shards.values()):
                if self._next_streams:
                    self._switch_stream()
                    continue
                if self._refresh_shards():
                    continue  # children listed since
                if not self._follow or self._stream_status not in ("ENABLED", "ENABLING"):
                    return False  # the stream is closed (disabled) and read to its end
                # Following an enabled stream whose next shards are not listed yet: wait.
                if self._idle(now):
                    return False
                self._sleep(self._pause())
                continue
            if not self._follow:
                return False  # every open shard caught up
            if self._idle(now):
                return False
            self._sleep(self._pause())
            for each in self._shards.values():
                each.caught_up = False
        return True

    def _idle(self, now: float) -> bool:
        """Whether ``idle_seconds`` have passed without a change (then reading stops)."""
        if self._idle_seconds is not None and now - self._last_change >= self._idle_seconds:
            self.timed_out = True
            return True
        return False

    def _pause(self) -> float:
        pause = self._backoff
        self._backoff = min(self._backoff * 2, self._max_backoff)
        if self._max_seconds is not None:
            left = self._started + self._max_seconds - self._clock()
            pause = max(0.0, min(pause, left))
        return pause

    def _ready_shard(self) -> _Shard | None:
        """The first shard, parents first, that can be read now."""
        for shard in self._shards.values():
            if shard.finished or shard.caught_up:
                continue
            parent = self._shards.get(shard.parent_id or "")
            if parent is None or parent.finished:
                return shard
        return None

    def _read_page(self, shard: _Shard) -> None:
        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
            if shard.iterator is None:
                return
        try:
            page = self._call("GetRecords", ShardIterator=shard.iterator)
        except _Expired:
            shard.iterator = None  # renewed after shard.last on the next read
            return
        except _Trimmed as trimmed:
            self._gap("trimmed", shard, f"records after {shard.last} were trimmed: {trimmed}")
            shard.last, shard.start, shard.iterator = None, "trim_horizon", None
            return
        except _NotFound:
            self._shard_gone(shard)
            return
        records = page.get("Records") or []
        shard.iterator = page.get("NextShardIterator")
        for record in records:
            self._pending.append((shard, record))
        if records:
            self._backoff = FIRST_BACKOFF_SECONDS
        if shard.iterator is None:
            shard.finished = True
            if not shard.closed:
                self._refresh_shards()  # its children appear now
        elif not records:
            shard.caught_up = True

    def _iterator(self, shard: _Shard) -> str | None:
        """A new iterator for ``shard`` at its position; None when the shard is gone."""
        request: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if shard.last is not None:
            request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last)
        else:
            request["ShardIteratorType"] = shard.start.upper()
        try:
            iterator: str = self._call("GetShardIterator", **request)["ShardIterator"]
            return iterator
        except _Trimmed as trimmed:
            self._gap("trimmed", shard, f"records after {shard.last} were trimmed: {trimmed}")
            shard.last, shard.start = None, "trim_horizon"
            return self._iterator(shard)
        except _NotFound:
            self._shard_gone(shard)
            return None

    def _shard_gone(self, shard: _Shard) -> None:
        if shard.last is not None or shard.start == "trim_horizon":
            self._gap("trimmed", shard, f"shard {shard.shard_id} is no longer in the stream")
        shard.finished = True

    # -- shards and streams ----------------------------------------------------------------

    def _describe_table(self) -> dict[str, Any]:
        try:
            table: dict[str, Any] = self._store._dispatch(
                "DescribeTable", {"TableName": self._store.table_name}
            )["Table"]
        except TableNotFoundError as exc:
            raise StreamNotEnabledError(
                self._store.table_name, f"table {self._store.table_name!r} does not exist"
            ) from exc
        return table

    def _describe_stream(self, arn: str) -> list[dict[str, Any]] | None:
        """Every shard of a stream (following DescribeStream's pages); None when it is gone."""
        shards: list[dict[str, Any]] = []
        request: dict[str, Any] = {"StreamArn": arn}
        while True:
            try:
                description = self._call("DescribeStream", **request)["StreamDescription"]
            except _NotFound:
                return None
            shards.extend(description.get("Shards") or [])
            self._stream_status = str(description.get("StreamStatus") or "ENABLED")
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            request["ExclusiveStartShardId"] = last

    def _load_shards(
        self, positions: Mapping[str, Any] | None, start: Start = "trim_horizon"
    ) -> None:
        described = self._describe_stream(self.stream_arn)
        if described is None:
            if positions is None:
                raise StreamNotEnabledError(
                    self._store.table_name, f"stream {self.stream_arn!r} does not exist"
                )
            described = []
        listed = {d["ShardId"] for d in described}
        for d in _parents_first(described):
            shard = _new_shard(d)
            if positions is None:
                if start == "latest":
                    shard.start = "latest"
                    shard.finished = shard.closed  # the past is not read
            else:
                known = positions.get(shard.shard_id)
                if known is not None:
                    shard.last = known["sequence_number"]
                    shard.start = known["start"]
                    shard.finished = known["finished"]
                elif (
                    shard.parent_id
                    and shard.parent_id not in listed
                    and shard.parent_id not in positions
                ):
                    self._gap(
                        "parent-trimmed",
                        shard,
                        f"shard {shard.shard_id}'s parent {shard.parent_id} was trimmed "
                        "before it was read",
                    )
            self._shards[shard.shard_id] = shard
        if positions is not None:
            for shard_id, known in positions.items():
                if shard_id not in listed and not known["finished"]:
                    gone = _Shard(shard_id, None, "", closed=True, last=known["sequence_number"])
                    self._gap("trimmed", gone, f"shard {shard_id} is no longer in the stream")
                # A finished shard is kept while a listed shard names it as parent.
                if (
                    shard_id not in listed
                    and known["finished"]
                    and any(d.get("ParentShardId") == shard_id for d in described)
                ):
                    finished = _Shard(shard_id, None, "", closed=True, finished=True)
                    finished.last = known["sequence_number"]
                    self._shards = {shard_id: finished, **self._shards}
        if start == "latest" and positions is None:
            for shard in self._shards.values():  # fix the position now, not at the first read
                if not shard.finished:
                    shard.iterator = self._iterator(shard)

    def _refresh_shards(self) -> bool:
        """Add shards the stream lists now; True when there is something left to read."""
        described = self._describe_stream(self.stream_arn) or []
        for d in _parents_first(described):
            if d["ShardId"] not in self._shards:
                self._shards[d["ShardId"]] = _new_shard(d)
        return not all(s.finished for s in self._shards.values())

    def _queue_replacement(self, old_arn: str, new_arn: str | None) -> None:
        if new_arn is None:
            return  # the stream was disabled: read what is left of it, then stop
        label = new_arn.rsplit("/", 1)[-1]
        gap = StreamGap(
            reason="stream-replaced",
            stream_arn=old_arn,
            shard_id=None,
            after_sequence_number=None,
            message=(
                f"the table's stream was replaced ({old_arn} -> {new_arn}): changes made while "
                "no stream was enabled were never recorded"
            ),
        )
        self._next_streams.append((new_arn, gap))
        self._new_label = label

    def _switch_stream(self) -> None:
        arn, gap = self._next_streams.pop(0)
        if gap is not None:
            self._report(gap)
        self.stream_arn = arn
        self.stream_label = self._new_label
        self._shards = {}
        self._load_shards(None)

    # -- gaps and calls --------------------------------------------------------------------

    def _gap(self, reason: str, shard: _Shard, message: str) -> None:
        self._report(
            StreamGap(
                reason=reason,
                stream_arn=self.stream_arn,
                shard_id=shard.shard_id,
                after_sequence_number=shard.last,
                message=message,
            )
        )

    def _report(self, gap: StreamGap) -> None:
        self.gaps.append(gap)
        _log.warning("stream gap in table %s: %s", self._store.table_name, gap.message)
        if self._on_gap is None:
            raise StreamGapError(gap)
        self._on_gap(gap)

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        """One Streams API call, retried as the store's requests are (every call the reader
        makes only reads, and a shard iterator can be used again)."""
        method = getattr(self._client, _SNAKE[operation])
        policy = self._store.retry
        attempt = 1
        while True:
            try:
                response: dict[str, Any] = method(**request)
            except (ClientError, BotoCoreError, ResponseParserError) as exc:
                if attempt >= policy.max_attempts or not _retryable(exc):
                    _raise_translated(operation, exc)
                if policy.on_retry is not None:
                    policy.on_retry(operation, attempt, exc)
                _log.warning("%s failed (%s); retrying (attempt %d)", operation, exc, attempt + 1)
                self._sleep(policy.delay(attempt))
                attempt += 1
                continue
            if operation == "GetRecords" and not isinstance(response.get("Records"), list):
                # Never read an answer without records as an empty page: it would end a shard.
                raise SagaStoreRequestError(
                    operation, None, "the GetRecords answer has no Records list"
                )
            return response


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ResponseParserError):
        return True  # a body cut or garbled on the way, without a checksum to tell
    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
    return is_retryable(exc) or code in _STREAMS_RETRYABLE


#: Streams' own throttling code, besides the ones the store retries (``retry.is_retryable``).
_STREAMS_RETRYABLE = frozenset({"LimitExceededException"})


def _raise_translated(operation: str, exc: BaseException) -> NoReturn:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code")
        message = error.get("Message") or str(exc)
        if code == "ExpiredIteratorException":
            raise _Expired(message) from exc
        if code == "TrimmedDataAccessException":
            raise _Trimmed(message) from exc
        if code == "ResourceNotFoundException":
            raise _NotFound(message) from exc
        raise SagaStoreRequestError(operation, code, f"{code}: {message}") from exc
    raise SagaStoreRequestError(operation, None, str(exc)) from exc


_SNAKE = {
    "DescribeStream": "describe_stream",
    "GetShardIterator": "get_shard_iterator",
    "GetRecords": "get_records",
}


class _Expired(Exception):
    """ExpiredIteratorException: the shard iterator is older than 15 minutes."""


class _Trimmed(Exception):
    """TrimmedDataAccessException: the position is older than the stream's retention."""


class _NotFound(Exception):
    """ResourceNotFoundException: the stream or shard is gone."""


def _sequence_number(record: Mapping[str, Any]) -> str | None:
    body = record.get("dynamodb")
    number = body.get("SequenceNumber") if isinstance(body, Mapping) else None
    return number if isinstance(number, str) and number else None


def _new_shard(description: Mapping[str, Any]) -> _Shard:
    numbers = description.get("SequenceNumberRange") or {}
    return _Shard(
        shard_id=description["ShardId"],
        parent_id=description.get("ParentShardId"),
        starting=str(numbers.get("StartingSequenceNumber") or ""),
        closed="EndingSequenceNumber" in numbers,
    )


def _parents_first(described: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shards ordered so that each comes after its parent (when listed), oldest first."""

    def start(d: Mapping[str, Any]) -> int:
        text = (d.get("SequenceNumberRange") or {}).get("StartingSequenceNumber") or "0"
        try:
            return int(text)
        except ValueError:
            return 0

    by_id = {d["ShardId"]: d for d in described}
    ordered: list[dict[str, Any]] = []
    placed: set[str] = set()

    def place(d: dict[str, Any], seen: set[str]) -> None:
        shard_id = d["ShardId"]
        if shard_id in placed or shard_id in seen:
            return
        parent = by_id.get(d.get("ParentShardId") or "")
        if parent is not None:
            place(parent, seen | {shard_id})
        placed.add(shard_id)
        ordered.append(d)

    for d in sorted(described, key=start):
        place(d, set())
    return ordered


def _read_checkpoint(
    checkpoint: Any, table_name: str
) -> tuple[str, str, dict[str, dict[str, Any]]]:
    """The stream ARN, label and shard positions of a checkpoint, checked."""
    if not isinstance(checkpoint, Mapping) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise SagaValidationError(
            "checkpoint",
            f"must be a ChangeStream.checkpoint (a mapping with format {CHECKPOINT_FORMAT!r})",
        )
    if checkpoint.get("table_name") != table_name:
        raise SagaValidationError(
            "checkpoint",
            f"was taken on table {checkpoint.get('table_name')!r}, not {table_name!r}",
        )
    arn, label, shards = (
        checkpoint.get("stream_arn"),
        checkpoint.get("stream_label"),
        checkpoint.get("shards"),
    )
    if not isinstance(arn, str) or not isinstance(label, str) or not isinstance(shards, Mapping):
        raise SagaValidationError(
            "checkpoint", "needs 'stream_arn' and 'stream_label' (str) and 'shards' (a mapping)"
        )
    positions: dict[str, dict[str, Any]] = {}
    for shard_id, position in shards.items():
        sequence = position.get("sequence_number") if isinstance(position, Mapping) else None
        start = position.get("start") if isinstance(position, Mapping) else None
        finished = position.get("finished") if isinstance(position, Mapping) else None
        if (
            not isinstance(shard_id, str)
            or not (sequence is None or isinstance(sequence, str))
            or start not in _STARTS
            or not isinstance(finished, bool)
        ):
            raise SagaValidationError(
                f"checkpoint['shards'][{shard_id!r}]",
                "must be {'sequence_number': str or None, 'start': 'trim_horizon' or "
                "'latest', 'finished': bool}",
            )
        positions[shard_id] = {"sequence_number": sequence, "start": start, "finished": finished}
    return arn, label, positions


def iter_changes(
    store: Any,
    *,
    start: Start = "trim_horizon",
    checkpoint: Mapping[str, Any] | None = None,
    follow: bool = False,
    saga_names: Collection[str] | None = None,
    max_seconds: float | None = _UNSET,
    idle_seconds: float | None = None,
    max_backoff_seconds: float = 5.0,
    on_gap: Callable[[StreamGap], None] | None = None,
    on_error: Callable[[Mapping[str, Any], SagaStoreError], None] | None = None,
    client: Any = None,
) -> ChangeStream:
    """The saga changes in the store's table's DynamoDB stream, shard by shard, parents first.

    Finds the stream (one DescribeTable), lists its shards and positions the reader before
    returning, so that with ``start="latest"`` every change made after this call is read.

    :param store: a ``DynamoDBSagaStore`` (or an ``AsyncDynamoDBSagaStore``, whose ``sync``
        store is used; the reading itself blocks).
    :param start: ``"trim_horizon"`` (the oldest record kept, up to 24 hours back) or
        ``"latest"`` (changes from now on); ignored with a ``checkpoint``.
    :param checkpoint: a ``ChangeStream.checkpoint`` saved earlier: go on after the last
        change it covers. Shards created since are read from their start.
    :param follow: keep reading new changes, pausing after empty reads (from 0.25 s,
        doubling up to ``max_backoff_seconds``). Without it, reading ends once every shard
        has been read to its end or has returned an empty page (caught up).
    :param saga_names: only changes of these saga names (others count in ``skipped``).
    :param max_seconds: stop reading after this many seconds (``timed_out`` is then True);
        default 60 without ``follow``, no limit with it.
    :param idle_seconds: with ``follow``, stop after this long without a change.
    :param on_gap: called with each ``StreamGap`` (records trimmed before they were read, a
        replaced stream); without it a gap raises ``StreamGapError``.
    :param on_error: called with a record and the error when a record cannot be decoded
        (``SagaDataError``, a malformed record), and the record is skipped; without it the
        error is raised and the checkpoint stays before that record.
    :param client: a botocore ``dynamodbstreams`` client to read with (default:
        ``streams_client(store)``, closed when reading ends).
    :raises StreamNotEnabledError: the table has no enabled stream (and no checkpoint
        names one), or does not exist.
    :raises StreamGapError: a gap met while positioning the reader, without ``on_gap``.
    :raises SagaValidationError: a bad option or checkpoint.
    """
    sync = sync_store(store)
    if start not in _STARTS:
        raise SagaValidationError("start", f"must be one of {_STARTS}, got {start!r}")
    if not isinstance(follow, bool):
        raise SagaValidationError("follow", f"must be True or False, got {follow!r}")
    if max_seconds is _UNSET:
        max_seconds = None if follow else DEFAULT_MAX_SECONDS
    for field, value in (("max_seconds", max_seconds), ("idle_seconds", idle_seconds)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
        ):
            raise SagaValidationError(field, f"must be a number of seconds >= 0, got {value!r}")
    if (
        isinstance(max_backoff_seconds, bool)
        or not isinstance(max_backoff_seconds, (int, float))
        or max_backoff_seconds <= 0
    ):
        raise SagaValidationError(
            "max_backoff_seconds", f"must be a number of seconds > 0, got {max_backoff_seconds!r}"
        )
    if saga_names is not None and (
        isinstance(saga_names, str) or not all(isinstance(n, str) for n in saga_names)
    ):
        raise SagaValidationError("saga_names", "must be a collection of str (not one str)")
    owns_client = client is None
    return ChangeStream(
        sync,
        _checked(streams_client(sync) if client is None else client),
        owns_client=owns_client,
        start=start,
        checkpoint=checkpoint,
        follow=follow,
        saga_names=saga_names,
        max_seconds=max_seconds,
        idle_seconds=idle_seconds,
        max_backoff_seconds=float(max_backoff_seconds),
        on_gap=on_gap,
        on_error=on_error,
    )
