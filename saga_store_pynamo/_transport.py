"""The store's own transport for the item operations (``transport="http"``, the default).

One attempt of one request: ``encode_request`` -> ``SigV4Signer.sign`` -> a keep-alive
``ConnectionPool`` -> ``decode_response``. Retries, write tokens and error translation stay in
``_dispatch``, which calls ``HttpTransport.send`` in place of the botocore client's
``_make_api_call`` for the operations this transport ``handles``; everything else (table
management, operations the wire codec does not know) keeps the botocore client.

Each attempt freezes the credentials once (``get_frozen_credentials()``, so refreshable ones
keep refreshing); the same frozen set picks the route and signs. The route is where botocore
itself would send that request: ``_endpoint.EndpointResolver`` asks botocore's endpoint
ruleset, per (operation, table name, account id of the credentials), which takes in the
store's custom ``endpoint``, ``AWS_ENDPOINT_URL(_DYNAMODB)`` and profile ``endpoint_url``,
FIPS and dual-stack settings, the partition, and account-id endpoints
(``https://{AccountId}.ddb.{region}.amazonaws.com`` under ``account_id_endpoint_mode``). A
route is resolved on the first request that needs it, never at construction, and then costs a
dict lookup. Each distinct resolved (URL, signing region, signing name) gets one pool and one
signer (normally there is exactly one).

Also resolved once, by botocore's providers: the credentials (the connection's session
resolves the ``credentials`` option, the model's ``Meta`` keys or botocore's default chain, see
``StoreConnection.session``), TLS verification (``AWS_CA_BUNDLE``, the profile's
``ca_bundle``) and proxies (``HTTPS_PROXY``, ``NO_PROXY``), by ``ConnectionPool``.

Where botocore is needed, the botocore transport is used instead:

- while moto's in-process mock (``mock_aws``) is active (``handles`` says no), so that a store
  built before the mock started still never reaches the network (moto intercepts botocore's
  requests only);
- for a route this transport cannot send exactly as botocore would (``send`` hands the
  request to the botocore client): an auth scheme other than plain SigV4 for ``dynamodb``
  (SigV4a, a configured ``signature_version``), headers the endpoint adds, a failed
  resolution (botocore then raises its own error, e.g. ``account_id_endpoint_mode=required``
  without an account id), or a setting the pool cannot honour (``UnsupportedTransportSetting``:
  an ``https://`` proxy URL).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, NamedTuple

from botocore.credentials import Credentials
from botocore.exceptions import NoCredentialsError

from ._checksum import checked_client
from ._endpoint import FrozenCredentials, RouteTable
from ._http import ConnectionPool, UnsupportedTransportSetting
from ._sigv4 import SigV4Signer
from ._wire import SUPPORTED_OPERATIONS, decode_response, encode_request

__all__ = ["TRANSPORTS", "CredentialSource", "HttpTransport", "Route", "moto_mock_active"]

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


class Route(NamedTuple):
    """The pool and the signer of one resolved endpoint."""

    pool: ConnectionPool
    signer: SigV4Signer


class HttpTransport:
    """Sends the item operations of one store over its own keep-alive HTTP pools.

    Thread-safe; resolves endpoints and builds pools and signers on first use.
    ``connection`` is the store's ``StoreConnection``: its session resolves the credentials
    and TLS settings, its botocore client the endpoints, and its options give the pool size
    and timeouts.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._credentials = CredentialSource(connection)
        self._table: RouteTable[Route] = RouteTable(connection, self._new_route, "transport='http'")

    def __repr__(self) -> str:
        return f"HttpTransport({self.pools!r})"

    @property
    def pools(self) -> list[ConnectionPool]:
        """The pools built so far, one per resolved endpoint."""
        return [route.pool for route in self._table.built]

    def handles(self, operation: str) -> bool:
        """Whether ``operation`` is sent by ``send`` now (else through botocore)."""
        return operation in SUPPORTED_OPERATIONS and not moto_mock_active()

    def send(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One attempt: the parsed response, as the botocore client's ``_make_api_call``.

        Sent through the botocore client instead when botocore resolves this request to an
        endpoint this transport cannot honour (see the module docstring).

        :raises DynamoDBError: an error response (a botocore ``ClientError``).
        :raises BotoCoreError: a connection failure, a corrupted response (``ChecksumError``),
            no credentials (``NoCredentialsError``).
        """
        frozen = self._credentials.get().get_frozen_credentials()
        table_name = request.get("TableName")
        try:
            # account_id_of(frozen), inlined: this is the per-request cost.
            route = self._table.routes[operation, table_name, getattr(frozen, "account_id", None)]
        except KeyError:
            route = self._table.route(frozen, operation, table_name)
        if route is None:
            response: dict[str, Any] = checked_client(self._connection.client)._make_api_call(
                operation, request
            )
            return response
        target, body = encode_request(operation, request)
        sent = route.pool.send(body, route.signer.sign(frozen, target, body))
        return decode_response(operation, sent.status, sent.headers, sent.body)

    def route(
        self, credentials: FrozenCredentials, operation: str, table_name: str | None
    ) -> Route | None:
        """The pool and signer for a request signed with ``credentials`` (frozen), or None
        when it must go through botocore; resolved and built on first use, then cached."""
        return self._table.route(credentials, operation, table_name)

    def _new_route(self, url: str, signing_region: str, signing_name: str) -> Route | None:
        """The pool and signer of one resolved endpoint; None when the pool cannot honour
        a setting."""
        connection = self._connection
        try:
            pool = ConnectionPool(
                url,
                max_connections=connection._max_pool_connections,
                connect_timeout=connection._connect_timeout_seconds,
                read_timeout=connection._read_timeout_seconds,
                session=connection.session,
            )
        except UnsupportedTransportSetting as exc:
            _log.warning("transport='http' falls back to botocore: %s", exc)
            return None
        signer = SigV4Signer(signing_region, pool.host_header, service=signing_name, path=pool.path)
        return Route(pool, signer)

    def close(self) -> None:
        """Close the pools' idle connections (the pools stay usable)."""
        for pool in self.pools:
            pool.close()


class CredentialSource:
    """A transport's credentials: the connection's botocore session resolves them (the
    ``credentials`` option, the model's ``Meta`` keys or botocore's default chain) once;
    each request freezes them (``get_frozen_credentials()``), so refreshable ones refresh.
    Thread-safe."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        #: The resolved credentials, None until the first successful ``get()``.
        self.current: Credentials | None = None

    def get(self) -> Credentials:
        """The credentials, resolved on first use.

        :raises NoCredentialsError: none could be resolved (asked again next time, as
            ``StoreConnection`` rebuilds a client that came without credentials).
        """
        credentials = self.current
        if credentials is None:
            with self._lock:
                credentials = self.current
                if credentials is None:
                    credentials = self._connection.session.get_credentials()
                    if credentials is None:
                        raise NoCredentialsError()
                    self.current = credentials
        return credentials
