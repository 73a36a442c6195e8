"""The store's own transport on asyncio: ``AsyncHttpTransport``, the twin of ``HttpTransport``.

One attempt of one request, on the running event loop: ``encode_request`` ->
``SigV4Signer.sign`` -> an aiohttp ``ClientSession`` of the current loop -> ``decode_response``.
Same endpoint, credentials, TLS and proxy resolution as ``HttpTransport`` (see
``_transport.py`` and ``_http.py``), same contract for ``send`` and the same exception
classes, so ``_dispatch`` and ``retry`` treat both transports alike. aiohttp is imported here
only: without the ``[aio]`` extra the package still imports, ``aiohttp_available()`` is False
and building an ``AsyncHttpTransport`` raises ``ImportError`` saying what to install.

**The request on the wire** is the one the signer signed: ``POST`` to the endpoint's path with
the signer's headers (its ``Host`` included, which replaces aiohttp's), ``Accept-Encoding:
identity`` and ``Content-Length``; aiohttp's own ``User-Agent`` and ``Accept`` are skipped,
responses are never decompressed, cookies are neither stored nor sent (``DummyCookieJar``),
redirects are not followed, and nothing is read from the environment beyond what
``resolve_proxy`` / ``resolve_verify`` read as botocore does (no ``trust_env``, no netrc).
Through an ``http://`` proxy, a plain-HTTP endpoint gets the absolute-form request with
``Proxy-Authorization``; an ``https://`` endpoint gets a ``CONNECT`` tunnel that alone carries
``Proxy-Authorization``. ``https://`` proxy URLs are not supported (``handles`` is then False
for good, with a logged warning): the store keeps botocore's transport for them.

**Which failures mean what** (the classes are botocore's, as ``_http``'s, so
``retry.is_retryable`` / ``may_have_landed`` classify them). Everything that happens while
the connector gets a connection (a pooled one, or a new one: DNS, TCP, the proxy and its
``CONNECT``, the TLS handshake) is caught at the connector, before any byte of the request is
written, and means *not applied*; everything after means *may have been applied*:

================================================================  ==========================
aiohttp raises                                                    ``send`` raises
================================================================  ==========================
*while getting a connection (nothing was sent):*
``ClientConnectorCertificateError``, ``ClientSSLError``           ``TLSError``
(``ClientConnectorSSLError``): the handshake failed
``ClientProxyConnectionError`` (proxy unreachable),               ``ProxyConnectError``
``ClientHttpProxyError`` (``CONNECT`` refused, e.g. 407), any
other failure of the tunnel (the proxy hung up)
``ConnectionTimeoutError``, ``asyncio.TimeoutError``:             ``ConnectTimeoutError``
TCP connect, TLS handshake or ``CONNECT`` over the connect timeout
``ClientConnectorError`` (DNS: ``ClientConnectorDNSError``;       ``EndpointConnectionError``
refused, unreachable), ``ClientOSError``, anything else
*after the request may have been written:*
``SocketTimeoutError`` (``ServerTimeoutError``),                  ``ReadTimeoutError``
``asyncio.TimeoutError``: no byte for the read timeout
``ServerDisconnectedError``, ``ClientPayloadError`` (truncated    ``ConnectionClosedError``
body), ``ClientOSError`` (reset), ``ClientResponseError`` (a
malformed response), any other ``ClientError`` or ``OSError``
*an answer:*
an error status (DynamoDB's, or a proxy's for a forwarded         ``DynamoDBError``
request)
a body that does not match ``x-amz-crc32``                        ``ChecksumError``
a success body that is not a JSON object                          ``CorruptResponseError``
================================================================  ==========================

As with ``_http``, a pooled connection the server closed just as the request left fails as
*may have been applied* (conservative, never retried here; the store resolves it with its
write token). aiohttp never retries a ``POST`` by itself. aiohttp's response errors carry
the request's headers (signature, session token, ``Proxy-Authorization``): they are replaced
by a description without them before they become the raised error's cause.

**Cancellation.** A connection goes back to the pool only after its response was read to the
end. If the task is cancelled (or fails) while the connection is being opened, the request
written or the response read, the connection is closed, never pooled: a half-read response
can never be read by the next request. What aiohttp does (3.14, read and tested, not
assumed): ``ClientSession._request`` closes the connection when anything interrupts it up to
the response's head; ``ClientResponse.read`` closes it when the body read is interrupted;
and the connector would close rather than pool a connection whose body is not at its end
(``ResponseHandler.should_close``). ``send`` closes the response itself on any interruption
of the body read as well, so this does not rest on one of them alone.
tests/test_aiohttp_transport.py cancels requests while the answer's head or half its body is
held back, and checks that the connection was closed and that later answers are their own.

**Event loops.** An aiohttp session belongs to the loop it was made on. The transport keeps
one session per loop, made lazily by the first ``send`` on that loop, and never uses a session
from another loop. ``aclose()`` closes the current loop's session and forgets those of closed
loops; ``close()`` does the same without a running loop, as far as that is safe.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from botocore.credentials import RefreshableCredentials
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from ._checksum import checked_client
from ._endpoint import FrozenCredentials, RouteTable
from ._http import (
    DEFAULT_TIMEOUT,
    Headers,
    ProxyConnectError,
    TLSError,
    UnsupportedTransportSetting,
    _parse_proxy,
    _tls_context,
    resolve_proxy,
    resolve_verify,
)
from ._sigv4 import SigV4Signer
from ._transport import CredentialSource, moto_mock_active
from ._wire import SUPPORTED_OPERATIONS, decode_response, encode_request

_MISSING: ImportError | None = None
try:
    import aiohttp
    from yarl import URL
except ImportError as missing:  # the [aio] extra is not installed
    _MISSING = missing

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.tracing import Trace

__all__ = ["AsyncHttpTransport", "aiohttp_available"]

_log = logging.getLogger("saga_store_pynamo")

_DEFAULT_PORTS = {"http": 80, "https": 443}
# aiohttp's own request headers that the signer did not ask for (Accept-Encoding is sent
# explicitly as identity, as _http sends it, so that no answer is ever compressed).
_SKIPPED_HEADERS = ("User-Agent", "Accept")


def aiohttp_available() -> bool:
    """Whether aiohttp (the ``[aio]`` extra) is installed, i.e. ``AsyncHttpTransport`` works."""
    return _MISSING is None


class _NotSent(Exception):
    """Raised by the connector: getting a connection failed, so nothing was sent."""

    def __init__(self, error: BaseException, tunnel: bool) -> None:
        super().__init__(error)
        self.error = error
        self.tunnel = tunnel  # through a proxy


if _MISSING is None:

    class _Connector(aiohttp.TCPConnector):
        """``TCPConnector`` whose failures to get a connection are marked as not sent.

        Through a proxy, opening a connection (TCP to the proxy, ``CONNECT``, the TLS
        handshake) is bounded by the connect timeout as a whole: aiohttp bounds the TCP
        connect and the handshake, but not the wait for the proxy's ``CONNECT`` answer.
        """

        def __init__(self, *, connect_timeout: float, **options: Any) -> None:
            super().__init__(**options)
            self._connect_timeout = connect_timeout

        async def connect(
            self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
        ) -> aiohttp.connector.Connection:
            """A pooled or new connection; any failure is raised as ``_NotSent``."""
            try:
                return await super().connect(req, traces, timeout)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                raise _NotSent(error, req.proxy is not None) from error

        async def _create_connection(
            self, req: ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
        ) -> ResponseHandler:
            if req.proxy is None:
                return await super()._create_connection(req, traces, timeout)
            if sys.version_info >= (3, 11):
                async with asyncio.timeout(self._connect_timeout):
                    return await super()._create_connection(req, traces, timeout)
            return await asyncio.wait_for(  # pragma: no cover - Python 3.10
                super()._create_connection(req, traces, timeout), self._connect_timeout
            )


class _Settings(NamedTuple):
    """What is resolved once, on first use, and kept off the per-request path."""

    endpoint: str
    url: Any  # yarl.URL, prebuilt (encoded): aiohttp does not parse it again per request
    signer: SigV4Signer
    connect_timeout: float
    read_timeout: float
    ssl: Any  # ssl.SSLContext for https, False for http
    proxy: Any  # yarl.URL of an http:// proxy (no user-info), or None
    proxy_shown: str | None  # the proxy URL with its user-info masked
    #: Proxy-Authorization for the CONNECT request (https endpoints), or None.
    tunnel_headers: Mapping[str, str] | None
    #: Headers every request carries besides the signer's (Accept-Encoding; the
    #: Proxy-Authorization of an http endpoint's forwarded request).
    extra_headers: Mapping[str, str]


class AsyncHttpTransport:
    """Sends the item operations of one store over aiohttp, on the running event loop.

    The asyncio twin of ``HttpTransport``: ``handles`` decides per call whether an operation
    goes through it (else through botocore), ``send`` is one attempt. It resolves its
    endpoint, TLS and proxy settings on first use (never at construction) and holds one
    aiohttp session per event loop it is used on; close it with ``await aclose()`` on each
    loop it was used on (or ``close()`` once no loop runs).

    :param connection: the store's ``StoreConnection``: its session resolves the credentials
        and TLS settings, its botocore client the endpoint, its options the timeouts.
    :param max_connections: the most connections open at once per event loop; further
        requests wait for one.
    :raises ImportError: aiohttp is not installed (the package's ``[aio]`` extra brings it).
    :raises ValueError: ``max_connections`` is not an int >= 1.
    """

    def __init__(self, connection: Any, *, max_connections: int) -> None:
        if _MISSING is not None:
            raise ImportError(
                "AsyncHttpTransport needs aiohttp: install saga-store-pynamo with its [aio] "
                "extra, or pip install 'aiohttp>=3.10'"
            ) from _MISSING
        if type(max_connections) is not int or max_connections < 1:
            raise ValueError(f"max_connections must be an int >= 1, got {max_connections!r}")
        self._connection = connection
        self.max_connections = max_connections
        self._credentials = CredentialSource(connection)
        # Settings of None send through botocore (on a worker thread).
        self._table: RouteTable[_Settings] = RouteTable(
            connection, self._build, "the asyncio transport"
        )
        # One session per event loop, keyed by the loop. Not a WeakKeyDictionary: a session
        # holds its loop, so the key would never be collected; sessions of closed loops are
        # dropped instead whenever a session is made, and by aclose() / close().
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def __repr__(self) -> str:
        shown = [
            settings.endpoint + (f" via {settings.proxy_shown}" if settings.proxy_shown else "")
            for settings in self._table.built
        ]
        endpoints = f"{', '.join(map(repr, shown))}, " if shown else ""
        return f"AsyncHttpTransport({endpoints}max_connections={self.max_connections})"

    def handles(self, operation: str) -> bool:
        """Whether ``operation`` is sent by ``send`` now (else through botocore).

        False for operations the wire codec does not know and while moto's ``mock_aws`` is
        active. A request whose endpoint needs botocore (see ``_transport``) is still
        handled: ``send`` hands it to the botocore client on a worker thread.
        """
        return operation in SUPPORTED_OPERATIONS and not moto_mock_active()

    async def send(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One attempt: the parsed response, as the botocore client's ``_make_api_call``.

        Must run on an event loop; ``handles(operation)`` must have been True.

        :raises DynamoDBError: an error response (a botocore ``ClientError``).
        :raises ChecksumError: the body does not match ``x-amz-crc32`` (``CorruptResponseError``
            for a success body that is not a JSON object).
        :raises EndpointConnectionError: no connection (``TLSError``, ``ProxyConnectError``
            are ones); ``ConnectTimeoutError`` when opening one timed out: nothing was sent.
        :raises ConnectionClosedError: the connection failed after the request may have been
            written; ``ReadTimeoutError`` when the answer did not come in time.
        :raises NoCredentialsError: no credentials could be resolved.
        """
        frozen = await self._frozen_credentials()
        table_name = request.get("TableName")
        try:
            # account_id_of(frozen), inlined: this is the per-request cost.
            settings = self._table.routes[
                operation, table_name, getattr(frozen, "account_id", None)
            ]
        except KeyError:
            # The first request of its kind: resolving may build the botocore client.
            settings = await asyncio.get_running_loop().run_in_executor(
                None, self._route, frozen, operation, table_name
            )
        if settings is None:
            send = checked_client(self._connection.client)._make_api_call
            answer: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(
                None, send, operation, request
            )
            return answer
        target, body = encode_request(operation, request)
        headers = settings.signer.sign(frozen, target, body)
        headers.update(settings.extra_headers)
        session = self._session(settings)
        try:
            response = await session.post(
                settings.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                ssl=settings.ssl,
                proxy=settings.proxy,
                proxy_headers=settings.tunnel_headers,
            )
            try:
                data = await response.read()
            except BaseException:
                # Cancelled or failed mid-body: the connection holds the rest of this
                # answer, so it is closed, never pooled (read() closes it too; this does
                # not depend on that).
                response.close()
                raise
        except _NotSent as failed:
            cause = _safe(failed.error)
            failure = _not_sent(cause, failed.tunnel, settings)
        except (aiohttp.ServerTimeoutError, asyncio.TimeoutError) as error:
            cause = _safe(error)
            failure = ReadTimeoutError(endpoint_url=settings.endpoint, error=cause)
        except (aiohttp.ClientError, OSError) as error:
            cause = _safe(error)
            failure = _after_sending(cause, settings)
        else:
            headers_in = Headers(response.headers.items())
            return decode_response(operation, response.status, headers_in, data)
        # Raised out of the except clauses, so aiohttp's own exception is not kept as the
        # context: its request_info holds the request's headers (see _safe).
        raise failure from cause

    async def aclose(self) -> None:
        """Close the current loop's session (its connections) and drop those of closed loops.

        The transport stays usable: a later ``send`` makes a new session. Sessions of other
        loops that are still open are left to ``aclose()`` on their own loop.
        """
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, session in list(self._sessions.items()):
            if loop is current or loop.is_closed():
                self._sessions.pop(loop, None)
                # On a closed loop's session this does no I/O (aiohttp only marks it
                # closed): its sockets went with the loop's transports.
                await session.close()

    def close(self) -> None:
        """Best effort without a running loop: close the sessions of loops that are not running.

        A closed loop's session is marked closed; an open loop that is not running is run
        until its session is closed. Sessions of running loops are left to ``aclose()``.
        The transport stays usable.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            running_here = False
        else:
            running_here = True
        for loop, session in list(self._sessions.items()):
            if loop.is_closed():
                self._sessions.pop(loop, None)
                _finish(session.close())
            elif not loop.is_running() and not running_here:
                self._sessions.pop(loop, None)
                loop.run_until_complete(session.close())

    # -- resolution, once ------------------------------------------------------------------

    def _route(
        self, credentials: FrozenCredentials, operation: str, table_name: str | None
    ) -> _Settings | None:
        """The settings for a request signed with ``credentials`` (frozen), or None when it
        must go through botocore; resolved on first use, then cached. Blocking: run on a
        worker thread."""
        return self._table.route(credentials, operation, table_name)

    def _build(self, endpoint: str, signing_region: str, signing_name: str) -> _Settings | None:
        """Resolve the TLS and proxy settings of ``endpoint`` and build its signer; None
        (botocore sends) when a setting cannot be honoured."""
        connection = self._connection
        parts = urlsplit(endpoint)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"the endpoint must be an http(s) URL, got {endpoint!r}")
        # As ConnectionPool computes them: the Host header sent and signed (the port
        # only when it is not the scheme's default) and the path POSTed to.
        host_header = parts.netloc.rpartition("@")[2]
        if parts.port == _DEFAULT_PORTS[parts.scheme]:
            host_header = host_header.rpartition(":")[0]
        path = parts.path or "/"
        try:
            proxy_url = resolve_proxy(endpoint)
            proxy = _parse_proxy(proxy_url) if proxy_url else None
        except UnsupportedTransportSetting as exc:
            _log.warning("the asyncio transport falls back to botocore: %s", exc)
            return None
        https = parts.scheme == "https"
        ssl = _tls_context(resolve_verify(session=connection.session)) if https else False
        extra: dict[str, str] = {"Accept-Encoding": "identity"}
        tunnel_headers: dict[str, str] | None = None
        if proxy is not None and proxy.authorization:
            if https:  # only the CONNECT request carries it, never the tunnelled one
                tunnel_headers = {"Proxy-Authorization": proxy.authorization}
            else:  # the forwarded request is the proxy's to read
                extra["Proxy-Authorization"] = proxy.authorization
        return _Settings(
            endpoint=endpoint,
            url=URL(f"{parts.scheme}://{host_header}{path}", encoded=True),
            signer=SigV4Signer(signing_region, host_header, service=signing_name, path=path),
            connect_timeout=_seconds(connection._connect_timeout_seconds),
            read_timeout=_seconds(connection._read_timeout_seconds),
            ssl=ssl,
            proxy=(
                None
                if proxy is None
                else URL.build(scheme="http", host=proxy.host, port=proxy.port)
            ),
            proxy_shown=None if proxy is None else proxy.shown,
            tunnel_headers=tunnel_headers,
            extra_headers=extra,
        )

    async def _frozen_credentials(self) -> Any:
        """This request's credentials, frozen; a refresh (an STS or metadata call) and the
        first resolution (the default chain) run on a worker thread, never on the loop."""
        credentials = self._credentials.current
        if credentials is None or (
            isinstance(credentials, RefreshableCredentials) and credentials.refresh_needed()
        ):
            loop = asyncio.get_running_loop()
            resolved = await loop.run_in_executor(None, self._credentials.get)
            return await loop.run_in_executor(None, resolved.get_frozen_credentials)
        return credentials.get_frozen_credentials()

    # -- one session per event loop --------------------------------------------------------

    def _session(self, settings: _Settings) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            for other, old in list(self._sessions.items()):
                if other.is_closed():
                    self._sessions.pop(other, None)
                    _finish(old.close())  # no I/O on a closed loop: only marked closed
            session = self._new_session(settings)
            self._sessions[loop] = session
        return session

    def _new_session(self, settings: _Settings) -> aiohttp.ClientSession:
        connector = _Connector(
            connect_timeout=settings.connect_timeout,
            limit=self.max_connections,
            limit_per_host=0,
            # TLS is set per request (the settings of its endpoint).
            # getaddrinfo, as botocore resolves names; not aiodns even where it is installed.
            resolver=aiohttp.ThreadedResolver(),
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=None,  # waiting for a free connection is not bounded, as in _http
                sock_connect=settings.connect_timeout,
                sock_read=settings.read_timeout,
            ),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIPPED_HEADERS,
            trust_env=False,
            raise_for_status=False,
        )


def _seconds(value: float | None) -> float:
    return DEFAULT_TIMEOUT if value is None else float(value)


def _finish(awaitable: Any) -> None:
    """Run an awaitable that completes without waiting (closing a closed loop's session).

    If it would have to wait, it is abandoned instead: nothing can run on a closed loop.
    """
    coroutine = awaitable.__await__()
    try:
        # A bare ``yield`` (aiohttp's noop) asks only to be resumed; a future would need
        # the loop.
        for _ in range(16):
            if coroutine.send(None) is not None:
                break
    except StopIteration:
        return
    coroutine.close()


def _safe(error: BaseException) -> BaseException:
    """``error``, or a description of it when it would show the request's headers.

    aiohttp's response errors (``ClientResponseError``, ``ClientHttpProxyError`` for a
    refused ``CONNECT``) carry ``request_info``, whose headers hold the signature, a session
    token or the proxy's credentials, and show them in their ``repr``.
    """
    if isinstance(error, aiohttp.ClientResponseError):
        described = ConnectionError(
            f"{type(error).__name__}: {error.status}, message={error.message!r}"
        )
        # Keep the class for the classification below without the request's headers.
        if isinstance(error, aiohttp.ClientHttpProxyError):
            return _ProxyRefused(str(described))
        return described
    return error


class _ProxyRefused(ConnectionError):
    """The proxy answered ``CONNECT`` with an error status (what ``_safe`` keeps of it)."""


def _not_sent(error: BaseException, tunnel: bool, settings: _Settings) -> Exception:
    """The botocore exception for a failure to get a connection: nothing was sent."""
    endpoint = settings.endpoint
    mapped: Exception
    if isinstance(error, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        mapped = TLSError(endpoint_url=endpoint, error=error)
    elif isinstance(error, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        mapped = ConnectTimeoutError(endpoint_url=endpoint, error=error)
    elif tunnel and settings.proxy_shown is not None:
        # The message holds the proxy's status line, never its credentials (those are only
        # in the CONNECT request); the URL is masked.
        mapped = ProxyConnectError(
            proxy_url=settings.proxy_shown, endpoint_url=endpoint, error=error
        )
    else:
        mapped = EndpointConnectionError(endpoint_url=endpoint, error=error)
    return mapped


def _after_sending(error: BaseException, settings: _Settings) -> Exception:
    """The botocore exception for a failure once the request may have been written.

    aiohttp raises its connector errors only while getting a connection: those are
    classified as not sent even if they did not come through ``_NotSent``.
    """
    if isinstance(error, aiohttp.ClientConnectorError):
        return _not_sent(error, isinstance(error, aiohttp.ClientProxyConnectionError), settings)
    if isinstance(error, (aiohttp.ClientHttpProxyError, _ProxyRefused)):
        return _not_sent(error, True, settings)
    closed: Exception = ConnectionClosedError(endpoint_url=settings.endpoint, error=error)
    return closed
