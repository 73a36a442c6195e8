"""DynamoDB's JSON wire format, without botocore's generic machinery: requests to bytes, bytes to
responses, and error responses to the errors botocore raises for them.

Sans-I/O: nothing here sends or receives. ``encode_request`` gives the body botocore's JSON
serializer would send for the same request dict, byte for byte (``json.dumps`` with its default
separators, blobs as base64 text); ``decode_response`` checks ``x-amz-crc32`` and gives what
botocore's JSON parser returns for the same response, or raises ``DynamoDBError``, a
``ClientError`` carrying the dict botocore's client would put on its error (modeled fields such
as a failed condition's ``Item`` included), so ``_dispatch`` and ``retry`` handle it unchanged.

botocore walks the service model's shapes for every value of every request. Here the shapes of
the supported operations are written out once (``_REQUEST_SHAPES``, ``_RESPONSE_SHAPES``,
``_ERROR_SHAPES``, pinned to botocore's model by tests/test_wire.py) and only the
AttributeValues are visited: their ``B`` and ``BS`` are the only blobs in these operations.

Where botocore would turn a corrupted success response into data, this module refuses it: a
success body that is empty, not UTF-8, not JSON or not an object raises
``CorruptResponseError`` (a ``ChecksumError``, retried like one), where botocore returns an
empty result (a GetItem would read as "no such item").
"""

from __future__ import annotations

import base64
import http.client
import json
import json.encoder
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, cast

from botocore.exceptions import ChecksumError, ClientError

from ._checksum import check_crc32

__all__ = [
    "API_VERSION_PREFIX",
    "SUPPORTED_OPERATIONS",
    "CorruptResponseError",
    "DynamoDBError",
    "decode_response",
    "encode_body",
    "encode_request",
    "parse_error",
    "target",
]

#: DynamoDB's ``targetPrefix``: ``X-Amz-Target`` is ``<prefix>.<Operation>``.
API_VERSION_PREFIX = "DynamoDB_20120810"

# A shape, written out: None is a scalar passed through; "AV" an AttributeValue; ("L", s) a
# list of s; ("M", s) a map of string to s; a dict a structure (member -> shape). Request
# shapes name only the members that hold AttributeValues (the rest is sent as it is);
# response shapes name every member, because botocore's parser drops unknown ones.
Shape: TypeAlias = str | tuple[str, "Shape"] | dict[str, "Shape"] | None

_AV = "AV"
_ATTRIBUTE_MAP: Shape = ("M", _AV)
_CONDITION: Shape = ("M", {"AttributeValueList": ("L", _AV)})
_EXPECTED: Shape = ("M", {"Value": _AV, "AttributeValueList": ("L", _AV)})

_REQUEST_SHAPES: dict[str, dict[str, Shape]] = {
    "GetItem": {"Key": _ATTRIBUTE_MAP},
    "PutItem": {
        "Item": _ATTRIBUTE_MAP,
        "Expected": _EXPECTED,
        "ExpressionAttributeValues": _ATTRIBUTE_MAP,
    },
    "UpdateItem": {
        "Key": _ATTRIBUTE_MAP,
        "AttributeUpdates": ("M", {"Value": _AV}),
        "Expected": _EXPECTED,
        "ExpressionAttributeValues": _ATTRIBUTE_MAP,
    },
    "DeleteItem": {
        "Key": _ATTRIBUTE_MAP,
        "Expected": _EXPECTED,
        "ExpressionAttributeValues": _ATTRIBUTE_MAP,
    },
    "Query": {
        "KeyConditions": _CONDITION,
        "QueryFilter": _CONDITION,
        "ExclusiveStartKey": _ATTRIBUTE_MAP,
        "ExpressionAttributeValues": _ATTRIBUTE_MAP,
    },
    "Scan": {
        "ScanFilter": _CONDITION,
        "ExclusiveStartKey": _ATTRIBUTE_MAP,
        "ExpressionAttributeValues": _ATTRIBUTE_MAP,
    },
}

_CAPACITY: Shape = {"ReadCapacityUnits": None, "WriteCapacityUnits": None, "CapacityUnits": None}
_CONSUMED_CAPACITY: Shape = {
    "TableName": None,
    "CapacityUnits": None,
    "ReadCapacityUnits": None,
    "WriteCapacityUnits": None,
    "Table": _CAPACITY,
    "LocalSecondaryIndexes": ("M", _CAPACITY),
    "GlobalSecondaryIndexes": ("M", _CAPACITY),
    "VectorIndexes": ("M", {"VectorSearchRequestBytes": None, "VectorWriteRequestBytes": None}),
}
_WRITE_OUTPUT: dict[str, Shape] = {
    "Attributes": _ATTRIBUTE_MAP,
    "ConsumedCapacity": _CONSUMED_CAPACITY,
    "ItemCollectionMetrics": {
        "ItemCollectionKey": _ATTRIBUTE_MAP,
        "SizeEstimateRangeGB": ("L", None),
    },
}
_READ_MANY_OUTPUT: dict[str, Shape] = {
    "Items": ("L", _ATTRIBUTE_MAP),
    "Count": None,
    "ScannedCount": None,
    "LastEvaluatedKey": _ATTRIBUTE_MAP,
    "ConsumedCapacity": _CONSUMED_CAPACITY,
}
_RESPONSE_SHAPES: dict[str, dict[str, Shape]] = {
    "GetItem": {"Item": _ATTRIBUTE_MAP, "ConsumedCapacity": _CONSUMED_CAPACITY},
    "PutItem": _WRITE_OUTPUT,
    "UpdateItem": _WRITE_OUTPUT,
    "DeleteItem": _WRITE_OUTPUT,
    "Query": _READ_MANY_OUTPUT,
    "Scan": _READ_MANY_OUTPUT,
}

# Every modeled error of the service, as botocore looks them up by code (not per operation).
_THROTTLING_REASONS: Shape = ("L", {"reason": None, "resource": None})
_ERROR_SHAPES: dict[str, dict[str, Shape]] = {
    **{
        code: {"message": None}
        for code in (
            "BackupInUseException",
            "BackupNotFoundException",
            "ContinuousBackupsUnavailableException",
            "DuplicateItemException",
            "ExportConflictException",
            "ExportNotFoundException",
            "GlobalTableAlreadyExistsException",
            "GlobalTableNotFoundException",
            "ImportConflictException",
            "ImportNotFoundException",
            "IndexNotFoundException",
            "InternalServerError",
            "InvalidExportTimeException",
            "InvalidRestoreTimeException",
            "ItemCollectionSizeLimitExceededException",
            "LimitExceededException",
            "PointInTimeRecoveryUnavailableException",
            "PolicyNotFoundException",
            "ReplicaAlreadyExistsException",
            "ReplicaNotFoundException",
            "ReplicatedWriteConflictException",
            "ResourceInUseException",
            "ResourceNotFoundException",
            "TableAlreadyExistsException",
            "TableInUseException",
            "TableNotFoundException",
            "TransactionConflictException",
        )
    },
    **{
        code: {"Message": None}
        for code in (
            "IdempotentParameterMismatchException",
            "TransactionInProgressException",
        )
    },
    "ConditionalCheckFailedException": {"message": None, "Item": _ATTRIBUTE_MAP},
    "ProvisionedThroughputExceededException": {
        "message": None,
        "ThrottlingReasons": _THROTTLING_REASONS,
    },
    "RequestLimitExceeded": {"message": None, "ThrottlingReasons": _THROTTLING_REASONS},
    "ThrottlingException": {"message": None, "throttlingReasons": _THROTTLING_REASONS},
    "TransactionCanceledException": {
        "Message": None,
        "CancellationReasons": ("L", {"Item": _ATTRIBUTE_MAP, "Code": None, "Message": None}),
    },
}

#: The operations ``encode_request`` and ``decode_response`` know; others go through botocore.
SUPPORTED_OPERATIONS = frozenset(_REQUEST_SHAPES)


class CorruptResponseError(ChecksumError):  # type: ignore[misc]
    """A success response whose body is not a JSON object: damaged on the way, like a checksum
    mismatch, and retried like one (the request reached DynamoDB)."""

    fmt = "DynamoDB's response body could not be read ({reason}): {excerpt}"


class DynamoDBError(ClientError):  # type: ignore[misc]
    """An error response, as the ``ClientError`` botocore's client raises for it.

    ``response`` is the dict botocore puts on its error: ``Error`` (``Code``, ``Message``),
    ``ResponseMetadata`` (``HTTPStatusCode``, ``HTTPHeaders``, ``RequestId``) and the error's
    modeled fields (a failed condition's ``Item`` when it was asked for).
    """

    def __reduce__(self) -> tuple[type[DynamoDBError], tuple[Any, str]]:
        # ClientError pickles as ClientError; keep the class.
        return type(self), (self.response, self.operation_name)

    @property
    def code(self) -> str:
        """The error code, ``__type`` after its last ``#`` (the status when there is none)."""
        return str(self.response["Error"]["Code"])

    @property
    def message(self) -> str:
        """The error message (``message`` or ``Message`` of the body)."""
        return str(self.response["Error"]["Message"])

    @property
    def status(self) -> int:
        """The HTTP status code."""
        return int(self.response["ResponseMetadata"]["HTTPStatusCode"])

    @property
    def item(self) -> dict[str, Any] | None:
        """The stored item a ``ConditionalCheckFailedException`` carries, if any."""
        item = self.response.get("Item")
        return item if isinstance(item, dict) else None


def target(operation: str) -> str:
    """The ``X-Amz-Target`` header of ``operation``."""
    return f"{API_VERSION_PREFIX}.{operation}"


# --- requests ------------------------------------------------------------------------------

# AttributeValue tags whose value is sent and received as it is.
_PLAIN_TAGS = frozenset({"S", "N", "SS", "NS", "NULL", "BOOL"})


def _encode_blob(value: bytes | bytearray | str) -> str:
    # As botocore's Serializer._get_base64: text is encoded as UTF-8 first.
    if isinstance(value, str):
        value = value.encode("utf-8")
    return base64.b64encode(value).decode("ascii")


def _encode_value(av: Mapping[str, Any]) -> Mapping[str, Any]:
    """A copy of one AttributeValue with its blobs as base64 text (members in their order)."""
    encoded: dict[str, Any] = {}
    for tag, value in av.items():
        if tag == "B":
            value = _encode_blob(value)
        elif tag == "BS":
            value = [_encode_blob(v) for v in value]
        elif tag == "M":
            value = _encode_map(value)
        elif tag == "L":
            value = _encode_list(value)
        encoded[tag] = value
    return encoded


# The two loops below test for the common case (one plain member: a string, a number) inline,
# without a call per value, and copy a container only when one of its values changes: most
# of an item is such values.


def _encode_map(values: Mapping[str, Any]) -> Mapping[str, Any]:
    encoded: dict[str, Any] | None = None
    for name, av in values.items():
        try:
            ((tag, _),) = av.items()
        except ValueError:  # not exactly one member
            tag = None
        if tag not in _PLAIN_TAGS:
            if encoded is None:
                encoded = dict(values)  # same order; replacing a value keeps its place
            encoded[name] = _encode_value(av)
    return values if encoded is None else encoded


def _encode_list(values: list[Any]) -> list[Any]:
    encoded: list[Any] | None = None
    for index, av in enumerate(values):
        try:
            ((tag, _),) = av.items()
        except ValueError:
            tag = None
        if tag not in _PLAIN_TAGS:
            if encoded is None:
                encoded = list(values)
            encoded[index] = _encode_value(av)
    return values if encoded is None else encoded


Encoder = Callable[[Any], Any]


def _request_encoder(shape: Shape) -> Encoder:
    if shape == _AV:
        return _encode_value
    if shape == _ATTRIBUTE_MAP:
        return _encode_map
    if isinstance(shape, tuple):
        kind, inner = shape
        item = _request_encoder(inner)
        if kind == "L":
            return lambda values: [item(v) for v in values]
        return lambda values: {k: item(v) for k, v in values.items()}
    if isinstance(shape, dict):
        members = {name: _request_encoder(s) for name, s in shape.items()}

        def structure(value: Mapping[str, Any]) -> dict[str, Any]:
            out = {}
            for name, member in value.items():
                encode = members.get(name)
                out[name] = member if encode is None else encode(member)
            return out

        return structure
    raise AssertionError(f"not a request shape: {shape!r}")


_REQUEST_ENCODERS: dict[str, dict[str, Encoder]] = {
    operation: {name: _request_encoder(shape) for name, shape in members.items()}
    for operation, members in _REQUEST_SHAPES.items()
}


def encode_body(operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of a request: ``request`` with its blobs as base64 text.

    For a JSON codec other than the stdlib's (the bytes then differ from botocore's, the
    document does not). Values without blobs are shared with ``request``, which is not
    modified.

    :raises ValueError: ``operation`` is not in ``SUPPORTED_OPERATIONS``.
    """
    encoders = _REQUEST_ENCODERS.get(operation)
    if encoders is None:
        raise ValueError(f"the store's transport does not send {operation!r}")
    body = {}
    for name, value in request.items():
        encode = encoders.get(name)
        body[name] = value if encode is None else encode(value)
    return body


def encode_request(operation: str, request: Mapping[str, Any]) -> tuple[str, bytes]:
    """``(X-Amz-Target, body)`` for a request dict as ``client._make_api_call`` takes it.

    The body is the one botocore's JSON serializer sends for it, byte for byte. The request
    is not validated (botocore's parameter validation is not run) and not modified.

    :raises ValueError: ``operation`` is not in ``SUPPORTED_OPERATIONS``.
    """
    body = encode_body(operation, request)
    return f"{API_VERSION_PREFIX}.{operation}", _dumps(body).encode("utf-8")


def _c_dumps() -> Callable[[Any], str] | None:
    """``json.dumps`` with its default settings, minus its per-call set-up, or None.

    ``json.dumps`` builds a new C encoder for every document and tracks every container to
    detect cycles (a request dict has none): 2 to 3 us of a 1 KB request. One C encoder,
    built as ``JSONEncoder.iterencode`` builds it, is reused instead; it writes the same
    bytes, which is checked here once, and the stdlib's ``json.dumps`` is used where the C
    encoder is missing or its signature differs.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    defaults = json.JSONEncoder()
    try:
        encoder = make(
            None,  # no cycle tracking
            defaults.default,
            json.encoder.encode_basestring_ascii,
            None,
            defaults.key_separator,
            defaults.item_separator,
            False,  # sort_keys
            False,  # skipkeys
            True,  # allow_nan
        )
        join = "".join

        def dumps(document: Any) -> str:
            return join(encoder(document, 0))

        sample = {"S": 'é\u2028"\n', "L": [1, 2.5, True, None, {"N": "1"}], "M": {}, "E": []}
        if dumps(sample) != json.dumps(sample):
            return None
    except Exception:  # pragma: no cover - another implementation of the C encoder
        return None
    return dumps


_dumps: Callable[[Any], str] = _c_dumps() or json.dumps


# --- responses -----------------------------------------------------------------------------

_b64decode = base64.b64decode
_AV_TAGS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")  # botocore's member order


def _decode_value(av: Any) -> Any:
    """One AttributeValue from JSON, blobs as bytes; updated in place when it can be."""
    if av is None:
        return None
    if len(av) == 1:
        for tag, value in av.items():
            if value is not None:
                if tag in _PLAIN_TAGS:
                    return av
                if tag == "B":
                    av["B"] = _b64decode(value)
                    return av
                if tag == "M":
                    _decode_map(value)
                    return av
                if tag == "L":
                    _decode_list(value)
                    return av
                if tag == "BS":
                    av["BS"] = [None if v is None else _b64decode(v) for v in value]
                    return av
    # Anything else, as botocore's structure parser does: its members in model order,
    # null members and unknown keys dropped.
    decoded: dict[str, Any] = {}
    for tag in _AV_TAGS:
        value = av.get(tag)
        if value is None:
            continue
        if tag == "B":
            value = _b64decode(value)
        elif tag == "BS":
            value = [None if v is None else _b64decode(v) for v in value]
        elif tag == "M":
            value = _decode_map(value)
        elif tag == "L":
            value = _decode_list(value)
        decoded[tag] = value
    return decoded


def _decode_map(values: dict[str, Any]) -> dict[str, Any]:
    for name, av in values.items():
        try:
            ((tag, value),) = av.items()
        except (ValueError, AttributeError):  # not exactly one member, or null
            tag = value = None
        if value is None or tag not in _PLAIN_TAGS:
            decoded = _decode_value(av)
            if decoded is not av:
                values[name] = decoded  # same keys: safe while iterating
    return values


def _decode_list(values: list[Any]) -> list[Any]:
    for index, av in enumerate(values):
        try:
            ((tag, value),) = av.items()
        except (ValueError, AttributeError):
            tag = value = None
        if value is None or tag not in _PLAIN_TAGS:
            values[index] = _decode_value(av)
    return values


def _decode_item_list(items: list[Any]) -> list[Any]:
    return [None if item is None else _decode_map(item) for item in items]


Decoder = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _response_decoder(shape: Shape) -> Decoder:
    if shape is None:
        return _same
    if shape == _AV:
        return _decode_value
    if shape == _ATTRIBUTE_MAP:
        return _decode_map
    if shape == ("L", _ATTRIBUTE_MAP):
        return _decode_item_list
    if isinstance(shape, tuple):
        kind, inner = shape
        if inner is None:
            return _same  # a list or map of scalars: nothing to decode or drop
        item = _response_decoder(inner)
        if kind == "L":
            return lambda values: [None if v is None else item(v) for v in values]
        return lambda values: {k: item(v) for k, v in values.items()}
    if isinstance(shape, dict):
        return _structure_decoder(shape)
    raise AssertionError(f"not a response shape: {shape!r}")


def _structure_decoder(shape: Mapping[str, Shape]) -> Callable[[Any], dict[str, Any] | None]:
    members = {name: _response_decoder(s) for name, s in shape.items()}

    def structure(value: Any) -> dict[str, Any] | None:
        # As botocore: null stays None, null members and unknown keys are dropped.
        if value is None:
            return None
        out = {}
        for name, member in value.items():
            decode = members.get(name)
            if decode is not None and member is not None:
                out[name] = decode(member)
        return out

    return structure


_RESPONSE_DECODERS = {
    operation: _structure_decoder(shape) for operation, shape in _RESPONSE_SHAPES.items()
}
_ERROR_DECODERS = {code: _structure_decoder(shape) for code, shape in _ERROR_SHAPES.items()}


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def decode_response(
    operation: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    loads: Callable[[bytes], Any] | None = None,
) -> dict[str, Any]:
    """The parsed response, as botocore's client returns it, of an HTTP response to ``operation``.

    The body is checked against ``x-amz-crc32`` first, errors included; a response without
    the header (an emulator) is not checked. ``ResponseMetadata`` holds what botocore's parser
    puts there (``RequestId``, ``HTTPStatusCode``, ``HTTPHeaders``), not ``RetryAttempts``.

    :param headers: the response headers, one value per name (any case).
    :param loads: a JSON parser of UTF-8 bytes to use for a success body instead of the
        stdlib's; it must refuse invalid UTF-8 and raise ``ValueError`` on bad input.
    :raises ChecksumError: the body does not match its ``x-amz-crc32``.
    :raises CorruptResponseError: a success whose body is not a JSON object.
    :raises DynamoDBError: an error response (status >= 300).
    :raises ValueError: ``operation`` is not in ``SUPPORTED_OPERATIONS``.
    """
    decode = _RESPONSE_DECODERS.get(operation)
    if decode is None:
        raise ValueError(f"the store's transport does not read {operation!r}")
    lower = _lower_headers(headers)
    check_crc32({"headers": lower, "body": body})
    if status >= 300:
        raise DynamoDBError(_parse_error(status, lower, body), operation)
    try:
        # Strict UTF-8 as botocore decodes (json.loads(bytes) would also take UTF-16/32).
        document = json.loads(body.decode("utf-8")) if loads is None else loads(body)
    except ValueError as exc:  # UnicodeDecodeError included
        raise CorruptResponseError(reason=str(exc), excerpt=body[:80]) from exc
    if not isinstance(document, dict):
        raise CorruptResponseError(reason="not a JSON object", excerpt=body[:80])
    parsed = cast("dict[str, Any]", decode(document))  # a dict in, a dict out
    metadata: dict[str, Any] = {}
    request_id = lower.get("x-amzn-requestid")
    if request_id is not None:
        metadata["RequestId"] = request_id
    metadata["HTTPStatusCode"] = status
    metadata["HTTPHeaders"] = lower
    parsed["ResponseMetadata"] = metadata
    return parsed


def parse_error(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The dict botocore's client puts on its ``ClientError`` for an error response.

    The code is ``__type`` after its last ``#`` (the status code when the body has none), the
    message the body's ``message`` or ``Message``; a 5xx with an empty or HTML body gets the
    status code and its reason phrase. A modeled error's fields are added, decoded (a failed
    condition's ``Item``). The checksum is not checked here (``decode_response`` does).
    """
    return _parse_error(status, _lower_headers(headers), body)


def _parse_error(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    if status >= 500 and (not body.strip() or body.strip().startswith(b"<html>")):
        # botocore's generic error: a proxy's or load balancer's page, not DynamoDB's.
        return {
            "Error": {"Code": str(status), "Message": http.client.responses.get(status, "")},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers},
        }
    document = _error_document(body)
    error: dict[str, Any] = {"Message": document.get("message", document.get("Message", ""))}
    metadata: dict[str, Any] = {}
    parsed: dict[str, Any] = {"Error": error, "ResponseMetadata": metadata}
    code = document.get("__type", str(status))
    if code is None:  # "__type": null
        error["Code"] = ""
    else:
        if ":" in code:
            code = code.split(":", 1)[0]
        if "#" in code:
            code = code.rsplit("#", 1)[1]
        query_error = headers.get("x-amzn-query-error")
        if query_error is not None:
            # botocore's query-compatible codes (not DynamoDB's, but a header is a header).
            parts = query_error.split(";")
            if len(parts) == 2 and parts[0]:
                error["QueryErrorCode"] = code
                error["Type"] = parts[1]
                code = parts[0]
        error["Code"] = code
    request_id = headers.get("x-amzn-requestid")
    if request_id is not None:
        metadata["RequestId"] = request_id
    metadata["HTTPStatusCode"] = status
    metadata["HTTPHeaders"] = headers
    decode_fields = _ERROR_DECODERS.get(error.get("Code", ""))
    if decode_fields is not None:
        # botocore parses the body a second time against the error's shape; decoding the
        # first parse in place is the same, as nothing else reads it.
        parsed.update(decode_fields(document) or {})
    return parsed


def _error_document(body: bytes) -> dict[str, Any]:
    """The error body as JSON; as botocore, a body that is not JSON becomes its message."""
    if not body:
        return {}
    text = body.decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        return {"message": text}
    return document if isinstance(document, dict) else {"message": text}
