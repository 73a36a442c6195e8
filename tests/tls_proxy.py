"""Loopback TLS and proxy helpers for transport tests (127.0.0.1 only).

- ``CertificateAuthority``: a throwaway CA made with ``cryptography`` (installed with moto)
  that issues server certificates for given DNS names / IP addresses.
- ``TLSTerminatingProxy``: accepts TLS with such a certificate and pipes the plaintext to
  a plain TCP upstream (e.g. a loopback HTTP server, or DynamoDB Local), one upstream
  connection per TLS connection.
- ``ForwardProxy``: an HTTP/1.1 forward proxy: absolute-form requests are forwarded, and
  ``CONNECT`` opens a tunnel; it records each request line and ``Proxy-Authorization``.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import select
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["CertificateAuthority", "ForwardProxy", "TLSTerminatingProxy"]

_LOOPBACK = "127.0.0.1"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CertificateAuthority:
    """A self-signed CA; ``cert_path`` is its certificate, to use as a CA bundle."""

    def __init__(self, directory: Path, name: str = "saga-store test CA") -> None:
        self.directory = directory
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = directory / f"{name.replace(' ', '-')}.pem"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self, stem: str, *, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()
    ) -> tuple[Path, Path]:
        """A server certificate for ``dns`` names and ``ips``: (cert path, key path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        cert_path = self.directory / f"{stem}.crt"
        key_path = self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        return cert_path, key_path


def _pipe(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes both ways between ``a`` and ``b`` until either side closes.

    One thread does both directions: an ``SSLSocket`` must not be read and written from two
    threads at once.
    """
    sockets = (a, b)
    try:
        while not stop.is_set():
            ready: list[socket.socket] = [
                s for s in sockets if isinstance(s, ssl.SSLSocket) and s.pending()
            ]
            if not ready:
                ready = select.select(sockets, [], [], 0.05)[0]
            for source in ready:
                data = source.recv(65536)
                if not data:
                    return
                (b if source is a else a).sendall(data)
    except OSError:
        return
    finally:
        for s in sockets:
            s.close()


class _Listener:
    """A 127.0.0.1 listening socket with an accept thread; subclasses handle connections."""

    def __init__(self) -> None:
        self._sock = socket.create_server((_LOOPBACK, 0))
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.lock = threading.Lock()

    def __enter__(self) -> _Listener:
        self._accept_thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._sock.close()
        self._accept_thread.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not select.select([self._sock], [], [], 0.05)[0]:
                    continue
                client, _ = self._sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, client: socket.socket) -> None:
        raise NotImplementedError


class TLSTerminatingProxy(_Listener):
    """TLS on ``127.0.0.1:port`` with the given certificate, plaintext to ``upstream``.

    ``handshakes`` counts completed TLS handshakes; ``failed_handshakes`` the refused ones
    (e.g. a client that does not trust the certificate).
    """

    def __init__(self, upstream: tuple[str, int], cert_path: Path, key_path: Path) -> None:
        super().__init__()
        self.upstream = upstream
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_path, key_path)
        self.handshakes = 0
        self.failed_handshakes = 0

    def __enter__(self) -> TLSTerminatingProxy:
        super().__enter__()
        return self

    @property
    def endpoint(self) -> str:
        return f"https://{_LOOPBACK}:{self.port}"

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(10)
        try:
            tls = self._context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            with self.lock:
                self.failed_handshakes += 1
            client.close()
            return
        with self.lock:
            self.handshakes += 1
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            tls.close()
            return
        _pipe(tls, upstream, self._stop)


class ForwardProxy:
    """An HTTP/1.1 forward proxy on 127.0.0.1 that records what it saw.

    ``seen`` holds ``(request line, Proxy-Authorization or None)`` per request or CONNECT;
    ``connections`` counts client connections. With ``require_auth`` set, a request whose
    ``Proxy-Authorization`` differs is answered 407. Only 127.0.0.1 targets are served.
    """

    def __init__(self, require_auth: str | None = None) -> None:
        self.require_auth = require_auth
        self.seen: list[tuple[str, str | None]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((_LOOPBACK, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, userinfo: str = "") -> str:
        """The proxy URL, with ``userinfo`` (``user:password@``) if given."""
        return f"http://{userinfo}{_LOOPBACK}:{self.port}"

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def request_lines(self) -> list[str]:
        """The request lines seen so far."""
        with self._lock:
            return [line for line, _ in self.seen]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Head and body are separate writes: keep Nagle from holding the body.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with proxy._lock:
                    proxy.connections += 1

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _admitted(self) -> bool:
                auth = self.headers.get("Proxy-Authorization")
                with proxy._lock:
                    proxy.seen.append((self.requestline, auth))
                if proxy.require_auth is not None and auth != proxy.require_auth:
                    self.send_response(407)
                    self.send_header("Proxy-Authenticate", 'Basic realm="test"')
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    return False
                return True

            def do_CONNECT(self) -> None:
                if not self._admitted():
                    return
                host, _, port = self.path.rpartition(":")
                if host != _LOOPBACK:
                    self.send_error(403)
                    return
                try:
                    upstream = socket.create_connection((host, int(port)), timeout=10)
                    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    self.send_error(502)
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                self.close_connection = True
                _pipe(self.connection, upstream, proxy._stop)

            def do_POST(self) -> None:
                if not self._admitted():
                    return
                target = urlsplit(self.path)
                if target.scheme != "http" or target.hostname != _LOOPBACK:
                    self.send_error(400, "absolute-form http://127.0.0.1 target expected")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                forwarded = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("proxy-authorization", "connection", "content-length")
                }
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                try:
                    upstream.request("POST", target.path or "/", body, forwarded)
                    answer = upstream.getresponse()
                    data = answer.read()
                except (OSError, http.client.HTTPException):
                    self.send_error(502)
                    return
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("connection", "content-length", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
