"""The store's own transport for the item operations (``transport="http"``, opt-in for now).

One attempt of one request: ``encode_request`` -> ``SigV4Signer.sign`` -> one shared
``ConnectionPool`` -> ``decode_response``. Retries, write tokens and error translation stay in
``_dispatch``, which calls ``HttpTransport.send`` in place of the botocore client's
``_make_api_call`` for the operations this transport ``handles``; everything else (table
management, operations the wire codec does not know) keeps the botocore client.

What is resolved by botocore, once and lazily (on the first request, never at construction),
and kept off the per-request path:

- the endpoint: the store's custom ``endpoint`` when set, else the URL the connection's
  botocore client resolved through botocore's own endpoint ruleset (``AWS_ENDPOINT_URL``,
  FIPS and dual-stack settings, partitions);
- the credentials: the connection's botocore session resolves the ``credentials`` option,
  the model's ``Meta`` keys or botocore's default chain (see ``StoreConnection.session``);
  they are frozen per request with ``get_frozen_credentials()``, so refreshable credentials
  keep refreshing;
- TLS verification (``AWS_CA_BUNDLE``, the profile's ``ca_bundle``) and proxies
  (``HTTPS_PROXY``, ``NO_PROXY``), by ``ConnectionPool``.

Where botocore is needed, the botocore transport is used instead, decided per call:

- while moto's in-process mock (``mock_aws``) is active, so that a store built before the
  mock started still never reaches the network (moto intercepts botocore's requests only);
- for good, when the pool cannot honour a setting (``UnsupportedTransportSetting``: an
  ``https://`` proxy URL).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from botocore.credentials import Credentials
from botocore.exceptions import NoCredentialsError

from ._http import ConnectionPool, UnsupportedTransportSetting
from ._sigv4 import SigV4Signer
from ._wire import SUPPORTED_OPERATIONS, decode_response, encode_request

__all__ = ["TRANSPORTS", "HttpTransport", "moto_mock_active"]

_log = logging.getLogger("saga_store_pynamo")

#: The values of the store's ``transport`` option.
TRANSPORTS = ("botocore", "http")


def moto_mock_active() -> bool:
    """Whether moto's in-process mock (``mock_aws``) is active, cheaply: moto is not imported
    for this (if it was never imported, no mock can be active)."""
    models = sys.modules.get("moto.core.models")
    if models is None:
        return False
    return bool(getattr(getattr(models, "botocore_stubber", None), "enabled", False))


class HttpTransport:
    """Sends the item operations of one store over its own keep-alive HTTP pool.

    Thread-safe; builds its pool and signer on first use. ``connection`` is the store's
    ``StoreConnection``: its session resolves the credentials and TLS settings, its
    botocore client the endpoint, and its options give the pool size and timeouts.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._signer: SigV4Signer | None = None
        self._credentials: Credentials | None = None
        #: Set when the pool cannot honour the settings: botocore's transport is used.
        self.unsupported: str | None = None

    def __repr__(self) -> str:
        return f"HttpTransport({self._pool!r})"

    def handles(self, operation: str) -> bool:
        """Whether ``operation`` goes through this transport now (else through botocore)."""
        if operation not in SUPPORTED_OPERATIONS or moto_mock_active():
            return False
        if self._signer is None and self.unsupported is None:
            self._build()
        return self.unsupported is None

    def send(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One attempt: the parsed response, as the botocore client's ``_make_api_call``.

        :raises DynamoDBError: an error response (a botocore ``ClientError``).
        :raises BotoCoreError: a connection failure, a corrupted response (``ChecksumError``),
            no credentials (``NoCredentialsError``).
        """
        pool, signer = self._pool, self._signer
        if pool is None or signer is None:  # handles() builds them
            raise RuntimeError("HttpTransport.send() before handles()")
        frozen = self._resolved_credentials().get_frozen_credentials()
        target, body = encode_request(operation, request)
        response = pool.send(body, signer.sign(frozen, target, body))
        return decode_response(operation, response.status, response.headers, response.body)

    def close(self) -> None:
        """Close the pool's idle connections (the pool stays usable)."""
        pool = self._pool
        if pool is not None:
            pool.close()

    def _build(self) -> None:
        """Resolve the endpoint (botocore's resolution) and build the pool and the signer."""
        with self._lock:
            if self._signer is not None or self.unsupported is not None:
                return
            connection = self._connection
            endpoint = connection.host or connection.client.meta.endpoint_url
            try:
                pool = ConnectionPool(
                    endpoint,
                    max_connections=connection._max_pool_connections,
                    connect_timeout=connection._connect_timeout_seconds,
                    read_timeout=connection._read_timeout_seconds,
                    session=connection.session,
                )
            except UnsupportedTransportSetting as exc:
                _log.warning("transport='http' falls back to botocore: %s", exc)
                self.unsupported = str(exc)
                return
            self._pool = pool
            self._signer = SigV4Signer(connection.region, pool.host_header, path=pool.path)

    def _resolved_credentials(self) -> Credentials:
        credentials = self._credentials
        if credentials is None:
            with self._lock:
                credentials = self._credentials
                if credentials is None:
                    # Not cached when absent: the next request asks the chain again, as
                    # StoreConnection rebuilds a client that came without credentials.
                    credentials = self._connection.session.get_credentials()
                    if credentials is None:
                        raise NoCredentialsError()
                    self._credentials = credentials
        return credentials
