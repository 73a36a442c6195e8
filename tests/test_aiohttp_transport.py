"""The store's asyncio transport (saga_store_pynamo._aiohttp): ``AsyncHttpTransport`` on aiohttp.

Against DynamoDB Local, directly or behind loopback helpers: the fault proxy of
tests/ddb_proxy.py (corrupted answers, resets), tests/tls_proxy.py's TLS terminator and
recording forward proxy, and ``Relay`` below, a keep-alive relay that records every
connection and can hold an answer half-way (to cancel a request mid-read). Each test runs its
coroutines with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import contextlib
import http.client
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import (
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from saga_store_pynamo import DynamoDBSagaStore, create_table
from saga_store_pynamo._aiohttp import AsyncHttpTransport, aiohttp_available
from saga_store_pynamo._http import ProxyConnectError, TLSError
from saga_store_pynamo._moto import atomic_moto
from saga_store_pynamo._wire import DynamoDBError
from saga_store_pynamo.retry import is_retryable, may_have_landed
from tests.conftest import CREDENTIALS, REGION
from tests.ddb_proxy import (
    CORRUPT_BODY,
    CORRUPT_CRC32,
    DROP_RESPONSE,
    RESET,
    DynamoDBProxy,
    FaultInjector,
)
from tests.models import OrderSaga
from tests.tls_proxy import CertificateAuthority, ForwardProxy, TLSTerminatingProxy

LOOPBACK = "127.0.0.1"
NAME = "OrderSaga"
_ENVIRONMENT = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "AWS_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
)

ddblocal = pytest.mark.ddblocal


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxy or CA bundle from the machine running the tests leaks in."""
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))


# -- helpers ---------------------------------------------------------------------------------


def make_store(endpoint: str, table_name: str | None = None, **options: Any) -> Any:
    """A store on ``endpoint`` (its table is not created)."""
    options.setdefault("credentials", CREDENTIALS)
    return DynamoDBSagaStore(
        OrderSaga,
        endpoint=endpoint,
        region=REGION,
        table_name=table_name or f"aio-{uuid.uuid4().hex[:10]}",
        **options,
    )


def transport_for(store: Any) -> AsyncHttpTransport:
    transport = AsyncHttpTransport(store.connection, max_connections=8)
    assert transport.handles("GetItem")
    return transport


def run(transport: AsyncHttpTransport, coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` on a new loop, then close the transport's session of that loop."""

    async def main() -> Any:
        try:
            return await coroutine
        finally:
            await transport.aclose()

    return asyncio.run(main())


def send(transport: AsyncHttpTransport, operation: str, request: dict[str, Any]) -> Any:
    """One request on a loop of its own."""
    return run(transport, transport.send(operation, request))


def key(saga_id: str) -> dict[str, Any]:
    return {"sagaName": {"S": NAME}, "sagaId": {"S": saga_id}}


def item(saga_id: str, **more: Any) -> dict[str, Any]:
    return {**key(saga_id), "version": {"N": "0"}, "correlationId": {"S": f"c-{saga_id}"}, **more}


def without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def host_port(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    return parts.hostname or LOOPBACK, parts.port or 80


def displayed(error: BaseException) -> str:
    """Everything an exception shows: its message, repr, kwargs and formatted chain."""
    parts = [str(error), repr(error), repr(getattr(error, "kwargs", None))]
    parts += traceback.format_exception(error)
    cause = error.__cause__ or error.__context__
    while cause is not None:
        parts += [str(cause), repr(cause)]
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


@pytest.fixture
def table(dynamodb_local_endpoint: str) -> Iterator[str]:
    """A fresh table on DynamoDB Local (dropped afterwards)."""
    store = make_store(dynamodb_local_endpoint)
    create_table(store)
    yield store.table_name
    with contextlib.suppress(Exception):
        store.connection.client.delete_table(TableName=store.table_name)


# -- a recording relay that can hold an answer -----------------------------------------------

SEND = "send"
#: Send the status line, the headers and half the body, then wait for ``release``.
HOLD_BODY = "hold-body"
#: Send nothing until ``release``.
HOLD_HEAD = "hold-head"
#: Send the body in small pieces with short pauses.
TRICKLE = "trickle"


class Relay:
    """A keep-alive HTTP/1.1 relay on 127.0.0.1 in front of ``upstream``.

    Each request is forwarded as it came (headers included); the answer goes back as
    ``plan`` says (``SEND`` when the plan is empty). ``requests`` records ``(connection
    number, headers, body)``; ``closed`` counts connections the client closed.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = host_port(upstream)
        self.plan: deque[str] = deque()
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        self.connections = 0
        self.closed = 0
        self.holding = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self._sock = socket.create_server((LOOPBACK, 0))
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self._sock.getsockname()[1]}"

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop = True
        self.release.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._sock.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(client, number), daemon=True).start()

    def _serve(self, client: socket.socket, number: int) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = client.makefile("rb")
        try:
            while True:
                line = reader.readline()
                if not line:
                    return
                headers: dict[str, str] = {}
                while (header := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip()] = value.strip()
                lower = {k.lower(): v for k, v in headers.items()}
                body = reader.read(int(lower.get("content-length", "0")))
                with self.lock:
                    self.requests.append((number, headers, body))
                    action = self.plan.popleft() if self.plan else SEND
                answer = self._forward(line.decode("latin-1").split()[1], headers, body)
                self._answer(client, answer, action)
        except OSError:
            return
        finally:
            with self.lock:
                self.closed += 1
            reader.close()
            client.close()

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> bytes:
        upstream = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            upstream.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection"):
                    upstream.putheader(name, value)
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            data = response.read()
            head = [f"HTTP/1.1 {response.status} {response.reason}"]
            for name, value in response.getheaders():
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    head.append(f"{name}: {value}")
            head.append(f"Content-Length: {len(data)}\r\n\r\n")
            return "\r\n".join(head).encode("latin-1") + data
        finally:
            upstream.close()

    def _answer(self, client: socket.socket, answer: bytes, action: str) -> None:
        if action == HOLD_HEAD:
            self.holding.set()
            self.release.wait(10)
            client.sendall(answer)
        elif action == HOLD_BODY:
            split = answer.index(b"\r\n\r\n") + 4
            split += (len(answer) - split) // 2
            client.sendall(answer[:split])
            self.holding.set()
            self.release.wait(10)
            client.sendall(answer[split:])
        elif action == TRICKLE:
            for start in range(0, len(answer), 64):
                client.sendall(answer[start : start + 64])
                time.sleep(0.002)
        else:
            client.sendall(answer)

    def wait_closed(self, count: int) -> None:
        """Wait until the client has closed ``count`` connections (a hang guard)."""
        wait_until(lambda: self.closed >= count, f"the client to close {count} connections")


@pytest.fixture
def relay(dynamodb_local_endpoint: str) -> Iterator[Relay]:
    with Relay(dynamodb_local_endpoint) as server:
        yield server


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail after 10 s (a hang guard, not a timing check)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


async def until(event: threading.Event) -> None:
    """Wait for a thread's ``event`` without blocking the loop (fails after 10 s)."""
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, event.wait, 10), "the relay never held an answer"


# -- the package without aiohttp -------------------------------------------------------------


def test_the_package_imports_without_aiohttp() -> None:
    code = (
        "import sys\n"
        "sys.modules['aiohttp'] = None\n"  # import aiohttp now raises ImportError
        "import saga_store_pynamo, saga_store_pynamo.aio\n"
        "from saga_store_pynamo._aiohttp import AsyncHttpTransport, aiohttp_available\n"
        "assert not aiohttp_available()\n"
        "try:\n"
        "    AsyncHttpTransport(object(), max_connections=1)\n"
        "except ImportError as error:\n"
        "    assert '[aio] extra' in str(error), error\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert aiohttp_available()


def test_invalid_max_connections_is_refused() -> None:
    store = make_store("http://127.0.0.1:9")
    for bad in (0, -1, 1.5, True, None):
        with pytest.raises(ValueError, match="max_connections"):
            AsyncHttpTransport(store.connection, max_connections=bad)  # type: ignore[arg-type]


# -- which operations it takes ---------------------------------------------------------------


def test_handles_the_item_operations_and_nothing_is_resolved_at_construction() -> None:
    store = DynamoDBSagaStore(OrderSaga, region=REGION, credentials=CREDENTIALS)
    transport = AsyncHttpTransport(store.connection, max_connections=4)
    assert "max_connections=4" in repr(transport)
    for operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"):
        assert transport.handles(operation)
    for operation in ("DescribeTable", "CreateTable", "BatchGetItem", "TransactWriteItems"):
        assert not transport.handles(operation)
    assert transport._table.routes == {}
    assert store.connection._client is None  # nothing resolved yet
    # On first use, the URL botocore's endpoint rules give for the region.
    frozen = store.connection.session.get_credentials().get_frozen_credentials()
    settings = transport._route(frozen, "GetItem", "t-1")
    assert settings is not None
    assert settings.endpoint == "https://dynamodb.us-east-1.amazonaws.com"
    assert "https://dynamodb.us-east-1.amazonaws.com" in repr(transport)


def test_under_moto_it_hands_every_operation_to_botocore() -> None:
    store = make_store("http://127.0.0.1:9")
    transport = AsyncHttpTransport(store.connection, max_connections=2)
    with atomic_moto():
        assert not transport.handles("GetItem")
        assert not transport.handles("PutItem")
    assert transport.handles("GetItem")  # decided per call


def test_an_https_proxy_url_sends_through_botocore_for_good(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "https://alice:s3cr3t@proxy.test:3129")
    store = make_store("https://dynamodb.eu-west-1.amazonaws.com")
    transport = AsyncHttpTransport(store.connection, max_connections=2)
    sent: list[str] = []

    def botocore_sends(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        sent.append(operation)
        return {"Item": item("via-botocore")}

    monkeypatch.setattr(store.connection.client, "_make_api_call", botocore_sends)
    with caplog.at_level(logging.WARNING, logger="saga_store_pynamo"):
        got = asyncio.run(transport.send("GetItem", {"TableName": "t-1", "Key": key("x")}))
    assert got == {"Item": item("via-botocore")}
    assert sent == ["GetItem"]
    assert "only http:// proxies" in caplog.text
    assert "falls back to botocore" in caplog.text
    assert "s3cr3t" not in caplog.text + repr(transport)
    monkeypatch.delenv("HTTPS_PROXY")
    asyncio.run(transport.send("GetItem", {"TableName": "t-1", "Key": key("x")}))
    assert sent == ["GetItem", "GetItem"]  # for good


# -- the same answers as botocore ------------------------------------------------------------


@ddblocal
def test_every_operation_gives_what_the_botocore_client_gives(
    dynamodb_local_endpoint: str, table: str
) -> None:
    store = make_store(dynamodb_local_endpoint, table)
    client = store.connection.client
    transport = transport_for(store)
    seed = item(
        "s-1",
        status={"S": "päid ✓"},
        total={"N": "12.50"},
        blob={"B": b"\x00\xffbinary"},
        blobs={"BS": [b"a", b"\x01\x02"]},
        tags={"SS": ["x", "y"]},
        nested={"M": {"list": {"L": [{"N": "1"}, {"NULL": True}, {"BOOL": False}]}}},
    )
    client._make_api_call("PutItem", {"TableName": table, "Item": seed})
    capacity = {"ReturnConsumedCapacity": "TOTAL"}

    def both(operation: str, request: dict[str, Any]) -> tuple[Any, Any]:
        ours = send(transport, operation, request)
        theirs = client._make_api_call(operation, request)
        assert ours["ResponseMetadata"]["HTTPStatusCode"] == 200
        return without_metadata(ours), without_metadata(theirs)

    reads: list[tuple[str, dict[str, Any]]] = [
        ("GetItem", {"TableName": table, "Key": key("s-1"), "ConsistentRead": True, **capacity}),
        ("GetItem", {"TableName": table, "Key": key("missing")}),
        (
            "Query",
            {
                "TableName": table,
                "KeyConditionExpression": "sagaName = :n",
                "ExpressionAttributeValues": {":n": {"S": NAME}},
                **capacity,
            },
        ),
        (
            "Query",
            {
                "TableName": table,
                "IndexName": "correlationIndex",
                "KeyConditionExpression": "sagaName = :n AND correlationId = :c",
                "ExpressionAttributeValues": {":n": {"S": NAME}, ":c": {"S": "c-s-1"}},
            },
        ),
        ("Scan", {"TableName": table, "Limit": 1, **capacity}),
    ]
    for operation, request in reads:
        ours, theirs = both(operation, request)
        assert ours == theirs, operation
    assert both(*reads[0])[0]["Item"]["blob"] == {"B": b"\x00\xffbinary"}

    # Writes of the same item one after the other: each returns what the other wrote.
    put = {"TableName": table, "Item": seed, "ReturnValues": "ALL_OLD", **capacity}
    ours, theirs = both("PutItem", put)
    assert ours == theirs
    assert sorted(ours["Attributes"]["blobs"]["BS"]) == [b"\x01\x02", b"a"]  # a set
    update = {
        "TableName": table,
        "Key": key("s-1"),
        "UpdateExpression": "SET #s = :s ADD version :one",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "shipped"}, ":one": {"N": "1"}},
        "ReturnValues": "UPDATED_OLD",
        **capacity,
    }
    ours, theirs = both("UpdateItem", update)
    assert ours["Attributes"]["version"] == {"N": "0"}
    assert theirs["Attributes"]["version"] == {"N": "1"}  # after ours
    assert ours["Attributes"]["status"] == {"S": "päid ✓"}
    assert ours["ConsumedCapacity"] == theirs["ConsumedCapacity"]
    delete = {"TableName": table, "Key": key("s-1"), "ReturnValues": "ALL_OLD", **capacity}
    ours = without_metadata(send(transport, "DeleteItem", delete))
    client._make_api_call("PutItem", {"TableName": table, "Item": ours["Attributes"]})
    assert without_metadata(client._make_api_call("DeleteItem", delete)) == ours


@ddblocal
def test_error_responses_are_dynamodb_errors_with_their_code(
    dynamodb_local_endpoint: str, table: str
) -> None:
    store = make_store(dynamodb_local_endpoint, table)
    transport = transport_for(store)
    stored = item("e-1", status={"S": "paid"})
    send(transport, "PutItem", {"TableName": table, "Item": stored})

    conflict = {
        "TableName": table,
        "Item": item("e-1"),
        "ConditionExpression": "attribute_not_exists(sagaId)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    with pytest.raises(DynamoDBError) as caught:
        send(transport, "PutItem", conflict)
    assert caught.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert caught.value.response["Item"] == stored
    with pytest.raises(ClientError) as botocore_caught:
        store.connection.client._make_api_call("PutItem", conflict)
    assert caught.value.response["Item"] == botocore_caught.value.response["Item"]
    assert not is_retryable(caught.value)

    with pytest.raises(DynamoDBError) as caught:
        send(transport, "GetItem", {"TableName": "no-such-table", "Key": key("e-1")})
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"

    with pytest.raises(DynamoDBError) as caught:
        send(transport, "GetItem", {"TableName": table, "Key": {"sagaName": {"S": NAME}}})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@ddblocal
def test_the_request_on_the_wire_is_the_signed_one_with_a_session_token(
    relay: Relay, dynamodb_local_endpoint: str
) -> None:
    # DynamoDB Local does not check signatures: the signature is checked here against
    # botocore's SigV4Auth over the request exactly as the server received it.
    credentials = {**CREDENTIALS, "aws_session_token": "session-token/+=="}
    table = make_store(dynamodb_local_endpoint, credentials=credentials)
    create_table(table)
    store = make_store(relay.endpoint, table.table_name, credentials=credentials)
    transport = transport_for(store)
    request = {"TableName": store.table_name, "Item": item("w-1")}
    assert send(transport, "PutItem", request)["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = send(transport, "GetItem", {"TableName": store.table_name, "Key": key("w-1")})
    assert got["Item"] == item("w-1")

    (_, headers, body), _ = relay.requests
    assert sorted(name.lower() for name in headers) == [
        "accept-encoding",
        "authorization",
        "content-length",
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-target",
    ]
    assert headers["Host"] == urlsplit(relay.endpoint).netloc
    assert headers["Accept-Encoding"] == "identity"
    assert headers["X-Amz-Security-Token"] == "session-token/+=="
    assert "x-amz-security-token" in headers["Authorization"]

    expected = AWSRequest(
        method="POST",
        url=relay.endpoint + "/",
        data=body,
        headers={
            "Content-Type": headers["Content-Type"],
            "X-Amz-Target": headers["X-Amz-Target"],
        },
    )
    instant = time.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    signed_at = botocore.auth.datetime.datetime.fromtimestamp(
        calendar.timegm(instant), botocore.auth.datetime.timezone.utc
    ).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=signed_at):
        SigV4Auth(
            Credentials(
                CREDENTIALS["aws_access_key_id"],
                CREDENTIALS["aws_secret_access_key"],
                "session-token/+==",
            ),
            "dynamodb",
            REGION,
        ).add_auth(expected)
    assert headers["Authorization"] == expected.headers["Authorization"]


# -- answers damaged or lost -----------------------------------------------------------------


@pytest.fixture
def faulty_table(
    faulty: tuple[FaultInjector, DynamoDBProxy], dynamodb_local_endpoint: str
) -> tuple[FaultInjector, AsyncHttpTransport, str]:
    """A transport sending through the fault proxy to a fresh table."""
    injector, proxy = faulty
    store = make_store(dynamodb_local_endpoint)
    create_table(store)
    behind = make_store(proxy.endpoint, store.table_name)
    return injector, transport_for(behind), store.table_name


@ddblocal
@pytest.mark.parametrize("corruption", [CORRUPT_BODY, CORRUPT_CRC32])
def test_a_corrupted_answer_raises_never_returns_data(
    faulty_table: tuple[FaultInjector, AsyncHttpTransport, str], corruption: str
) -> None:
    injector, transport, table = faulty_table
    send(transport, "PutItem", {"TableName": table, "Item": item("c-1", note={"S": "x" * 300})})
    get = {"TableName": table, "Key": key("c-1"), "ConsistentRead": True}

    async def scenario() -> Any:
        injector.queue("GetItem", corruption)
        with pytest.raises(ChecksumError) as caught:
            await transport.send("GetItem", get)
        assert is_retryable(caught.value)
        assert may_have_landed(caught.value)
        injector.queue("PutItem", corruption)
        with pytest.raises(ChecksumError):
            await transport.send("PutItem", {"TableName": table, "Item": item("c-2")})
        return await transport.send("GetItem", get)  # the same connection, still in step

    assert run(transport, scenario())["Item"]["note"] == {"S": "x" * 300}
    assert injector.requests["GetItem"] == 2
    # The corrupted PutItem had been applied.
    assert send(transport, "GetItem", {"TableName": table, "Key": key("c-2")})["Item"]


@ddblocal
@pytest.mark.parametrize("fault", [DROP_RESPONSE, RESET])
def test_a_connection_reset_after_the_request_may_have_landed(
    faulty_table: tuple[FaultInjector, AsyncHttpTransport, str], fault: str
) -> None:
    injector, transport, table = faulty_table
    injector.queue("PutItem", fault)
    with pytest.raises(ConnectionClosedError) as caught:
        send(transport, "PutItem", {"TableName": table, "Item": item("r-1")})
    assert is_retryable(caught.value)
    assert may_have_landed(caught.value)
    applied = send(transport, "GetItem", {"TableName": table, "Key": key("r-1")})
    assert ("Item" in applied) is (fault == DROP_RESPONSE)  # forwarded, then the answer lost


def test_a_refused_connection_was_not_sent() -> None:
    transport = transport_for(make_store(f"http://{LOOPBACK}:{free_port()}"))
    with pytest.raises(EndpointConnectionError) as caught:
        send(transport, "PutItem", {"TableName": "t-1", "Item": item("x")})
    assert not isinstance(caught.value, (ProxyConnectError, TLSError))
    assert is_retryable(caught.value)
    assert not may_have_landed(caught.value)


def test_an_unknown_host_was_not_sent() -> None:
    transport = transport_for(make_store("http://no-such-host.invalid:8000"))
    with pytest.raises(EndpointConnectionError) as caught:
        send(transport, "GetItem", {"TableName": "t-1", "Key": key("x")})
    assert not may_have_landed(caught.value)


def test_a_read_timeout_may_have_landed_and_drops_the_connection() -> None:
    with socket.create_server((LOOPBACK, 0)) as mute:  # accepts, reads nothing, never answers
        transport = transport_for(
            make_store(f"http://{LOOPBACK}:{mute.getsockname()[1]}", read_timeout_seconds=0.2)
        )

        async def scenario() -> None:
            with pytest.raises(ReadTimeoutError) as caught:
                await transport.send("GetItem", {"TableName": "t-1", "Key": key("x")})
            assert may_have_landed(caught.value)
            assert is_retryable(caught.value)
            session = transport._sessions[asyncio.get_running_loop()]
            assert session.connector is not None
            assert len(session.connector._conns) == 0  # not pooled

        run(transport, scenario())


def test_a_tls_handshake_that_never_completes_is_a_connect_timeout() -> None:
    with socket.create_server((LOOPBACK, 0)) as mute:
        transport = transport_for(
            make_store(f"https://{LOOPBACK}:{mute.getsockname()[1]}", connect_timeout_seconds=0.2)
        )
        with pytest.raises(ConnectTimeoutError) as caught:
            send(transport, "GetItem", {"TableName": "t-1", "Key": key("x")})
    assert not may_have_landed(caught.value)
    assert is_retryable(caught.value)


# -- cancellation ----------------------------------------------------------------------------


@ddblocal
@pytest.mark.parametrize("hold", [HOLD_BODY, HOLD_HEAD])
def test_a_request_cancelled_mid_answer_closes_its_connection(
    relay: Relay, dynamodb_local_endpoint: str, table: str, hold: str
) -> None:
    store = make_store(relay.endpoint, table)
    transport = transport_for(store)
    big = item("big", note={"S": "b" * 20_000})
    small = item("small", note={"S": "s"})
    direct = make_store(dynamodb_local_endpoint, table).connection.client  # not via the relay
    for stored in (big, small):
        direct._make_api_call("PutItem", {"TableName": table, "Item": stored})

    def get(saga_id: str) -> Coroutine[Any, Any, dict[str, Any]]:
        request = {"TableName": table, "Key": key(saga_id), "ConsistentRead": True}
        return transport.send("GetItem", request)

    async def scenario() -> None:
        assert (await get("small"))["Item"] == small  # connection 1, pooled
        relay.plan.append(hold)
        task = asyncio.create_task(get("big"))  # connection 1 again
        await until(relay.holding)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The rest of the answer now arrives on connection 1, if it is still open.
        relay.release.set()
        await asyncio.get_running_loop().run_in_executor(None, relay.wait_closed, 1)
        for _ in range(3):
            assert (await get("small"))["Item"] == small
        assert (await get("big"))["Item"] == big

    run(transport, scenario())
    assert [number for number, _, _ in relay.requests] == [1, 1, 2, 2, 2, 2]
    assert relay.connections == 2


@ddblocal
def test_many_requests_cancelled_at_random_points_leave_no_connection_out_of_step(
    relay: Relay, dynamodb_local_endpoint: str, table: str
) -> None:
    store = make_store(relay.endpoint, table)
    transport = transport_for(store)
    items = {f"i-{n}": item(f"i-{n}", note={"S": str(n) * (200 + 50 * n)}) for n in range(16)}
    direct = make_store(dynamodb_local_endpoint, table).connection.client  # not via the relay
    for stored in items.values():
        direct._make_api_call("PutItem", {"TableName": table, "Item": stored})

    async def get(saga_id: str) -> None:
        request = {"TableName": table, "Key": key(saga_id), "ConsistentRead": True}
        assert (await transport.send("GetItem", request))["Item"] == items[saga_id]

    async def scenario() -> None:
        relay.plan.extend([TRICKLE] * 64)
        # Cancelled at different points: waiting for a connection, sending, mid-answer.
        tasks = [asyncio.create_task(get(saga_id)) for saga_id in items for _ in range(4)]
        for n, task in enumerate(tasks):
            await asyncio.sleep(0.001 * (n % 7))
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        # Each one either got its own answer or was cancelled: never another's, never an error.
        assert all(r is None or isinstance(r, asyncio.CancelledError) for r in results)
        completed = sum(result is None for result in results)
        assert completed < len(tasks)
        assert len(relay.requests) > completed  # some were cancelled after being sent
        # (A request cancelled just after its answer was read in full leaves its connection
        # clean and pooled, so not every one of them closes a connection.)
        await asyncio.get_running_loop().run_in_executor(None, relay.wait_closed, 1)
        relay.plan.clear()
        # Every later answer is the one asked for, on whatever connection the pool gives.
        await asyncio.gather(*(get(saga_id) for saga_id in items for _ in range(4)))

    run(transport, scenario())


# -- event loops -----------------------------------------------------------------------------


@ddblocal
def test_one_session_per_event_loop(dynamodb_local_endpoint: str, table: str) -> None:
    transport = transport_for(make_store(dynamodb_local_endpoint, table))
    get = {"TableName": table, "Key": key("none")}
    sessions: list[Any] = []

    async def use() -> None:
        await transport.send("GetItem", get)
        await transport.send("GetItem", get)
        loop = asyncio.get_running_loop()
        assert list(transport._sessions) == [loop]  # no other loop's session is kept
        sessions.append(transport._sessions[loop])

    asyncio.run(use())  # no aclose(): the loop ends with the session open
    asyncio.run(use())  # a new loop gets a new session; the closed loop's one is dropped
    assert sessions[0] is not sessions[1]
    assert sessions[0].closed
    assert not sessions[1].closed
    run(transport, use())  # aclose() closes the current loop's session
    assert sessions[2].closed
    assert transport._sessions == {}
    transport.close()  # nothing left; harmless


@ddblocal
def test_two_threads_with_their_own_loops_share_one_transport(
    dynamodb_local_endpoint: str, table: str
) -> None:
    transport = transport_for(make_store(dynamodb_local_endpoint, table))
    errors: list[BaseException] = []

    async def work(name: str) -> None:
        for n in range(20):
            request = {"TableName": table, "Item": item(f"{name}-{n}")}
            await transport.send("PutItem", request)
            got = await transport.send("GetItem", {"TableName": table, "Key": key(f"{name}-{n}")})
            assert got["Item"] == item(f"{name}-{n}")

    def thread(name: str) -> None:
        try:
            run(transport, work(name))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=thread, args=(f"t{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []


@ddblocal
def test_close_without_a_running_loop_closes_a_stopped_loops_session(
    dynamodb_local_endpoint: str, table: str
) -> None:
    transport = transport_for(make_store(dynamodb_local_endpoint, table))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(transport.send("GetItem", {"TableName": table, "Key": key("x")}))
        session = transport._sessions[loop]
        transport.close()
        assert session.closed
        assert transport._sessions == {}
    finally:
        loop.close()


@ddblocal
def test_many_concurrent_requests_stay_within_the_pool(relay: Relay, table: str) -> None:
    transport = transport_for(make_store(relay.endpoint, table))

    async def scenario() -> None:
        requests = [
            transport.send("PutItem", {"TableName": table, "Item": item(f"p-{n}")})
            for n in range(64)
        ]
        await asyncio.gather(*requests)
        gets = [
            transport.send("GetItem", {"TableName": table, "Key": key(f"p-{n}")}) for n in range(64)
        ]
        answers = await asyncio.gather(*gets)
        assert [a["Item"] for a in answers] == [item(f"p-{n}") for n in range(64)]

    run(transport, scenario())
    assert 1 <= relay.connections <= 8


# -- TLS ---------------------------------------------------------------------------------------


class TLS(NamedTuple):
    ca: CertificateAuthority
    other_ca: CertificateAuthority
    good: tuple[Path, Path]  # for IP 127.0.0.1


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLS:
    directory = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority(directory, "test CA")
    other = CertificateAuthority(directory, "other CA")
    return TLS(ca, other, ca.issue("loopback", ips=(LOOPBACK,)))


@pytest.fixture
def tls_ddb(tls: TLS, dynamodb_local_endpoint: str) -> Iterator[TLSTerminatingProxy]:
    """DynamoDB Local behind TLS with a certificate from ``tls.ca``."""
    with TLSTerminatingProxy(host_port(dynamodb_local_endpoint), *tls.good) as proxy:
        yield proxy


@ddblocal
def test_tls_with_the_right_ca(
    tls: TLS, tls_ddb: TLSTerminatingProxy, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca.cert_path))
    transport = transport_for(make_store(tls_ddb.endpoint, table))

    async def scenario() -> None:
        await transport.send("PutItem", {"TableName": table, "Item": item("tls")})
        for _ in range(3):
            got = await transport.send("GetItem", {"TableName": table, "Key": key("tls")})
            assert got["Item"] == item("tls")

    run(transport, scenario())
    assert tls_ddb.handshakes == 1  # keep-alive over TLS


@ddblocal
def test_tls_with_the_wrong_ca_is_refused_before_sending(
    tls: TLS, tls_ddb: TLSTerminatingProxy, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.other_ca.cert_path))
    transport = transport_for(make_store(tls_ddb.endpoint, table))
    with pytest.raises(TLSError) as caught:
        send(transport, "PutItem", {"TableName": table, "Item": item("tls")})
    assert "certificate verify failed" in str(caught.value)
    assert not may_have_landed(caught.value)
    wait_until(lambda: tls_ddb.failed_handshakes >= 1, "the server to see the refused handshake")
    assert tls_ddb.handshakes == 0
    # Nothing was written: read back over TLS with the right CA.
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca.cert_path))
    right = transport_for(make_store(tls_ddb.endpoint, table))
    assert "Item" not in send(right, "GetItem", {"TableName": table, "Key": key("tls")})


# -- proxies -----------------------------------------------------------------------------------

USER = "alice"
PASSWORD = "s3cr3t:p@ss"
USERINFO = "alice:s3cr3t%3Ap%40ss@"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def assert_no_credentials(text: str) -> None:
    for secret in (USER, PASSWORD, "s3cr3t", "p%40ss", AUTHORIZATION.split()[1]):
        assert secret not in text


@pytest.fixture
def forward_proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as proxy:
        yield proxy


@ddblocal
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_an_http_endpoint_goes_through_the_http_proxy(
    dynamodb_local_endpoint: str,
    table: str,
    forward_proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, forward_proxy.url(USERINFO))
    transport = transport_for(make_store(dynamodb_local_endpoint, table))

    async def scenario() -> None:
        await transport.send("PutItem", {"TableName": table, "Item": item("px")})
        got = await transport.send("GetItem", {"TableName": table, "Key": key("px")})
        assert got["Item"] == item("px")

    run(transport, scenario())
    assert "***:***@" in repr(transport)
    assert_no_credentials(repr(transport))
    line = f"POST {dynamodb_local_endpoint}/ HTTP/1.1"
    assert forward_proxy.seen == [(line, AUTHORIZATION)] * 2
    assert forward_proxy.connections == 1  # keep-alive to the proxy


@ddblocal
@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_an_https_endpoint_goes_through_a_connect_tunnel(
    tls: TLS,
    tls_ddb: TLSTerminatingProxy,
    table: str,
    forward_proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca.cert_path))
    monkeypatch.setenv(variable, forward_proxy.url(USERINFO))
    transport = transport_for(make_store(tls_ddb.endpoint, table))

    async def scenario() -> None:
        await transport.send("PutItem", {"TableName": table, "Item": item("tunnel")})
        for _ in range(2):
            got = await transport.send("GetItem", {"TableName": table, "Key": key("tunnel")})
            assert got["Item"] == item("tunnel")

    run(transport, scenario())
    connect = f"CONNECT {LOOPBACK}:{tls_ddb.port} HTTP/1.1"
    assert forward_proxy.seen == [(connect, AUTHORIZATION)]  # one tunnel, kept alive
    assert tls_ddb.handshakes == 1


@ddblocal
@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
def test_no_proxy_bypasses_the_proxy(
    dynamodb_local_endpoint: str,
    table: str,
    forward_proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url())
    monkeypatch.setenv(variable, f"example.test,{host_port(dynamodb_local_endpoint)[0]}")
    transport = transport_for(make_store(dynamodb_local_endpoint, table))
    send(transport, "PutItem", {"TableName": table, "Item": item("direct")})
    assert forward_proxy.seen == []
    assert "via" not in repr(transport)


def test_a_refused_or_unreachable_proxy_was_not_sent_and_never_shows_credentials(
    tls: TLS, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"https://{LOOPBACK}:{free_port()}"  # never reached
    with ForwardProxy(require_auth="Basic other") as refusing:
        monkeypatch.setenv("HTTPS_PROXY", refusing.url(USERINFO))
        transport = transport_for(make_store(endpoint))
        with pytest.raises(ProxyConnectError) as refused:
            send(transport, "GetItem", {"TableName": "t-1", "Key": key("x")})
        assert refusing.seen[0][1] == AUTHORIZATION  # sent, to the proxy only
    assert "407" in displayed(refused.value)
    assert not may_have_landed(refused.value)
    assert_no_credentials(displayed(refused.value))

    monkeypatch.setenv("HTTPS_PROXY", f"http://{USERINFO}{LOOPBACK}:{free_port()}")
    transport = transport_for(make_store(endpoint))
    with pytest.raises(ProxyConnectError) as unreachable:
        send(transport, "GetItem", {"TableName": "t-1", "Key": key("x")})
    assert not may_have_landed(unreachable.value)
    assert is_retryable(unreachable.value)
    assert_no_credentials(displayed(unreachable.value))


def test_a_proxy_that_never_answers_connect_is_a_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.create_server((LOOPBACK, 0)) as mute:  # accepts the CONNECT, never answers
        monkeypatch.setenv("HTTPS_PROXY", f"http://{LOOPBACK}:{mute.getsockname()[1]}")
        transport = transport_for(
            make_store(f"https://{LOOPBACK}:{free_port()}", connect_timeout_seconds=0.2)
        )
        with pytest.raises(ConnectTimeoutError) as caught:
            send(transport, "GetItem", {"TableName": "t-1", "Key": key("x")})
    assert not may_have_landed(caught.value)


def test_credentials_are_resolved_once_and_missing_ones_raise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = DynamoDBSagaStore(OrderSaga, region=REGION, endpoint=f"http://{LOOPBACK}:9")
    transport = transport_for(store)
    with pytest.raises(NoCredentialsError):
        send(transport, "GetItem", {"TableName": "t-1", "Key": key("x")})
