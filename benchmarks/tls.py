"""A loopback TLS endpoint for the benchmark: a TLS-terminating proxy in front of a server.

``tls_backend(backend)`` makes a throwaway CA (with ``cryptography``, installed with moto),
issues a certificate for 127.0.0.1, and starts a proxy that accepts TLS with it and pipes
the plaintext to ``backend``'s port, one upstream connection per TLS connection. The
proxy runs in a child process (``python -m benchmarks.tls``), so its TLS work is not
counted in the benchmark's ``time.process_time()``: the client's side of TLS is. While the
context is open, ``AWS_CA_BUNDLE`` (and ``SSL_CERT_FILE``) name the CA, so botocore, the
store and the store's own transport all trust it the way a user would set it up.

The same proxy as tests/tls_proxy.py's, cut to what the benchmark needs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import ipaddress
import os
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from .backends import Backend

__all__ = ["TLS_SUFFIX", "tls_backend", "tls_problem"]

_LOOPBACK = "127.0.0.1"
#: Appended to a backend's key and title for its run through the TLS proxy.
TLS_SUFFIX = ("-tls", " through a TLS proxy")
#: Where the CA is named for the clients: botocore's (and so the store's) variable, and
#: OpenSSL's, which some other TLS stacks read too.
_CA_VARIABLES = ("AWS_CA_BUNDLE", "SSL_CERT_FILE")


def tls_problem() -> str | None:
    """Why the TLS run cannot happen here (no ``cryptography`` to make the CA), or None."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return "the `cryptography` package (installed with moto) is needed to make its CA"
    return None


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1: (CA, cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "saga-store benchmark CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
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
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _LOOPBACK)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(_LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "server.crt", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@contextlib.contextmanager
def tls_backend(backend: Backend) -> Iterator[Backend]:
    """``backend`` behind a TLS-terminating proxy in a child process, its CA trusted through
    ``AWS_CA_BUNDLE`` until the context ends."""
    upstream = urlsplit(backend.endpoint)
    with tempfile.TemporaryDirectory(prefix="saga-bench-tls-") as tmp:
        ca, cert, key = _make_certificates(Path(tmp))
        proxy = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.tls",
                f"{upstream.hostname}:{upstream.port}",
                str(cert),
                str(key),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
        )
        previous = {name: os.environ.get(name) for name in _CA_VARIABLES}
        try:
            assert proxy.stdout is not None
            port = int(proxy.stdout.readline().decode() or "0")
            if not port:
                raise RuntimeError("the TLS proxy did not start")
            for name in _CA_VARIABLES:
                os.environ[name] = str(ca)
            yield dataclasses.replace(
                backend,
                key=backend.key + TLS_SUFFIX[0],
                title=backend.title + TLS_SUFFIX[1],
                endpoint=f"https://{_LOOPBACK}:{port}",
            )
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            assert proxy.stdin is not None
            proxy.stdin.close()  # the proxy exits when its stdin closes
            try:
                proxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait()


# -- the proxy (the child process) ----------------------------------------------------------


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways between ``a`` and ``b`` until either side closes (one thread:
    an ``SSLSocket`` must not be read and written from two threads at once)."""
    sockets = (a, b)
    try:
        while True:
            ready: list[socket.socket] = [
                s for s in sockets if isinstance(s, ssl.SSLSocket) and s.pending()
            ]
            if not ready:
                ready = select.select(sockets, [], [])[0]
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


def _serve(upstream: tuple[str, int], cert: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server((_LOOPBACK, 0))
    print(listener.getsockname()[1], flush=True)

    def handle(client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = context.wrap_socket(client, server_side=True)
            server = socket.create_connection(upstream, timeout=10)
            server.settimeout(None)
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            client.close()
            return
        _pipe(tls, server)

    def accept() -> None:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=handle, args=(client,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.buffer.read()  # until the benchmark closes our stdin (or exits)


def main(argv: list[str] | None = None) -> int:
    """Run the proxy: ``python -m benchmarks.tls HOST:PORT CERT KEY`` prints its port."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tls")
    parser.add_argument("upstream")
    parser.add_argument("cert")
    parser.add_argument("key")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    _serve((host, int(port)), args.cert, args.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
