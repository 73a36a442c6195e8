"""The store's DynamoDB wire format equals botocore's: the bodies its JSON serializer sends, what
its JSON parser returns, and the errors its client raises; every response's CRC32 checked.
"""

from __future__ import annotations

import base64
import copy
import json
import pickle
import zlib
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.config import Config
from botocore.exceptions import ChecksumError, ClientError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saga_store_pynamo import _wire
from saga_store_pynamo._sigv4 import CONTENT_TYPE
from saga_store_pynamo._wire import (
    API_VERSION_PREFIX,
    SUPPORTED_OPERATIONS,
    CorruptResponseError,
    DynamoDBError,
    decode_response,
    encode_body,
    encode_request,
    parse_error,
    target,
)
from saga_store_pynamo.retry import is_retryable, may_have_landed

MODEL = botocore.session.get_session().get_service_model("dynamodb")
SERIALIZER = create_serializer("json", include_validation=False)
PARSER = create_parser("json")
OPERATIONS = sorted(SUPPORTED_OPERATIONS)

#: Deterministic (CI runs the same examples) and no example database in the repository.
PROPERTY = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def botocore_body(operation: str, request: dict[str, Any]) -> tuple[str, bytes]:
    serialized = SERIALIZER.serialize_to_request(request, MODEL.operation_model(operation))
    assert serialized["method"] == "POST"
    assert serialized["url_path"] == "/"
    assert serialized["headers"]["Content-Type"] == CONTENT_TYPE
    return serialized["headers"]["X-Amz-Target"], serialized["body"]


def botocore_result(operation: str, status: int, headers: dict[str, str], body: bytes) -> Any:
    """What botocore's client makes of a response: its parser, then (for an error) the error
    shape's modeled fields, as ``Endpoint._add_modeled_error_fields`` adds them."""
    response = {"status_code": status, "headers": HeadersDict(headers), "body": body}
    parsed = PARSER.parse(response, MODEL.operation_model(operation).output_shape)
    if status >= 300:
        shape = MODEL.shape_for_error_code(parsed.get("Error", {}).get("Code"))
        if shape is not None:
            parsed.update(PARSER.parse(response, shape))
    return parsed


def ours(operation: str, status: int, headers: dict[str, str], body: bytes) -> Any:
    """``decode_response``'s result, or the response dict of the error it raises."""
    try:
        return decode_response(operation, status, headers, body)
    except DynamoDBError as exc:
        return exc.response


# --- strategies ----------------------------------------------------------------------------

names = st.text(max_size=12)
numbers = st.one_of(
    st.integers().map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)


def attribute_values(blobs: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """AttributeValues of every type, nested in maps and lists."""
    scalars = st.one_of(
        st.builds(lambda v: {"S": v}, st.text(max_size=30)),
        st.builds(lambda v: {"N": v}, numbers),
        st.builds(lambda v: {"B": v}, blobs),
        st.builds(lambda v: {"SS": v}, st.lists(st.text(max_size=8), min_size=1, max_size=4)),
        st.builds(lambda v: {"NS": v}, st.lists(numbers, min_size=1, max_size=4)),
        st.builds(lambda v: {"BS": v}, st.lists(blobs, min_size=1, max_size=4)),
        st.just({"NULL": True}),
        st.builds(lambda v: {"BOOL": v}, st.booleans()),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.builds(lambda v: {"M": v}, st.dictionaries(names, inner, max_size=4)),
            st.builds(lambda v: {"L": v}, st.lists(inner, max_size=4)),
        ),
        max_leaves=12,
    )


# What the store passes botocore: bytes (bytearray and text are blobs to botocore too).
request_blobs = st.one_of(
    st.binary(max_size=48), st.binary(max_size=16).map(bytearray), st.text(max_size=16)
)
request_av = attribute_values(request_blobs)
request_map = st.dictionaries(names, request_av, max_size=6)
# What DynamoDB sends: blobs as base64 text.
wire_av = attribute_values(st.binary(max_size=48).map(lambda b: base64.b64encode(b).decode()))
wire_map = st.dictionaries(names, wire_av, max_size=6)

expressions = st.text(max_size=40)
conditions = st.dictionaries(
    names,
    st.fixed_dictionaries(
        {"ComparisonOperator": st.sampled_from(["EQ", "BEGINS_WITH", "BETWEEN"])},
        optional={"AttributeValueList": st.lists(request_av, max_size=2)},
    ),
    max_size=3,
)
expected = st.dictionaries(
    names,
    st.fixed_dictionaries(
        {},
        optional={
            "Value": request_av,
            "Exists": st.booleans(),
            "ComparisonOperator": st.just("EQ"),
            "AttributeValueList": st.lists(request_av, max_size=2),
        },
    ),
    max_size=3,
)
common = {
    "ReturnConsumedCapacity": st.sampled_from(["TOTAL", "NONE", "INDEXES"]),
    "ExpressionAttributeNames": st.dictionaries(st.text(max_size=5).map("#".__add__), names),
    "ExpressionAttributeValues": st.dictionaries(st.text(max_size=5).map(":".__add__), request_av),
}
write = {
    **common,
    "ConditionExpression": expressions,
    "ReturnValues": st.sampled_from(["NONE", "ALL_OLD", "ALL_NEW"]),
    "ReturnValuesOnConditionCheckFailure": st.sampled_from(["ALL_OLD", "NONE"]),
    "ReturnItemCollectionMetrics": st.sampled_from(["SIZE", "NONE"]),
    "Expected": expected,
    "ConditionalOperator": st.sampled_from(["AND", "OR"]),
}
read_many = {
    **common,
    "IndexName": names,
    "Limit": st.integers(1, 1000),
    "ConsistentRead": st.booleans(),
    "FilterExpression": expressions,
    "ProjectionExpression": expressions,
    "ExclusiveStartKey": request_map,
    "Select": st.sampled_from(["ALL_ATTRIBUTES", "COUNT"]),
}
REQUESTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "GetItem": st.fixed_dictionaries(
        {"TableName": names, "Key": request_map},
        optional={
            "ReturnConsumedCapacity": common["ReturnConsumedCapacity"],
            "ExpressionAttributeNames": common["ExpressionAttributeNames"],
            "ConsistentRead": st.booleans(),
            "ProjectionExpression": expressions,
        },
    ),
    "PutItem": st.fixed_dictionaries({"TableName": names, "Item": request_map}, optional=write),
    "UpdateItem": st.fixed_dictionaries(
        {"TableName": names, "Key": request_map},
        optional={
            **write,
            "UpdateExpression": expressions,
            "AttributeUpdates": st.dictionaries(
                names,
                st.fixed_dictionaries(
                    {}, optional={"Value": request_av, "Action": st.sampled_from(["PUT", "ADD"])}
                ),
                max_size=3,
            ),
        },
    ),
    "DeleteItem": st.fixed_dictionaries({"TableName": names, "Key": request_map}, optional=write),
    "Query": st.fixed_dictionaries(
        {"TableName": names},
        optional={
            **read_many,
            "KeyConditionExpression": expressions,
            "ScanIndexForward": st.booleans(),
            "KeyConditions": conditions,
            "QueryFilter": conditions,
        },
    ),
    "Scan": st.fixed_dictionaries(
        {"TableName": names},
        optional={
            **read_many,
            "ScanFilter": conditions,
            "Segment": st.integers(0, 9),
            "TotalSegments": st.integers(1, 10),
        },
    ),
}


def shuffled(strategy: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """The dict's members in any order: the body must keep the caller's order, as botocore."""
    return strategy.flatmap(lambda d: st.permutations(list(d.items())).map(dict))


requests = st.sampled_from(OPERATIONS).flatmap(
    lambda op: st.tuples(st.just(op), shuffled(REQUESTS[op]))
)

capacity = st.fixed_dictionaries(
    {},
    optional={
        "ReadCapacityUnits": st.floats(0, 1e6),
        "WriteCapacityUnits": st.integers(0, 10**6),
        "CapacityUnits": st.floats(0, 1e6),
    },
)
consumed = st.fixed_dictionaries(
    {"TableName": names},
    optional={
        "CapacityUnits": st.one_of(st.floats(0, 1e6), st.integers(0, 10**6)),
        "Table": capacity,
        "GlobalSecondaryIndexes": st.dictionaries(names, capacity, max_size=2),
        "LocalSecondaryIndexes": st.dictionaries(names, capacity, max_size=2),
        "Unmodelled": st.integers(),  # botocore drops what its model does not name
    },
)
item_collection = st.fixed_dictionaries(
    {"ItemCollectionKey": wire_map},
    optional={"SizeEstimateRangeGB": st.lists(st.floats(0, 10), max_size=2)},
)
extras = {"SomeFutureMember": st.one_of(st.integers(), names, wire_map), "NullMember": st.none()}
write_output = {
    "Attributes": wire_map,
    "ConsumedCapacity": consumed,
    "ItemCollectionMetrics": item_collection,
    **extras,
}
many_output = {
    "Items": st.lists(wire_map, max_size=4),
    "Count": st.integers(0, 100),
    "ScannedCount": st.integers(0, 100),
    "LastEvaluatedKey": wire_map,
    "ConsumedCapacity": consumed,
    **extras,
}
RESPONSES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "GetItem": st.fixed_dictionaries(
        {}, optional={"Item": wire_map, "ConsumedCapacity": consumed, **extras}
    ),
    "PutItem": st.fixed_dictionaries({}, optional=write_output),
    "UpdateItem": st.fixed_dictionaries({}, optional=write_output),
    "DeleteItem": st.fixed_dictionaries({}, optional=write_output),
    "Query": st.fixed_dictionaries({}, optional=many_output),
    "Scan": st.fixed_dictionaries({}, optional=many_output),
}


@st.composite
def json_bodies(draw: st.DrawFn, document: Any) -> bytes:
    """``document`` as DynamoDB or a proxy might format it."""
    return json.dumps(
        document,
        ensure_ascii=draw(st.booleans()),
        separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])),
    ).encode("utf-8")


@st.composite
def response_headers(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": CONTENT_TYPE, "Content-Length": str(len(body))}
    if draw(st.booleans()):
        headers["x-amzn-RequestId"] = draw(names)
    if draw(st.booleans()):
        headers["X-Amz-Crc32"] = str(zlib.crc32(body))
    return headers


# --- requests ------------------------------------------------------------------------------


@settings(PROPERTY, max_examples=400)
@given(case=requests)
def test_request_body_equals_botocore(case: tuple[str, dict[str, Any]]) -> None:
    operation, request = case
    before = copy.deepcopy(request)
    sent_target, body = botocore_body(operation, request)
    assert encode_request(operation, request) == (sent_target, body)
    assert encode_body(operation, request) == json.loads(body)  # for another JSON codec
    assert request == before  # the store may send the same request again


def test_blobs_become_base64_text() -> None:
    request = {
        "TableName": "t",
        "Key": {"pk": {"B": b"\x00\xff"}},
        "ExpressionAttributeValues": {
            ":s": {"BS": [b"a", bytearray(b"b"), "é"]},
            ":l": {"L": [{"M": {"x": {"B": b"\x01"}}}]},
        },
    }
    sent, body = encode_request("UpdateItem", request)
    assert sent == "DynamoDB_20120810.UpdateItem" == target("UpdateItem")
    assert json.loads(body) == {
        "TableName": "t",
        "Key": {"pk": {"B": "AP8="}},
        "ExpressionAttributeValues": {
            ":s": {"BS": ["YQ==", "Yg==", "w6k="]},
            ":l": {"L": [{"M": {"x": {"B": "AQ=="}}}]},
        },
    }


def test_other_operations_are_refused() -> None:
    with pytest.raises(ValueError, match="CreateTable"):
        encode_request("CreateTable", {"TableName": "t"})
    with pytest.raises(ValueError, match="DescribeTable"):
        decode_response("DescribeTable", 200, {}, b"{}")


# --- responses -----------------------------------------------------------------------------


@st.composite
def success_responses(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    operation = draw(st.sampled_from(OPERATIONS))
    body = draw(json_bodies(draw(RESPONSES[operation])))
    return operation, draw(response_headers(body)), body


@settings(PROPERTY, max_examples=400)
@given(case=success_responses())
def test_response_equals_botocore(case: tuple[str, dict[str, str], bytes]) -> None:
    operation, headers, body = case
    expected = botocore_result(operation, 200, headers, body)
    assert ours(operation, 200, headers, body) == expected
    # Another JSON codec (orjson, say) in place of the stdlib's.
    assert decode_response(operation, 200, headers, body, loads=json.loads) == expected


@pytest.mark.parametrize(
    "av",
    [
        {"S": "x", "Unknown": 1},  # unknown tags are dropped
        {"S": None, "N": "1"},  # null members too
        {},
        {"B": "AA==", "S": "y"},
        {"BS": ["AA==", None]},
        {"L": [None, {"S": "z"}]},
        {"M": {"a": None}},
    ],
)
def test_unusual_attribute_values_as_botocore(av: dict[str, Any]) -> None:
    body = json.dumps({"Item": {"a": av, "b": None}}).encode()
    assert ours("GetItem", 200, {}, body) == botocore_result("GetItem", 200, {}, body)


def test_blobs_come_back_as_bytes() -> None:
    body = json.dumps(
        {
            "Items": [{"k": {"B": "AP8="}, "s": {"BS": ["YQ=="]}}],
            "LastEvaluatedKey": {"k": {"L": [{"M": {"b": {"B": "AQ=="}}}]}},
            "Count": 1,
        }
    ).encode()
    parsed = decode_response("Query", 200, {"x-amz-crc32": str(zlib.crc32(body))}, body)
    assert parsed["Items"] == [{"k": {"B": b"\x00\xff"}, "s": {"BS": [b"a"]}}]
    assert parsed["LastEvaluatedKey"] == {"k": {"L": [{"M": {"b": {"B": b"\x01"}}}]}}
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 200


# --- errors --------------------------------------------------------------------------------

CCF_ITEM = {
    "pk": {"S": "a"},
    "version": {"N": "3"},
    "blob": {"B": base64.b64encode(b"\x00old").decode()},
    "blobs": {"BS": ["AA==", "AQ=="]},
    "state": {"M": {"l": {"L": [{"B": "Ag=="}, {"NULL": True}]}}},
}
ERRORS = {
    "ccf with item": (
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "message": "The conditional request failed",
            "Item": CCF_ITEM,
        },
    ),
    "ccf without item": (
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "message": "The conditional request failed",
        },
    ),
    "validation": (
        400,
        {
            "__type": "com.amazon.coral.validate#ValidationException",
            "message": "One or more parameter values were invalid",
        },
    ),
    "validation, capital Message": (
        400,
        {"__type": "com.amazon.coral.validate#ValidationException", "Message": "Item size"},
    ),
    "throttling": (
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Throughput exceeds the current capacity",
            "throttlingReasons": [{"reason": "TableReadKeyRangeThroughputExceeded", "x": 1}],
        },
    ),
    "provisioned throughput": (
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "Rate exceeded",
            "ThrottlingReasons": [{"reason": "r", "resource": "arn"}],
        },
    ),
    "internal server error": (
        500,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
            "message": "Internal server error",
        },
    ),
    "resource not found": (
        400,
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            "message": "Requested resource not found",
        },
    ),
    "no __type": (400, {"message": "something went wrong"}),
    "no __type, 500": (500, {"Message": "oops"}),
    "code with a colon": (
        400,
        {"__type": "Throttling:http://internal.amazon.com/", "message": "m"},
    ),
    "null __type": (400, {"__type": None, "message": "m"}),
    "empty object": (400, {}),
}
RAW_ERRORS = {
    "500, empty body": (500, b""),
    "503, html": (503, b"  <html><body>Service Unavailable</body></html>"),
    "502, text": (502, b"Bad Gateway"),
    "400, not json": (400, b"not json at all"),
    "400, empty": (400, b""),
    "413, html": (413, b"<html>too large</html>"),
}


def _error_cases() -> Iterator[Any]:
    for name, (status, document) in ERRORS.items():
        yield pytest.param(status, json.dumps(document).encode(), id=name)
    for name, (status, body) in RAW_ERRORS.items():
        yield pytest.param(status, body, id=name)


@pytest.mark.parametrize("request_id", [None, "RID123"])
@pytest.mark.parametrize(("status", "body"), list(_error_cases()))
def test_error_equals_botocore(status: int, body: bytes, request_id: str | None) -> None:
    headers = {"Content-Type": CONTENT_TYPE, "x-amz-crc32": str(zlib.crc32(body))}
    if request_id is not None:
        headers["x-amzn-RequestId"] = request_id
    expected = botocore_result("PutItem", status, headers, body)
    with pytest.raises(DynamoDBError) as raised:
        decode_response("PutItem", status, headers, body)
    error = raised.value
    assert error.response == expected
    assert parse_error(status, headers, body) == expected
    assert isinstance(error, ClientError)
    assert error.code == expected["Error"]["Code"]
    assert error.message == expected["Error"]["Message"]
    assert error.status == status
    assert str(error) == str(ClientError(expected, "PutItem"))
    # The store's retry logic reads it as it reads botocore's errors.
    assert is_retryable(error) == is_retryable(ClientError(expected, "PutItem"))


@pytest.mark.parametrize(
    "query_error", ["AWS.Legacy.Code;Sender", ";Sender", "NoSemicolon", "a;b;c"]
)
def test_query_compatible_error_header_as_botocore(query_error: str) -> None:
    # DynamoDB does not send it; botocore's parser reads it from any JSON service.
    body = json.dumps(ERRORS["throttling"][1]).encode()
    headers = {"x-amzn-query-error": query_error}
    assert ours("GetItem", 400, headers, body) == botocore_result("GetItem", 400, headers, body)


def test_condition_failure_keeps_the_old_item() -> None:
    status, document = ERRORS["ccf with item"]
    with pytest.raises(DynamoDBError) as raised:
        decode_response("UpdateItem", status, {}, json.dumps(document).encode())
    assert raised.value.code == "ConditionalCheckFailedException"
    assert raised.value.item == {
        "pk": {"S": "a"},
        "version": {"N": "3"},
        "blob": {"B": b"\x00old"},
        "blobs": {"BS": [b"\x00", b"\x01"]},
        "state": {"M": {"l": {"L": [{"B": b"\x02"}, {"NULL": True}]}}},
    }
    # Where _dispatch reads it on botocore's error.
    assert raised.value.response["Item"] == raised.value.item
    status, document = ERRORS["ccf without item"]
    with pytest.raises(DynamoDBError) as raised:
        decode_response("UpdateItem", status, {}, json.dumps(document).encode())
    assert raised.value.item is None


def test_retry_reads_our_errors() -> None:
    def error(name: str) -> DynamoDBError:
        status, document = ERRORS[name]
        with pytest.raises(DynamoDBError) as raised:
            decode_response("GetItem", status, {}, json.dumps(document).encode())
        return raised.value

    assert is_retryable(error("throttling"))
    assert not may_have_landed(error("throttling"))
    assert is_retryable(error("internal server error"))
    assert may_have_landed(error("internal server error"))
    assert is_retryable(error("no __type, 500"))  # by its status
    assert not is_retryable(error("validation"))
    assert not is_retryable(error("ccf with item"))


def test_error_pickles() -> None:
    status, document = ERRORS["ccf with item"]
    with pytest.raises(DynamoDBError) as raised:
        decode_response("PutItem", status, {}, json.dumps(document).encode())
    copied = pickle.loads(pickle.dumps(raised.value))
    assert type(copied) is DynamoDBError
    assert copied.response == raised.value.response
    assert copied.item == raised.value.item


error_codes = st.one_of(
    st.sampled_from(sorted(_wire._ERROR_SHAPES)),
    st.sampled_from(
        ["ValidationException", "UnrecognizedClientException", "SerializationException"]
    ),
    names,
)


@st.composite
def error_responses(draw: st.DrawFn) -> tuple[str, int, dict[str, str], bytes]:
    document: dict[str, Any] = {}
    code = draw(error_codes)
    if draw(st.booleans()):
        prefix = draw(st.sampled_from(["", "com.amazonaws.dynamodb.v20120810#", "x#y#"]))
        document["__type"] = prefix + code
    message_key = draw(st.sampled_from(["message", "Message", None]))
    if message_key is not None:
        document[message_key] = draw(st.text(max_size=40))
    if draw(st.booleans()):
        document["Item"] = draw(wire_map)
    if draw(st.booleans()):
        document["CancellationReasons"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"Code": names}, optional={"Item": wire_map, "Message": names}
                ).map(lambda d: d if d else None),
                max_size=3,
            )
        )
    if draw(st.booleans()):
        document["throttlingReasons"] = [{"reason": draw(names), "resource": draw(names)}]
    body = draw(json_bodies(document))
    status = draw(st.sampled_from([400, 403, 404, 413, 500, 503]))
    return draw(st.sampled_from(OPERATIONS)), status, draw(response_headers(body)), body


@settings(PROPERTY, max_examples=300)
@given(case=error_responses())
def test_random_errors_equal_botocore(case: tuple[str, int, dict[str, str], bytes]) -> None:
    operation, status, headers, body = case
    assert ours(operation, status, headers, body) == botocore_result(
        operation, status, headers, body
    )


# --- checksums and damaged responses -------------------------------------------------------

GOOD = b'{"Item":{"pk":{"S":"a"},"b":{"B":"AP8="}}}'


@pytest.mark.parametrize("name", ["x-amz-crc32", "X-Amz-Crc32", "X-AMZ-CRC32"])
def test_matching_crc32_is_accepted(name: str) -> None:
    parsed = decode_response("GetItem", 200, {name: str(zlib.crc32(GOOD))}, GOOD)
    assert parsed["Item"] == {"pk": {"S": "a"}, "b": {"B": b"\x00\xff"}}


def test_missing_crc32_is_not_checked() -> None:
    assert decode_response("GetItem", 200, {}, GOOD)["Item"]["pk"] == {"S": "a"}


@pytest.mark.parametrize(
    ("header", "body"),
    [
        (str(zlib.crc32(GOOD) ^ 1), GOOD),  # the header damaged
        (str(zlib.crc32(GOOD)), GOOD.replace(b'"a"', b'"b"')),  # the body damaged
        (str(zlib.crc32(GOOD)), GOOD[:-1]),  # the body cut short
        ("not a number", GOOD),
    ],
)
def test_mismatching_crc32_is_refused(header: str, body: bytes) -> None:
    with pytest.raises(ChecksumError) as raised:
        decode_response("GetItem", 200, {"x-amz-crc32": header}, body)
    assert type(raised.value) is ChecksumError
    assert is_retryable(raised.value)
    assert may_have_landed(raised.value)


def test_crc32_is_checked_before_an_error_is_read() -> None:
    status, document = ERRORS["ccf with item"]
    body = json.dumps(document).encode()
    with pytest.raises(ChecksumError):
        decode_response("PutItem", status, {"x-amz-crc32": str(zlib.crc32(body) ^ 1)}, body)


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"not json", b'{"Item":', b"[]", b"null", b'"text"', b'{"a": "\xff"}'],
)
def test_unreadable_success_body_is_refused(body: bytes) -> None:
    # botocore reads these as an empty result: a GetItem would find "no item".
    with pytest.raises(CorruptResponseError) as raised:
        decode_response("GetItem", 200, {}, body)
    assert isinstance(raised.value, ChecksumError)
    assert is_retryable(raised.value)
    assert may_have_landed(raised.value)


def test_another_codec_refusing_a_body_is_a_corrupt_response() -> None:
    def strict(body: bytes) -> Any:
        raise json.JSONDecodeError("refused", body.decode(errors="replace"), 0)

    with pytest.raises(CorruptResponseError):
        decode_response("GetItem", 200, {}, GOOD, loads=strict)


# --- a real botocore client, end to end ----------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _client_call(
    operation: str, request: dict[str, Any], status: int, body: bytes
) -> tuple[bytes, str, Any]:
    """Send ``request`` with a botocore client answered by ``status`` and ``body``: the body
    and target it sent, and what it returned or the response of the error it raised."""
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://localhost:8000",
        aws_access_key_id="AKID",
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    sent: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, status, {"x-amzn-RequestId": "R"}, _Raw(body))

    client.meta.events.register("before-send.dynamodb", answer)
    try:
        result = client._make_api_call(operation, request)
    except ClientError as exc:
        result = exc.response
    metadata = result["ResponseMetadata"]
    metadata.pop("RetryAttempts", None)  # added by the client's retry handler, not the parser
    metadata.pop("MaxAttemptsReached", None)
    (request_sent,) = sent
    sent_target = request_sent.headers["X-Amz-Target"]
    return request_sent.body, sent_target.decode(), result


CLIENT_CASES = [
    (
        "UpdateItem",
        {
            "TableName": "sagas",
            "Key": {"pk": {"S": "OrderSaga"}, "sk": {"S": "é1"}},
            "UpdateExpression": "SET #a=:a",
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": {"#a": "blob", "#v": "version"},
            "ExpressionAttributeValues": {
                ":a": {"M": {"b": {"B": b"\x00\x01"}, "bs": {"BS": [b"x"]}}},
                ":v": {"N": "2"},
            },
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
        400,
        json.dumps(ERRORS["ccf with item"][1]).encode(),
    ),
    (
        "GetItem",
        {"TableName": "sagas", "Key": {"pk": {"S": "a"}, "sk": {"B": b"\xff"}}},
        200,
        json.dumps({"Item": CCF_ITEM}).encode(),
    ),
    (
        "Query",
        {
            "TableName": "sagas",
            "IndexName": "correlationIndex",
            "KeyConditionExpression": "c = :c",
            "ExpressionAttributeValues": {":c": {"S": "x"}},
            "Limit": 10,
        },
        200,
        json.dumps({"Items": [CCF_ITEM], "Count": 1, "LastEvaluatedKey": CCF_ITEM}).encode(),
    ),
    ("PutItem", {"TableName": "t", "Item": {"a": {"S": "b"}}}, 500, b""),
    ("DeleteItem", {"TableName": "t", "Key": {"a": {"S": "b"}}}, 400, b'{"message":"m"}'),
]


@pytest.mark.parametrize(("operation", "request_", "status", "body"), CLIENT_CASES)
def test_a_botocore_client_sends_and_reads_the_same(
    operation: str, request_: dict[str, Any], status: int, body: bytes
) -> None:
    body_sent, target_sent, result = _client_call(operation, request_, status, body)
    assert encode_request(operation, request_) == (target_sent, body_sent)
    assert ours(operation, status, {"x-amzn-RequestId": "R"}, body) == result


# --- the written-out shapes are botocore's -------------------------------------------------

_SCALARS = {"string", "integer", "long", "boolean", "double", "float"}


def _full(shape: Any) -> Any:
    """A response shape in _wire's notation: every member."""
    assert "name" not in shape.serialization  # no renamed members: JSON names are member names
    if shape.name == "AttributeValue":
        assert list(shape.members) == list(_wire._AV_TAGS)
        assert [m.type_name for m in shape.members.values()] == [
            "string", "string", "blob", "list", "list", "list", "map", "list", "boolean", "boolean"
        ]  # fmt: skip
        return "AV"
    kind = shape.type_name
    if kind in _SCALARS:
        return None
    if kind == "list":
        return ("L", _full(shape.member))
    if kind == "map":
        assert shape.key.type_name == "string"
        return ("M", _full(shape.value))
    assert kind == "structure", f"{shape.name} is a {kind}: not handled outside AttributeValue"
    assert not shape.is_document_type
    assert not shape.is_tagged_union
    for member in shape.members.values():
        assert "name" not in member.serialization
    return {name: _full(member) for name, member in shape.members.items()}


def _pruned(shape: Any) -> Any:
    """A request shape in _wire's notation: only what leads to an AttributeValue."""
    if shape.name == "AttributeValue":
        return "AV"
    kind = shape.type_name
    if kind in _SCALARS:
        return None
    if kind in ("list", "map"):
        inner = _pruned(shape.member if kind == "list" else shape.value)
        return None if inner is None else ("L" if kind == "list" else "M", inner)
    assert kind == "structure", f"{shape.name} is a {kind}: it would need encoding"
    for member in shape.members.values():
        assert "name" not in member.serialization
    members = {name: _pruned(member) for name, member in shape.members.items()}
    return {name: s for name, s in members.items() if s is not None} or None


@pytest.mark.parametrize("operation", OPERATIONS)
def test_shapes_are_botocores(operation: str) -> None:
    model = MODEL.operation_model(operation)
    assert model.metadata["targetPrefix"] == API_VERSION_PREFIX
    assert f"application/x-amz-json-{model.metadata['jsonVersion']}" == CONTENT_TYPE
    assert _wire._REQUEST_SHAPES[operation] == (_pruned(model.input_shape) or {})
    assert _wire._RESPONSE_SHAPES[operation] == _full(model.output_shape)


def test_error_shapes_are_botocores() -> None:
    assert {e.error_code: _full(e) for e in MODEL.error_shapes} == _wire._ERROR_SHAPES
