"""The HTTP/1.1 layer of the store's own DynamoDB transport: a keep-alive connection pool.

One ``ConnectionPool`` per endpoint, shared by every thread of a store. ``send`` POSTs one
already-signed request and returns ``(status, headers, body)`` with the body read in full;
signing, the JSON codec, CRC32 checks and retries live elsewhere (this module decides
nothing beyond one exchange). TLS verification and proxies are resolved once, at
construction, the way botocore resolves them (see ``resolve_verify`` and ``resolve_proxy``).
Not implemented (``UnsupportedTransportSetting``, or simply absent): ``https://`` proxy URLs,
botocore's ``proxies_config`` (proxy CA bundle, client certificates, forwarding for https)
and client certificates; the store keeps botocore's transport for those.

``http.client`` opens the connections (TCP, the proxy ``CONNECT`` tunnel, the TLS handshake).
The request is written here, in one ``sendall``: http.client's own writer sends the head and
the body in two writes, and one write gives the retry rule below a single point where bytes
may leave. The response is read here too (``_read_response``), with http.client's framing
rules and exceptions but without its per-response file object and email-package header
parser, which cost about five times as much CPU as the reading itself.

**Which failures are retried here, and what the others mean** (the exception classes are
botocore's, so ``saga_store_pynamo.retry.is_retryable`` / ``may_have_landed`` classify them):

1. Opening a connection fails (DNS, TCP connect, the proxy or its ``CONNECT``, the TLS
   handshake): no byte of the request was sent. Raised as ``EndpointConnectionError``,
   ``ConnectTimeoutError``, ``TLSError`` or ``ProxyConnectError`` (the last two are also
   ``EndpointConnectionError``): *not applied*.
2. Writing the request fails (the one ``sendall`` raises): the server received at most a
   strict prefix of a ``Content-Length``-framed request, which no HTTP server acts on. On a
   *pooled* connection this is the stale keep-alive case (the server closed it while idle);
   the connection is dropped and the request is written again on another pooled or a new
   connection, transparently. This is the only transparent retry. On a *new* connection it
   raises ``EndpointConnectionError``: *not applied*.
   A pooled connection the server already closed (or that has unread bytes) is noticed
   before writing, with a zero-timeout poll, and dropped without sending anything.
3. Anything after the request was written (waiting for the status line, reading headers or
   body; a reset, an EOF, a truncated body, a malformed response), even on a pooled
   connection and even with no response byte received: raised as ``ConnectionClosedError``
   or, on the read timeout, ``ReadTimeoutError``: *may have been applied*; never retried
   here (a write's retry is the store's to resolve, with its write token).

The one window rule 2 cannot close: the server closes an idle connection just as the
request arrives (after the poll, before the bytes). The write then succeeds and the request
fails as in rule 3: conservative, as botocore's urllib3 transport is.

Through an ``http://`` proxy (plain-HTTP endpoints only), the proxy's own answers (407,
502...) come back as responses, like the endpoint's: the caller judges them.

A connection goes back to the pool only after its response was read to the end and the
server did not ask to close it; every other outcome closes it.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import select
import socket
import ssl
import threading
from collections.abc import ItemsView, Iterable, Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    InvalidConfigError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_TIMEOUT",
    "ConnectionPool",
    "Headers",
    "PoolStats",
    "ProxyConnectError",
    "Response",
    "TLSError",
    "UnsupportedTransportSetting",
    "resolve_proxy",
    "resolve_verify",
]

#: botocore's defaults: ``max_pool_connections`` and the connect / read timeouts (seconds).
DEFAULT_MAX_CONNECTIONS = 10
DEFAULT_TIMEOUT = 60.0

_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 9110 token: what a header name may be. A value may hold no CR, LF or NUL, so a header
# can never inject another header or end the head early.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\0]")
# Headers this module writes itself; a caller's copy is ignored (Content-Length must be the
# body's) or replaces the default (Host, Accept-Encoding).
_CONTENT_LENGTH = "content-length"


class TLSError(SSLError, EndpointConnectionError):  # type: ignore[misc]
    """The TLS handshake failed (untrusted certificate, wrong host name...): nothing was sent.

    A botocore ``SSLError`` that is also an ``EndpointConnectionError``, so the store's
    ``may_have_landed`` sees that the request never left.
    """


class ProxyConnectError(ProxyConnectionError, EndpointConnectionError):  # type: ignore[misc]
    """The proxy was unreachable or refused the tunnel: nothing reached the endpoint.

    The proxy URL in the message has its user-info masked.
    """


class UnsupportedTransportSetting(ValueError):
    """A setting this transport does not implement (e.g. an ``https://`` proxy).

    The store falls back to the botocore transport when it sees this at construction.
    """


class Headers(Mapping[str, str]):
    """Response headers with case-insensitive lookup; repeated headers are joined by ``", "``."""

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        items: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            items[key] = f"{items[key]}, {value}" if key in items else value
        self._items = items

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def items(self) -> ItemsView[str, str]:
        """The (lower-case name, value) pairs."""
        return self._items.items()

    @classmethod
    def _of(cls, items: dict[str, str]) -> Headers:
        """Headers over ``items``, whose names are already lower case and unique (taken)."""
        headers = cls.__new__(cls)
        headers._items = items
        return headers


class Response(NamedTuple):
    """One HTTP response, its body read in full."""

    status: int
    headers: Headers
    body: bytes


class PoolStats(NamedTuple):
    """A snapshot of a pool: connections open (idle or in use), idle, and threads waiting."""

    open: int
    idle: int
    waiting: int


def resolve_verify(verify: bool | str | None = None, session: Any = None) -> bool | str:
    """The TLS verification setting botocore would use: ``False`` or a CA bundle path.

    Precedence, as botocore's: ``verify`` if not None (``True``, ``False`` or a path); else
    the session's ``ca_bundle`` config variable (``AWS_CA_BUNDLE``, then ``ca_bundle`` in the
    profile); else ``REQUESTS_CA_BUNDLE``; else botocore's default bundle (certifi's if
    installed, else botocore's ``cacert.pem``).

    :param session: a botocore session to read ``ca_bundle`` from (default: a new one).
    """
    if verify is None:
        if session is None:
            import botocore.session

            session = botocore.session.get_session()
        verify = session.get_config_variable("ca_bundle")
    if verify is None:
        verify = os.environ.get("REQUESTS_CA_BUNDLE", True)
    if isinstance(verify, str) and not verify.strip():
        # As botocore refuses it: an empty path must not silently mean "the default bundle".
        raise InvalidConfigError(
            error_msg="Invalid CA bundle: the configured value (ca_bundle, AWS_CA_BUNDLE, "
            "REQUESTS_CA_BUNDLE or verify) is an empty string; give a CA bundle path."
        )
    if verify is True:
        from botocore.httpsession import get_cert_path

        return str(get_cert_path(True))
    if verify is False or isinstance(verify, str):
        return verify
    raise InvalidConfigError(error_msg=f"verify must be a bool or a path, got {verify!r}")


def resolve_proxy(endpoint: str, proxies: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL botocore would use for ``endpoint``, or None.

    ``proxies`` maps a scheme to a proxy URL (botocore's ``Config(proxies=...)``); without it
    the environment is read as botocore reads it (``HTTP_PROXY`` / ``HTTPS_PROXY`` and
    ``NO_PROXY``, either case, through ``urllib.request``), once, here.
    """
    if proxies is None:
        from botocore.utils import get_environ_proxies

        proxies = get_environ_proxies(endpoint)
    proxy = proxies.get(urlsplit(endpoint).scheme)
    if not proxy:
        return None
    # botocore's ProxyConfiguration._fix_proxy_url: a bare "host:port" means http.
    if proxy.startswith(("http:", "https:")):
        return proxy
    return f"http:{proxy}" if proxy.startswith("//") else f"http://{proxy}"


def _mask_userinfo(url: str) -> str:
    """``url`` with any user-info replaced by ``***:***``."""
    if "@" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    host = netloc.rpartition("@")[2]
    return f"{scheme}{sep}***:***@{host}{slash}{path}"


class _Proxy(NamedTuple):
    shown: str  # the URL with user-info masked: the only form that is ever displayed
    host: str
    port: int
    authorization: str | None  # the Proxy-Authorization value; never displayed


def _parse_proxy(url: str) -> _Proxy:
    shown = _mask_userinfo(url)
    try:
        parts = urlsplit(url)
        port = parts.port or 80
    except ValueError:
        raise UnsupportedTransportSetting(f"cannot parse the proxy URL {shown!r}") from None
    if parts.scheme != "http" or not parts.hostname:
        raise UnsupportedTransportSetting(
            f"only http:// proxies are supported by this transport, got {shown!r}"
        )
    authorization = None
    if parts.username and parts.password:  # as botocore: both or no Proxy-Authorization
        pair = f"{unquote(parts.username)}:{unquote(parts.password)}".encode()
        authorization = f"Basic {base64.b64encode(pair).decode('ascii')}"
    return _Proxy(shown, parts.hostname, port, authorization)


def _tls_context(verify: bool | str) -> ssl.SSLContext:
    """A client TLS context; certificate and host name checks on unless ``verify`` is False."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    assert isinstance(verify, str)
    try:
        if os.path.isdir(verify):
            context.load_verify_locations(capath=verify)
        else:
            context.load_verify_locations(cafile=verify)
    except (OSError, ssl.SSLError) as error:
        raise InvalidConfigError(
            error_msg=f"cannot load the CA bundle {verify!r}: {error}"
        ) from error
    return context


def _is_dropped(sock: socket.socket) -> bool:
    """Whether an idle keep-alive socket is unusable: closed, reset, or holding unread bytes.

    An idle HTTP/1.1 connection has nothing to read; readable means EOF, a reset or junk.
    """
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    try:
        if _poll is not None:
            poller = _poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        # select() is the fallback where poll() is missing (Windows); it is limited to
        # FD_SETSIZE descriptors, so a failure counts as dropped rather than as an error.
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


_poll = getattr(select, "poll", None)


class ConnectionPool:
    """Keep-alive HTTP/1.1 connections to one endpoint, shared by many threads.

    At most ``max_connections`` connections are open at once; a thread that finds all in
    use waits for one. See the module docstring for the failures and what they mean.

    :param endpoint: ``http://host[:port][/path]`` or ``https://...``; requests are POSTed
        to its path (``/`` if none).
    :param max_connections: the pool size (botocore's ``max_pool_connections``).
    :param connect_timeout: seconds to open a connection (TCP, proxy tunnel, TLS handshake).
    :param read_timeout: seconds any one read or write on an open connection may block.
    :param verify: see ``resolve_verify``; ``False`` turns TLS verification off.
    :param proxies: a scheme-to-URL mapping, or None for the environment (``resolve_proxy``).
    :param session: the botocore session whose ``ca_bundle`` is used when ``verify`` is None.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connect_timeout: float = DEFAULT_TIMEOUT,
        read_timeout: float = DEFAULT_TIMEOUT,
        verify: bool | str | None = None,
        proxies: Mapping[str, str] | None = None,
        session: Any = None,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, got {_mask_userinfo(endpoint)!r}")
        if type(max_connections) is not int or max_connections < 1:
            raise ValueError(f"max_connections must be an int >= 1, got {max_connections!r}")
        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        self.endpoint = endpoint
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or _DEFAULT_PORTS[parts.scheme]
        #: The Host header sent (and to be signed): the URL's host, its port only if not the
        #: scheme's default, as botocore's signer computes it.
        self.host_header = parts.netloc.rpartition("@")[2]
        if parts.port == _DEFAULT_PORTS[parts.scheme]:
            self.host_header = self.host_header.rpartition(":")[0]
        #: The path requests are POSTed to (to be signed as the canonical URI).
        self.path = parts.path or "/"
        self.max_connections = max_connections
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)

        proxy_url = resolve_proxy(endpoint, proxies)
        self._proxy = _parse_proxy(proxy_url) if proxy_url else None
        self._context = (
            _tls_context(resolve_verify(verify, session)) if self.scheme == "https" else None
        )
        # Through an http proxy, an http request names its full URL (absolute form) and
        # carries the proxy's credentials; an https one goes through a CONNECT tunnel.
        forwarded = self._proxy is not None and self._context is None
        target = f"http://{self.host_header}{self.path}" if forwarded else self.path
        head = [f"POST {target} HTTP/1.1"]
        if forwarded and self._proxy is not None and self._proxy.authorization:
            head.append(f"Proxy-Authorization: {self._proxy.authorization}")
        self._head = head

        self._lock = threading.Lock()
        self._available = threading.Condition(self._lock)
        self._idle: list[socket.socket] = []  # LIFO: the warmest connection is reused first
        self._open = 0  # connections open or being opened, idle ones included
        self._waiting = 0
        self._generation = 0  # bumped by close(): older connections are not pooled again

    def __repr__(self) -> str:
        via = f" via {self._proxy.shown}" if self._proxy else ""
        return f"ConnectionPool({self.endpoint!r}{via}, max_connections={self.max_connections})"

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> PoolStats:
        """How many connections are open and idle, and how many threads wait for one."""
        with self._lock:
            return PoolStats(self._open, len(self._idle), self._waiting)

    def close(self) -> None:
        """Close every idle connection; those in use close when their exchange ends.

        The pool stays usable: a later ``send`` opens new connections.
        """
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._generation += 1
            self._available.notify(len(idle))
        for sock in idle:
            sock.close()

    def send(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """POST ``body`` with ``headers`` and return the response, its body read in full.

        ``Host`` (``host_header``), ``Content-Length`` and ``Accept-Encoding: identity`` are
        added; a caller's ``Host`` or ``Accept-Encoding`` replaces the default, a caller's
        ``Content-Length`` is ignored. Raises ``ValueError`` for a header that cannot be sent
        and the botocore exceptions listed in the module docstring.
        """
        request = self._encode(body, headers)
        sock, generation = self._checkout()
        reused = sock is not None
        try:
            while True:
                if sock is not None and _is_dropped(sock):
                    sock.close()
                    sock = self._swap_stale()
                    reused = sock is not None
                    continue
                if sock is None:
                    sock = self._connect()
                    reused = False
                try:
                    sock.sendall(request)
                    break
                except OSError as error:
                    # At most a strict prefix of the request left: it cannot have been applied.
                    sock.close()
                    if not reused:
                        raise EndpointConnectionError(
                            endpoint_url=self.endpoint, error=error
                        ) from error
                    sock = self._swap_stale()
                    reused = sock is not None
            response = self._read(sock)
        except BaseException:
            # Never pool a connection in an unknown state (half-read, interrupted...).
            if sock is not None:
                sock.close()
            self._release()
            raise
        if response[1]:
            sock.close()
            self._release()
        else:
            self._checkin(sock, generation)
        return response[0]

    # -- the pool ---------------------------------------------------------------------------

    def _checkout(self) -> tuple[socket.socket | None, int]:
        """An idle connection, or None with a slot reserved for a new one; waits if full."""
        with self._lock:  # the fast path, without the Condition's Python-level wrapper
            if self._idle:
                return self._idle.pop(), self._generation
            if self._open < self.max_connections:
                self._open += 1
                return None, self._generation
        with self._available:
            while True:
                if self._idle:
                    return self._idle.pop(), self._generation
                if self._open < self.max_connections:
                    self._open += 1
                    return None, self._generation
                self._waiting += 1
                try:
                    self._available.wait()
                finally:
                    self._waiting -= 1

    def _swap_stale(self) -> socket.socket | None:
        """After closing a stale connection: another idle one (whose slot replaces the
        stale one's), or None, keeping the slot for a new connection."""
        with self._available:
            if self._idle:
                self._open -= 1
                self._available.notify()
                return self._idle.pop()
            return None

    def _checkin(self, sock: socket.socket, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._idle.append(sock)
                if self._waiting:  # notify() costs a microsecond even with no one waiting
                    self._available.notify()
                return
        sock.close()  # checked out before close(): close() promised to close it
        self._release()

    def _release(self) -> None:
        """Give back the slot of a connection that was closed (or never opened)."""
        with self._available:
            self._open -= 1
            self._available.notify()

    # -- one exchange -----------------------------------------------------------------------

    def _encode(self, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = self._head.copy()
        host = encoding = False
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
                raise ValueError(f"header {name!r} has an invalid name or value")
            lower = name.lower()
            if lower == _CONTENT_LENGTH:
                continue
            host = host or lower == "host"
            encoding = encoding or lower == "accept-encoding"
            lines.append(f"{name}: {value}")
        if not host:
            lines.append(f"Host: {self.host_header}")
        if not encoding:
            # What http.client and urllib3 send: never a compressed answer to decode.
            lines.append("Accept-Encoding: identity")
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        try:
            return "\r\n".join(lines).encode("latin-1") + body
        except UnicodeEncodeError:
            raise ValueError("header values must be latin-1 text") from None

    def _connect(self) -> socket.socket:
        """A new connection (through the proxy, TLS done), or a 'not applied' exception."""
        conn: http.client.HTTPConnection
        proxy = self._proxy
        host, port = (proxy.host, proxy.port) if proxy else (self.host, self.port)
        if self._context is not None:
            conn = http.client.HTTPSConnection(
                host, port, timeout=self.connect_timeout, context=self._context
            )
            if proxy is not None:
                tunnel_headers = {}
                if proxy.authorization:
                    tunnel_headers["Proxy-Authorization"] = proxy.authorization
                conn.set_tunnel(self.host, self.port, headers=tunnel_headers)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
        try:
            conn.connect()  # TCP (+ CONNECT) (+ TLS handshake), all under the connect timeout
        except TimeoutError as error:
            conn.close()
            raise ConnectTimeoutError(endpoint_url=self.endpoint, error=error) from error
        except ssl.SSLError as error:  # before OSError: it is one
            conn.close()
            raise TLSError(endpoint_url=self.endpoint, error=error) from error
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            if proxy is not None:
                # A refused tunnel's message holds the proxy's status line, never the
                # credentials (they are only in the CONNECT request); the URL is masked.
                raise ProxyConnectError(
                    proxy_url=proxy.shown, endpoint_url=self.endpoint, error=error
                ) from error
            raise EndpointConnectionError(endpoint_url=self.endpoint, error=error) from error
        sock = conn.sock
        assert sock is not None
        sock.settimeout(self.read_timeout)
        return sock

    def _read(self, sock: socket.socket) -> tuple[Response, bool]:
        """The response and whether the connection must be closed after it."""
        try:
            return _read_response(sock)
        except TimeoutError as error:
            raise ReadTimeoutError(endpoint_url=self.endpoint, error=error) from error
        except (OSError, http.client.HTTPException) as error:
            # Reset, EOF (RemoteDisconnected), truncated body (IncompleteRead), bad status
            # line: the request was written, so it may have been applied.
            raise ConnectionClosedError(endpoint_url=self.endpoint, error=error) from error


# -- reading a response ---------------------------------------------------------------------
#
# http.client's HTTPResponse costs ~30 us a response here (a buffered file object per
# response, headers parsed by the email package); this reader takes ~5 us with the same
# framing rules (RFC 9112: Content-Length, chunked, or to the end of the connection) and
# raises http.client's own exceptions, so the failures keep their classes.

_RECV_SIZE = 65536
_MAX_HEAD = 65536  # http.client's _MAXLINE, here for the whole head
_MAX_HEADERS = 100  # http.client's _MAXHEADERS
_NO_BODY = frozenset({204, 304})


def _read_response(sock: socket.socket) -> tuple[Response, bool]:
    """Read one response from ``sock``: the response and whether to close the connection.

    The connection is to be closed when the server asks for it (``Connection: close``, an
    HTTP/1.0 answer without keep-alive), when the body runs to the end of the connection,
    and when bytes follow the response (nothing may: the next request was not sent yet).
    """
    recv = sock.recv
    data = recv(_RECV_SIZE)
    if not data:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    while True:
        end = data.find(b"\r\n\r\n")
        while end < 0:
            if len(data) > _MAX_HEAD:
                raise http.client.LineTooLong("response head")
            more = recv(_RECV_SIZE)
            if not more:
                raise http.client.IncompleteRead(data)
            data += more
            end = data.find(b"\r\n\r\n", max(0, len(data) - len(more) - 3))
        if end > _MAX_HEAD:
            raise http.client.LineTooLong("response head")
        lines = data[:end].decode("iso-8859-1").split("\r\n")
        status_line = lines[0]
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if (
            version not in ("HTTP/1.1", "HTTP/1.0")
            or len(code) != 3
            or not code.isdigit()
            or rest[3:4] not in ("", " ")
        ):
            raise http.client.BadStatusLine(status_line)
        status = int(code)
        if status < 100:
            raise http.client.BadStatusLine(status_line)
        data = data[end + 4 :]
        if status >= 200:
            break
        # An interim answer (100 Continue...): its head is skipped, the final one follows.
        if not data:
            data = recv(_RECV_SIZE)
            if not data:
                raise http.client.RemoteDisconnected("Remote end closed connection")
    if len(lines) > _MAX_HEADERS + 1:
        raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
    items: dict[str, str] = {}
    name = ""
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            # An obsolete line folding: part of the previous value (RFC 9112, 5.2).
            if name:
                items[name] = items[name] + " " + line.strip(" \t")
            continue
        raw_name, colon, value = line.partition(":")
        if not colon:
            continue  # not a header line: ignored, as http.client's parser does
        name = raw_name.lower()
        value = value.strip(" \t")
        items[name] = f"{items[name]}, {value}" if name in items else value
    headers = Headers._of(items)

    connection = items.get("connection", "").lower()
    if version == "HTTP/1.1":
        will_close = "close" in connection
    else:
        will_close = "keep-alive" not in connection and "keep-alive" not in items
    encoding = items.get("transfer-encoding")
    if status in _NO_BODY:
        length: int | None = 0
    elif encoding is not None and encoding.strip().lower() == "chunked":
        body, extra = _read_chunked(recv, data)
        return Response(status, headers, body), will_close or extra
    else:
        length = _content_length(items.get("content-length"))
    if length is None:  # no framing: the body ends with the connection
        chunks = [data]
        while True:
            more = recv(_RECV_SIZE)
            if not more:
                break
            chunks.append(more)
        return Response(status, headers, b"".join(chunks)), True
    have = len(data)
    if have >= length:
        # Bytes past the body are unexpected: the connection is not reused.
        return Response(status, headers, data[:length] if have > length else data), (
            will_close or have > length
        )
    buffer = bytearray(length)
    view = memoryview(buffer)
    view[:have] = data
    recv_into = sock.recv_into
    while have < length:
        got = recv_into(view[have:])
        if not got:
            raise http.client.IncompleteRead(bytes(view[:have]), length - have)
        have += got
    view.release()
    return Response(status, headers, bytes(buffer)), will_close


def _content_length(value: str | None) -> int | None:
    """The body's length, None when it is absent or unusable (as http.client reads it)."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        # Repeated, equal values ("10, 10") are one length; anything else is unusable.
        values = {v.strip() for v in value.split(",")}
        if len(values) != 1:
            raise http.client.HTTPException(f"conflicting Content-Length: {value!r}") from None
        try:
            length = int(values.pop())
        except ValueError:
            return None
    return length if length >= 0 else None


def _read_chunked(recv: Any, data: bytes) -> tuple[bytes, bool]:
    """A chunked body (``data`` is what was read past the head): the body, and whether bytes
    followed it."""
    buffer = bytearray(data)
    position = 0
    body = bytearray()

    def fill(needed: int) -> None:
        while len(buffer) - position < needed:
            more = recv(_RECV_SIZE)
            if not more:
                raise http.client.IncompleteRead(bytes(body))
            buffer.extend(more)

    def line() -> bytes:
        nonlocal position
        while True:
            end = buffer.find(b"\r\n", position)
            if end >= 0:
                found = bytes(buffer[position:end])
                position = end + 2
                return found
            if len(buffer) - position > _MAX_HEAD:
                raise http.client.LineTooLong("chunk size")
            fill(len(buffer) - position + 1)

    while True:
        size_text = line().split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise http.client.IncompleteRead(bytes(body)) from None
        if size < 0:
            raise http.client.IncompleteRead(bytes(body))
        if size == 0:
            break
        fill(size + 2)
        body += buffer[position : position + size]
        if buffer[position + size : position + size + 2] != b"\r\n":
            raise http.client.IncompleteRead(bytes(body))
        position += size + 2
    while line():  # trailer fields, up to the empty line
        pass
    return bytes(body), position < len(buffer)
