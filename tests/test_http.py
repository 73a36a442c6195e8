"""The HTTP/1.1 layer of the store's own transport (saga_store_pynamo._http), on loopback.

A small HTTP/1.1 server (``Origin``) counts connections and requests and can misbehave on
cue: close idle connections, reset, stop half-way through a body, never answer. TLS goes
through tests/tls_proxy.py's TLS-terminating proxy with a throwaway CA; proxies through its
recording forward proxy. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    InvalidConfigError,
    ReadTimeoutError,
)
from botocore.httpsession import get_cert_path

from saga_store_pynamo import _http
from saga_store_pynamo._http import (
    ConnectionPool,
    Headers,
    PoolStats,
    ProxyConnectError,
    TLSError,
    UnsupportedTransportSetting,
    resolve_proxy,
    resolve_verify,
)
from saga_store_pynamo.retry import is_retryable, may_have_landed
from tests.tls_proxy import CertificateAuthority, ForwardProxy, TLSTerminatingProxy

LOOPBACK = "127.0.0.1"
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


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No proxy or CA bundle from the machine running the tests leaks in."""
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail after 10 s (a hang guard, not a timing check)."""
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


# -- a loopback origin server that misbehaves on cue ----------------------------------------


class Seen(NamedTuple):
    connection: int
    request_line: str
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[["_Handler", "Origin", Seen], None]


def answer(
    handler: _Handler, origin: Origin, seen: Seen, *, extra: dict[str, str] | None = None
) -> None:
    """200 with a small JSON body echoing the request body."""
    body = json.dumps({"echo": seen.body.decode()}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/x-amz-json-1.0")
    handler.send_header("X-Amz-Crc32", "12345")
    for name, value in (extra or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def reset(handler: _Handler) -> None:
    """Close the connection with a TCP reset (SO_LINGER 0) instead of a FIN."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()  # really closes (with the RST) when the handler's files close
    handler.close_connection = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # The head and the body go out in two writes: without this, Nagle's algorithm holds
        # the body for the client's delayed ACK (40 ms a response).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.number = self.server.origin.connected()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        origin = self.server.origin
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen = Seen(self.number, self.requestline, dict(self.headers.items()), body)
        with origin.cond:
            origin.seen.append(seen)
            origin.in_flight += 1
            origin.max_in_flight = max(origin.max_in_flight, origin.in_flight)
            origin.cond.notify_all()
        try:
            origin.behaviour(self, origin, seen)
        finally:
            with origin.cond:
                origin.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    origin: Origin

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self.origin.cond:
            self.origin.closed += 1
            self.origin.cond.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up mid-exchange is what several tests stage


class Origin:
    """A loopback HTTP/1.1 server: ``behaviour`` answers each request (default: ``answer``)."""

    def __init__(self) -> None:
        self.behaviour: Behaviour = answer
        self.cond = threading.Condition()
        self.accepted = 0
        self.closed = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.origin = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def connected(self) -> int:
        with self.cond:
            self.accepted += 1
            return self.accepted

    def wait_closed(self, count: int) -> None:
        """Wait until the server has closed ``count`` connections."""
        with self.cond:
            assert self.cond.wait_for(lambda: self.closed >= count, timeout=10), "no close seen"

    def __enter__(self) -> Origin:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        yield server


def echoed(response: _http.Response) -> str:
    assert response.status == 200
    return str(json.loads(response.body)["echo"])


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# -- keep-alive, the request on the wire, the response --------------------------------------


def test_sequential_requests_share_one_keep_alive_connection(origin: Origin) -> None:
    with ConnectionPool(origin.endpoint) as pool:
        bodies = [echoed(pool.send(f"request {i}".encode(), {})) for i in range(20)]
        assert bodies == [f"request {i}" for i in range(20)]
        assert origin.accepted == 1
        assert {seen.connection for seen in origin.seen} == {1}
        assert pool.stats() == PoolStats(open=1, idle=1, waiting=0)


def test_the_request_on_the_wire(origin: Origin) -> None:
    headers = {"X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Length": "999"}
    with ConnectionPool(f"{origin.endpoint}/base/path") as pool:
        assert pool.host_header == f"{LOOPBACK}:{origin.port}"
        assert pool.path == "/base/path"
        pool.send(b'{"TableName": "t"}', headers)
        pool.send(b"{}", {"Host": "signed.example", "Accept-Encoding": "gzip"})
    first, second = origin.seen
    assert first.request_line == "POST /base/path HTTP/1.1"
    assert first.headers == {
        "X-Amz-Target": "DynamoDB_20120810.GetItem",
        "Host": f"{LOOPBACK}:{origin.port}",
        "Accept-Encoding": "identity",
        "Content-Length": "18",  # the body's, not the caller's
    }
    assert first.body == b'{"TableName": "t"}'
    assert second.headers["Host"] == "signed.example"  # a caller's Host replaces the default
    assert second.headers["Accept-Encoding"] == "gzip"


def test_the_host_header_omits_a_default_port() -> None:
    assert ConnectionPool("http://example.test:80").host_header == "example.test"
    assert ConnectionPool("http://example.test:8000").host_header == "example.test:8000"
    assert ConnectionPool("https://[::1]:443", verify=False).host_header == "[::1]"


def test_response_headers_are_case_insensitive(origin: Origin) -> None:
    origin.behaviour = lambda h, o, s: answer(h, o, s, extra={"Set-Thing": "a"})
    with ConnectionPool(origin.endpoint) as pool:
        status, headers, body = pool.send(b"x", {})
    assert status == 200
    assert headers["x-amz-crc32"] == headers["X-AMZ-CRC32"] == "12345"
    assert headers.get("X-Amz-Crc32") == "12345"
    assert "content-type" in headers
    assert headers.get("missing") is None
    assert json.loads(body) == {"echo": "x"}
    assert Headers([("A", "1"), ("a", "2")])["A"] == "1, 2"


def test_a_chunked_response_is_read_in_full_and_the_connection_reused(origin: Origin) -> None:
    def chunked(handler: _Handler, origin: Origin, seen: Seen) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")

    origin.behaviour = chunked
    with ConnectionPool(origin.endpoint) as pool:
        assert pool.send(b"", {}).body == b"hello world"
        assert pool.send(b"", {}).body == b"hello world"
    assert origin.accepted == 1


@pytest.mark.parametrize(
    "headers",
    [{"X-Evil": "a\r\nX-Injected: 1"}, {"Bad Name": "x"}, {"X-Text": "caf\u00e9 \u2603"}],
)
def test_a_header_that_cannot_be_sent_is_refused_before_anything_leaves(
    origin: Origin, headers: dict[str, str]
) -> None:
    with ConnectionPool(origin.endpoint) as pool:
        with pytest.raises(ValueError, match="header"):
            pool.send(b"{}", headers)
        assert pool.stats() == PoolStats(open=0, idle=0, waiting=0)
        assert echoed(pool.send(b"after", {})) == "after"
    assert [seen.body for seen in origin.seen] == [b"after"]


# -- the pool under threads --------------------------------------------------------------------


def test_pool_bound_and_thread_safety(origin: Origin) -> None:
    """16 threads on a pool of 4: the server holds the first requests until 12 threads wait
    for a connection, so an unbounded pool would have opened more connections by then."""

    def held(handler: _Handler, origin: Origin, seen: Seen) -> None:
        origin.release.wait(timeout=10)
        answer(handler, origin, seen)

    origin.behaviour = held
    pool = ConnectionPool(origin.endpoint, max_connections=4)
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def worker(thread: int) -> None:
        try:
            for i in range(25):
                key = f"{thread}-{i}"
                results[key] = echoed(pool.send(key.encode(), {"X-Key": key}))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    wait_until(lambda: pool.stats().waiting == 12 and origin.in_flight == 4, "a full pool")
    assert origin.accepted == 4
    origin.release.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(results) == 400
    assert all(key == value for key, value in results.items())
    assert origin.accepted == 4
    assert origin.max_in_flight == 4
    assert pool.stats() == PoolStats(open=4, idle=4, waiting=0)
    pool.close()
    assert pool.stats() == PoolStats(open=0, idle=0, waiting=0)
    origin.wait_closed(4)


# -- connections the server closes --------------------------------------------------------


def test_idle_connections_the_server_closed_are_replaced_transparently(origin: Origin) -> None:
    """The server closes every connection after its response, without saying so (as a
    keep-alive timeout does): each next request notices before sending and opens a new one."""

    def close_after(handler: _Handler, origin: Origin, seen: Seen) -> None:
        answer(handler, origin, seen)
        handler.close_connection = True  # no "Connection: close": the client pools it

    origin.behaviour = close_after
    with ConnectionPool(origin.endpoint) as pool:
        for i in range(5):
            assert echoed(pool.send(f"r{i}".encode(), {})) == f"r{i}"
            origin.wait_closed(i + 1)
            assert pool.stats().idle == 1  # pooled: it looked alive when the body ended
    assert origin.accepted == 5
    assert [seen.body for seen in origin.seen] == [f"r{i}".encode() for i in range(5)]


def test_a_stale_connection_failing_on_write_is_retried_on_a_new_one(
    origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the close is not noticed before writing (the race the pre-send check narrows),
    the write itself fails on the reset connection; the request is written again."""

    def reset_after(handler: _Handler, origin: Origin, seen: Seen) -> None:
        answer(handler, origin, seen)
        reset(handler)

    origin.behaviour = reset_after
    monkeypatch.setattr(_http, "_is_dropped", lambda sock: False)
    with ConnectionPool(origin.endpoint) as pool:
        assert echoed(pool.send(b"first", {})) == "first"
        origin.wait_closed(1)
        assert echoed(pool.send(b"second", {})) == "second"
    assert origin.accepted == 2
    assert [seen.body for seen in origin.seen] == [b"first", b"second"]


def test_a_connection_close_response_is_not_pooled(origin: Origin) -> None:
    origin.behaviour = lambda h, o, s: answer(h, o, s, extra={"Connection": "close"})
    with ConnectionPool(origin.endpoint) as pool:
        for i in range(3):
            assert echoed(pool.send(f"r{i}".encode(), {})) == f"r{i}"
            assert pool.stats() == PoolStats(open=0, idle=0, waiting=0)
    assert origin.accepted == 3


@pytest.mark.parametrize("reused", [False, True], ids=["new", "reused"])
@pytest.mark.parametrize("how", ["reset", "close"])
def test_a_failure_after_the_request_was_read_may_have_landed(
    origin: Origin, reused: bool, how: str
) -> None:
    """The server reads the request, then resets or closes without a response: the request
    may have been applied, so it is never written again, even on a reused connection."""

    def fail(handler: _Handler, origin: Origin, seen: Seen) -> None:
        if seen.body != b"doomed":
            answer(handler, origin, seen)
        elif how == "reset":
            reset(handler)
        else:
            handler.close_connection = True

    origin.behaviour = fail
    with ConnectionPool(origin.endpoint) as pool:
        if reused:
            pool.send(b"warm-up", {})
        with pytest.raises(ConnectionClosedError) as caught:
            pool.send(b"doomed", {})
        assert pool.stats() == PoolStats(open=0, idle=0, waiting=0)
    assert may_have_landed(caught.value)
    assert is_retryable(caught.value)
    assert [seen.body for seen in origin.seen].count(b"doomed") == 1
    assert origin.accepted == 1


def test_a_refused_connection_was_not_applied() -> None:
    with ConnectionPool(f"http://{LOOPBACK}:{free_port()}") as pool:
        with pytest.raises(EndpointConnectionError) as caught:
            pool.send(b"{}", {})
        assert pool.stats() == PoolStats(open=0, idle=0, waiting=0)
    assert not may_have_landed(caught.value)
    assert is_retryable(caught.value)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_a_read_timeout_may_have_landed_and_drops_the_connection(origin: Origin) -> None:
    def silent(handler: _Handler, origin: Origin, seen: Seen) -> None:
        origin.release.wait(timeout=10)

    origin.behaviour = silent
    with ConnectionPool(origin.endpoint, read_timeout=0.2) as pool:
        with pytest.raises(ReadTimeoutError) as caught:
            pool.send(b"{}", {})
        assert pool.stats() == PoolStats(open=0, idle=0, waiting=0)
    assert may_have_landed(caught.value)
    assert is_retryable(caught.value)


def test_half_a_body_then_close_raises_and_the_connection_is_not_reused(origin: Origin) -> None:
    def half(handler: _Handler, origin: Origin, seen: Seen) -> None:
        if seen.body == b"ok":
            answer(handler, origin, seen)
            return
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b"x" * 50)
        handler.close_connection = True

    origin.behaviour = half
    with ConnectionPool(origin.endpoint) as pool:
        assert echoed(pool.send(b"ok", {})) == "ok"
        with pytest.raises(ConnectionClosedError) as caught:
            pool.send(b"half", {})
        assert may_have_landed(caught.value)
        assert pool.stats() == PoolStats(open=0, idle=0, waiting=0)
        assert echoed(pool.send(b"ok", {})) == "ok"
    assert origin.accepted == 2
    assert [seen.connection for seen in origin.seen] == [1, 1, 2]


def test_a_connection_in_use_during_close_is_closed_when_its_exchange_ends(
    origin: Origin,
) -> None:
    def held(handler: _Handler, origin: Origin, seen: Seen) -> None:
        origin.release.wait(timeout=10)
        answer(handler, origin, seen)

    origin.behaviour = held
    pool = ConnectionPool(origin.endpoint)
    result: list[_http.Response] = []
    thread = threading.Thread(target=lambda: result.append(pool.send(b"late", {})))
    thread.start()
    wait_until(lambda: origin.in_flight == 1, "the request in flight")
    pool.close()
    origin.release.set()
    thread.join(timeout=10)
    assert echoed(result[0]) == "late"
    assert pool.stats() == PoolStats(open=0, idle=0, waiting=0)
    origin.wait_closed(1)
    assert echoed(pool.send(b"again", {})) == "again"  # still usable: a new connection
    assert origin.accepted == 2


@pytest.mark.parametrize(
    ("endpoint", "options"),
    [
        ("ftp://127.0.0.1", {}),
        ("http://", {}),
        ("http://127.0.0.1", {"max_connections": 0}),
        ("http://127.0.0.1", {"connect_timeout": 0}),
        ("http://127.0.0.1", {"read_timeout": True}),
    ],
)
def test_invalid_settings_are_refused(endpoint: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ConnectionPool(endpoint, **options)


# -- TLS ---------------------------------------------------------------------------------------


class TLS(NamedTuple):
    ca: CertificateAuthority
    other_ca: CertificateAuthority
    good: tuple[Path, Path]  # for IP 127.0.0.1
    wrong_host: tuple[Path, Path]  # for elsewhere.test only


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLS:
    directory = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority(directory, "test CA")
    other = CertificateAuthority(directory, "other CA")
    return TLS(
        ca,
        other,
        ca.issue("loopback", ips=(LOOPBACK,)),
        ca.issue("elsewhere", dns=("elsewhere.test",)),
    )


@pytest.fixture
def tls_origin(origin: Origin, tls: TLS) -> Iterator[TLSTerminatingProxy]:
    with TLSTerminatingProxy((LOOPBACK, origin.port), *tls.good) as proxy:
        yield proxy


def test_tls_with_the_ca_from_aws_ca_bundle(
    origin: Origin, tls: TLS, tls_origin: TLSTerminatingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca.cert_path))
    with ConnectionPool(tls_origin.endpoint) as pool:
        assert [echoed(pool.send(f"s{i}".encode(), {})) for i in range(3)] == ["s0", "s1", "s2"]
    assert tls_origin.handshakes == 1  # keep-alive over TLS: one handshake
    assert origin.accepted == 1


@pytest.mark.parametrize("how", ["verify", "config-file"])
def test_tls_with_the_ca_given_explicitly_or_in_the_profile(
    tls: TLS,
    tls_origin: TLSTerminatingProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    if how == "verify":
        pool = ConnectionPool(tls_origin.endpoint, verify=str(tls.ca.cert_path))
    else:
        config = tmp_path / "config"
        config.write_text(f"[default]\nca_bundle = {tls.ca.cert_path}\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        pool = ConnectionPool(tls_origin.endpoint)
    with pool:
        assert echoed(pool.send(b"secure", {})) == "secure"


@pytest.mark.parametrize("case", ["default-bundle", "wrong-ca", "wrong-host"])
def test_tls_refuses_an_untrusted_certificate_before_sending(
    origin: Origin, tls: TLS, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = tls.wrong_host if case == "wrong-host" else tls.good
    if case == "wrong-ca":
        monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.other_ca.cert_path))
    elif case == "wrong-host":
        monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca.cert_path))
    with (
        TLSTerminatingProxy((LOOPBACK, origin.port), *cert) as server,
        ConnectionPool(server.endpoint) as pool,
    ):
        with pytest.raises(TLSError) as caught:
            pool.send(b"{}", {})
        assert pool.stats() == PoolStats(open=0, idle=0, waiting=0)
    assert "certificate verify failed" in str(caught.value)
    assert not may_have_landed(caught.value)
    assert origin.seen == []


def test_tls_verification_off_only_when_asked(tls_origin: TLSTerminatingProxy) -> None:
    with ConnectionPool(tls_origin.endpoint, verify=False) as pool:
        assert echoed(pool.send(b"unverified", {})) == "unverified"


def test_a_tls_handshake_that_never_completes_is_a_connect_timeout() -> None:
    with socket.create_server((LOOPBACK, 0)) as mute:  # the kernel accepts; nobody speaks
        endpoint = f"https://{LOOPBACK}:{mute.getsockname()[1]}"
        with (
            ConnectionPool(endpoint, connect_timeout=0.2, verify=False) as pool,
            pytest.raises(ConnectTimeoutError) as caught,
        ):
            pool.send(b"{}", {})
    assert not may_have_landed(caught.value)


def test_resolve_verify_follows_botocores_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nca_bundle = /from/profile.pem\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_CA_BUNDLE", "/from/aws-env.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/from/requests-env.pem")
    assert resolve_verify("/explicit.pem") == "/explicit.pem"
    assert resolve_verify(False) is False
    assert resolve_verify() == "/from/aws-env.pem"
    monkeypatch.delenv("AWS_CA_BUNDLE")
    assert resolve_verify() == "/from/profile.pem"
    config.write_text("[default]\n")
    assert resolve_verify() == "/from/requests-env.pem"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    assert resolve_verify() == get_cert_path(True)  # certifi's bundle, else botocore's
    assert resolve_verify(True) == get_cert_path(True)
    with pytest.raises(InvalidConfigError):
        resolve_verify("  ")


# -- proxies -----------------------------------------------------------------------------------

USER = "alice"
PASSWORD = "s3cr3t:p@ss"
USERINFO = "alice:s3cr3t%3Ap%40ss@"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.fixture
def forward_proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as proxy:
        yield proxy


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_an_http_endpoint_goes_through_the_http_proxy_in_absolute_form(
    origin: Origin, forward_proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, forward_proxy.url(USERINFO))
    with ConnectionPool(origin.endpoint) as pool:
        assert [echoed(pool.send(f"p{i}".encode(), {})) for i in range(3)] == ["p0", "p1", "p2"]
    assert forward_proxy.seen == [(f"POST {origin.endpoint}/ HTTP/1.1", AUTHORIZATION)] * 3
    assert forward_proxy.connections == 1  # keep-alive to the proxy
    assert {seen.headers["Host"] for seen in origin.seen} == {f"{LOOPBACK}:{origin.port}"}
    assert all("Proxy-Authorization" not in seen.headers for seen in origin.seen)


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_an_https_endpoint_goes_through_a_connect_tunnel(
    tls: TLS,
    tls_origin: TLSTerminatingProxy,
    forward_proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, forward_proxy.url(USERINFO))
    with ConnectionPool(tls_origin.endpoint, verify=str(tls.ca.cert_path)) as pool:
        assert [echoed(pool.send(f"t{i}".encode(), {})) for i in range(3)] == ["t0", "t1", "t2"]
    assert forward_proxy.seen == [(f"CONNECT {LOOPBACK}:{tls_origin.port} HTTP/1.0", AUTHORIZATION)]
    assert tls_origin.handshakes == 1


@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
def test_no_proxy_bypasses_the_proxy(
    origin: Origin, forward_proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url())
    monkeypatch.setenv(variable, f"example.test,{LOOPBACK}")
    assert resolve_proxy(origin.endpoint) is None
    with ConnectionPool(origin.endpoint) as pool:
        assert echoed(pool.send(b"direct", {})) == "direct"
    assert forward_proxy.seen == []
    assert origin.accepted == 1


def test_explicit_proxies_and_botocores_bare_host_form() -> None:
    assert resolve_proxy("https://e.test", {"https": "proxy.test:3128"}) == "http://proxy.test:3128"
    assert resolve_proxy("https://e.test", {"http": "http://p.test"}) is None
    assert resolve_proxy("http://e.test", {"http": "//p.test:8080"}) == "http://p.test:8080"


def displayed(error: BaseException) -> str:
    """Everything an exception shows: its message, repr, kwargs and formatted chain."""
    parts = [str(error), repr(error), repr(getattr(error, "kwargs", None))]
    parts += traceback.format_exception(error)
    cause = error.__cause__ or error.__context__
    while cause is not None:
        parts += [str(cause), repr(cause)]
        cause = cause.__cause__ or cause.__context__
    return "\n".join(parts)


def assert_no_credentials(text: str) -> None:
    for secret in (USER, PASSWORD, "s3cr3t", "p%40ss", AUTHORIZATION.split()[1]):
        assert secret not in text


def test_proxy_credentials_never_displayed(
    tls: TLS, tls_origin: TLSTerminatingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy(require_auth="Basic other") as refusing:
        monkeypatch.setenv("HTTPS_PROXY", refusing.url(USERINFO))
        pool = ConnectionPool(tls_origin.endpoint, verify=str(tls.ca.cert_path))
        assert_no_credentials(repr(pool))
        assert "***:***@" in repr(pool)
        with pytest.raises(ProxyConnectError) as refused:
            pool.send(b"{}", {})
        assert refusing.seen[0][1] == AUTHORIZATION  # it was sent, to the proxy only
    assert "407" in str(refused.value.__cause__)
    assert not may_have_landed(refused.value)  # the tunnel never opened
    assert_no_credentials(displayed(refused.value))

    monkeypatch.setenv("HTTPS_PROXY", f"http://{USERINFO}{LOOPBACK}:{free_port()}")
    with (
        ConnectionPool(tls_origin.endpoint, verify=False) as down,
        pytest.raises(ProxyConnectError) as unreachable,
    ):
        down.send(b"{}", {})
    assert not may_have_landed(unreachable.value)
    assert is_retryable(unreachable.value)
    assert_no_credentials(displayed(unreachable.value))
    assert tls_origin.handshakes == 0


def test_an_https_proxy_url_is_unsupported_and_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"https://{USERINFO}proxy.test:3129")
    with pytest.raises(UnsupportedTransportSetting) as caught:
        ConnectionPool("https://dynamodb.us-east-1.amazonaws.com")
    assert "https://***:***@proxy.test:3129" in str(caught.value)
    assert_no_credentials(displayed(caught.value))


# -- reading a response from raw bytes (no server: one end of a socket pair) ----------------


def read_bytes(*parts: bytes, close: bool = True) -> tuple[_http.Response, bool]:
    """What the pool reads from a connection on which ``parts`` arrive, one write each."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(10)  # a hang guard
        writer = threading.Thread(target=_write_parts, args=(theirs, parts, close))
        writer.start()
        try:
            return ConnectionPool("http://127.0.0.1:1")._read(ours)
        finally:
            writer.join()


def _write_parts(sock: socket.socket, parts: tuple[bytes, ...], close: bool) -> None:
    for part in parts:
        sock.sendall(part)
        time.sleep(0.001)  # separate reads on the other end, most of the time
    if close:
        sock.shutdown(socket.SHUT_WR)


OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"


def test_a_response_split_anywhere_is_read_whole() -> None:
    body = b'{"Item": {"k": {"S": "' + b"x" * 200_000 + b'"}}}'
    raw = OK_HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    for cut in (1, 10, len(OK_HEAD) + 5, len(raw) - len(body) - 2, len(raw) - 1):
        response, close = read_bytes(raw[:cut], raw[cut:], close=False)
        assert (response.status, response.body, close) == (200, body, False)
        assert response.headers["content-length"] == str(len(body))


def test_response_headers_as_http_client_reads_them() -> None:
    response, close = read_bytes(
        b"HTTP/1.1 200 OK\r\nX-Amz-Crc32:   123 \r\nSet-Thing: a\r\nset-thing: b\r\n"
        b"X-Folded: first\r\n  second\r\nnot a header line\r\nContent-Length: 2\r\n\r\n{}",
        close=False,
    )
    assert dict(response.headers.items()) == {
        "x-amz-crc32": "123",
        "set-thing": "a, b",
        "x-folded": "first second",
        "content-length": "2",
    }
    assert response.headers["X-AMZ-CRC32"] == "123"
    assert (response.body, close) == (b"{}", False)


def test_interim_responses_are_skipped() -> None:
    response, close = read_bytes(
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 400 Bad Request\r\n"
        b"Content-Length: 3\r\n\r\nbad",
        close=False,
    )
    assert (response.status, response.body, close) == (400, b"bad", False)
    assert "link" not in response.headers


@pytest.mark.parametrize(
    ("head", "close"),
    [
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\n", False),
        (b"HTTP/1.0 200 OK\r\n", True),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n", False),
        (b"HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\n", False),
    ],
)
def test_when_the_connection_is_kept(head: bytes, close: bool) -> None:
    response, closing = read_bytes(head + b"Content-Length: 2\r\n\r\n{}", close=False)
    assert (response.body, closing) == (b"{}", close)


def test_bytes_after_the_response_close_the_connection() -> None:
    raw = OK_HEAD + b"Content-Length: 2\r\n\r\n{}"
    assert read_bytes(raw + b"junk", close=False)[1] is True
    chunked = OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    response, close = read_bytes(chunked, close=False)
    assert (response.body, close) == (b"{}", False)
    assert read_bytes(chunked + b"HTTP/1.1", close=False)[1] is True


def test_a_chunked_body_with_extensions_and_trailers() -> None:
    response, close = read_bytes(
        OK_HEAD + b"Transfer-Encoding: Chunked\r\n\r\n3;name=value\r\nabc\r\n",
        b"A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
        close=False,
    )
    assert (response.body, close) == (b"abc0123456789", False)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    ],
)
def test_responses_without_a_body(raw: bytes) -> None:
    response, close = read_bytes(raw, close=False)
    assert (response.body, close) == (b"", False)


def test_a_body_without_framing_runs_to_the_end_of_the_connection() -> None:
    for head in (OK_HEAD, OK_HEAD + b"Content-Length: nonsense\r\n"):
        response, close = read_bytes(head + b"\r\n", b"a" * 70_000, b"b")
        assert (response.body, close) == (b"a" * 70_000 + b"b", True)


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # closed before answering
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",  # closed in the head
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}",  # a truncated body
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  # a truncated chunk
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a bad chunk size
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n{}",  # conflicting lengths
        b"HTTP/2 200\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 099 Low\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000 + b"\r\n\r\n",
    ],
)
def test_a_malformed_or_cut_response_may_have_landed(raw: bytes) -> None:
    with pytest.raises(ConnectionClosedError) as caught:
        read_bytes(raw)
    assert may_have_landed(caught.value)
    assert is_retryable(caught.value)


def test_no_response_within_the_read_timeout_is_a_read_timeout() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(0.05)
        theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}")
        with pytest.raises(ReadTimeoutError) as caught:
            ConnectionPool("http://127.0.0.1:1")._read(ours)
    assert may_have_landed(caught.value)
