"""Where one item request goes and how it is signed, as botocore's own client decides it.

botocore does not send every request of a client to ``client.meta.endpoint_url``: each call
resolves its endpoint through the service's endpoint ruleset
(``BaseClient._resolve_endpoint_ruleset`` -> ``EndpointRulesetResolver.construct_endpoint``),
from the client's region, FIPS and dual-stack settings, ``AWS_ENDPOINT_URL(_DYNAMODB)`` or a
profile's ``endpoint_url``, the custom ``endpoint`` (``SDK::Endpoint``), the partition, the
``account_id_endpoint_mode`` and the account id of the credentials (``AWS::Auth::AccountId``,
read from the credentials at resolution time), and from the request itself (DynamoDB's item
operations bind ``ResourceArn`` to ``TableName``, so a table ARN routes to its account). The
result may also name an auth scheme (signing region and name, SigV4a) and headers to send.

``EndpointResolver`` asks that same machinery, the connection's botocore client's
``_ruleset_resolver``, with the account id of the request's frozen credentials put in place of
the client's deferred one; no rule is copied here. Each distinct (operation, table name,
account id) is resolved once, on first use (never at construction), and the immutable
``ResolvedEndpoint`` is cached: afterwards a request costs one dict lookup. What the store's
own transport cannot honour (a scheme other than SigV4 for ``dynamodb``, an unsigned payload,
endpoint headers, a host prefix, a failed resolution) is reported in the result, never
raised, so the caller sends that request through botocore, which then does what it always
does (including raising its own error for a configuration it refuses).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from botocore.regions import EndpointResolverBuiltins

__all__ = [
    "MAX_ROUTES",
    "SIGNING_NAME",
    "EndpointResolver",
    "FrozenCredentials",
    "ResolvedEndpoint",
    "RouteTable",
    "account_id_of",
]

#: The only signing name the store's transport signs for.
SIGNING_NAME = "dynamodb"

#: How many resolutions are kept. A process sees a handful of keys (five operations, one
#: table or a few, one account id or none); past the bound the cache starts again.
MAX_CACHED = 256

#: ``AWS::Auth::AccountId`` (absent from botocore releases that predate account-id endpoints,
#: whose DynamoDB ruleset does not read it either).
_ACCOUNT_ID_BUILTIN: str | None = getattr(EndpointResolverBuiltins, "ACCOUNT_ID", None)

#: The request members whose values the cache key covers: an operation whose ruleset
#: parameters read anything else of the request is left to botocore.
_KEYED_MEMBERS = frozenset({"TableName"})


class FrozenCredentials(Protocol):
    """What is read of a request's frozen credentials (botocore's ``ReadOnlyCredentials``)."""

    @property
    def account_id(self) -> str | None: ...


def account_id_of(credentials: object) -> str | None:
    """The account id of frozen credentials; None where botocore's ``ReadOnlyCredentials``
    has no such field (releases before account-id endpoints)."""
    return getattr(credentials, "account_id", None)


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedEndpoint:
    """Where botocore would send one kind of request, and whether the store's transport can.

    ``url``, ``signing_region`` and ``signing_name`` are what botocore would use (None when
    resolution failed). ``supported`` says whether the store's own transport can send it
    exactly as botocore would (plain SigV4 for ``dynamodb``, no extra headers); when it is
    False, ``reason`` says why and the request goes through botocore.
    """

    url: str | None
    signing_region: str | None
    signing_name: str | None
    supported: bool
    reason: str | None = None


def _unsupported(reason: str, **fields: Any) -> ResolvedEndpoint:
    return ResolvedEndpoint(
        url=fields.get("url"),
        signing_region=fields.get("signing_region"),
        signing_name=fields.get("signing_name"),
        supported=False,
        reason=reason,
    )


class EndpointResolver:
    """Resolves the endpoint of the store's item requests through botocore's ruleset.

    Thread-safe. ``connection`` is the store's PynamoDB connection; its botocore client (and
    with it the region, the configuration and the ruleset) is only touched on a cache miss.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        # Replaced as a whole under the lock, read without it.
        self._cache: dict[tuple[str, str | None, str | None], ResolvedEndpoint] = {}
        #: How many resolutions were computed (a cache miss each); for tests.
        self.resolutions = 0

    def __repr__(self) -> str:
        return f"EndpointResolver({len(self._cache)} resolved)"

    def lookup(
        self, credentials: FrozenCredentials, operation: str, table_name: str | None
    ) -> ResolvedEndpoint | None:
        """The cached resolution for this request, or None if it was never resolved.

        Never blocks: an asyncio caller tries this first and runs ``resolve`` off the event
        loop only on a miss.
        """
        return self._cache.get((operation, table_name, account_id_of(credentials)))

    def resolve(
        self, credentials: FrozenCredentials, operation: str, table_name: str | None
    ) -> ResolvedEndpoint:
        """Where botocore would send ``operation`` on ``table_name`` signed with
        ``credentials`` (frozen: ``get_frozen_credentials()``); never raises.

        The first call per (operation, table name, account id) resolves through botocore,
        building the connection's botocore client if it was not yet built; later calls
        return the same object from the cache.
        """
        key = (operation, table_name, account_id_of(credentials))
        resolved = self._cache.get(key)
        if resolved is not None:
            return resolved
        with self._lock:
            resolved = self._cache.get(key)
            if resolved is None:
                resolved = self._compute(operation, table_name, key[2])
                self.resolutions += 1
                cache = self._cache
                self._cache = (
                    {**cache, key: resolved} if len(cache) < MAX_CACHED else {key: resolved}
                )
        return resolved

    def _compute(
        self, operation: str, table_name: str | None, account_id: str | None
    ) -> ResolvedEndpoint:
        try:
            return self._resolve_with_botocore(operation, table_name, account_id)
        except Exception as exc:  # the request goes to botocore, which says it again
            return _unsupported(f"botocore's endpoint resolution failed: {exc}")

    def _resolve_with_botocore(
        self, operation: str, table_name: str | None, account_id: str | None
    ) -> ResolvedEndpoint:
        """``BaseClient._make_api_call`` up to the signer's choice, for one request shape."""
        client = self._connection.client
        config = client.meta.config
        model = client.meta.service_model.operation_model(operation)
        if model.endpoint and model.endpoint.get("hostPrefix") and config.inject_host_prefix:
            return _unsupported(f"{operation} prefixes the endpoint's host")
        read = {p.member_name for p in model.context_parameters}
        if not read <= _KEYED_MEMBERS or model.operation_context_parameters:
            return _unsupported(f"the endpoint of {operation} depends on more than TableName")

        # The request context and auth type that _make_api_call builds.
        if model.auth and getattr(config, "auth_scheme_preference", None):
            from botocore.auth import resolve_auth_scheme_preference  # botocore >= 1.38

            auth_type = resolve_auth_scheme_preference(
                config.auth_scheme_preference.split(","), model.auth
            )
        else:
            auth_type = model.resolved_auth_type
        context: dict[str, Any] = {
            "client_region": client.meta.region_name,
            "client_config": config,
            "has_streaming_input": model.has_streaming_input,
            "auth_type": auth_type,
            "unsigned_payload": model.unsigned_payload,
            "auth_options": client.meta.service_model.metadata.get("auth"),
        }
        call_args = {} if table_name is None else {"TableName": table_name}

        # _resolve_endpoint_ruleset, with the request's account id as AWS::Auth::AccountId
        # (the client's builtin reads its own credentials object when called).
        ruleset = client._ruleset_resolver
        if ruleset is None:  # no ruleset data: the legacy resolver's URL
            url, headers, properties = client.meta.endpoint_url, {}, {}
        else:
            per_account = ruleset
            if _ACCOUNT_ID_BUILTIN is not None:
                per_account = copy.copy(ruleset)
                per_account._builtins = {**ruleset._builtins, _ACCOUNT_ID_BUILTIN: account_id}
            info = per_account.construct_endpoint(
                operation_model=model, call_args=call_args, request_context=context
            )
            url, headers, properties = info.url, info.headers, info.properties
            auth_schemes = properties.get("authSchemes")
            if auth_schemes is not None:
                auth_type, signing = ruleset.auth_schemes_to_signing_ctx(auth_schemes)
                context["auth_type"] = auth_type
                context["signing"] = signing

        # What RequestSigner.sign signs with.
        signer = client._request_signer
        signing = context.get("signing", {})
        signing_region = signing.get("region") or signer.region_name
        signing_name = signing.get("signing_name") or signer.signing_name
        fields = {"url": url, "signing_region": signing_region, "signing_name": signing_name}
        version = signer._choose_signer(operation, "standard", context)
        if version != "v4":
            return _unsupported(f"botocore would sign with {version!r}, not 'v4'", **fields)
        if signing_name != SIGNING_NAME:
            return _unsupported(f"botocore would sign for {signing_name!r}", **fields)
        if context.get("payload_signing_enabled") is False:
            return _unsupported("botocore would not sign the payload", **fields)
        if headers:
            return _unsupported(f"the endpoint adds headers {sorted(headers)}", **fields)
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return _unsupported("the endpoint is not an http(s) URL", **fields)
        return ResolvedEndpoint(url, signing_region, signing_name, supported=True)


R = TypeVar("R")
_log = logging.getLogger("saga_store_pynamo")

#: How many (operation, table name, account id) routes a ``RouteTable`` keeps; past the
#: bound it starts again (what was built for each endpoint stays).
MAX_ROUTES = 256

RouteKey = tuple[str, "str | None", "str | None"]  # (operation, table name, account id)


class RouteTable(Generic[R]):
    """Where a transport sends each request: what it built for the endpoint botocore resolves.

    ``routes`` maps (operation, table name, account id of the frozen credentials) to the
    transport's object for that endpoint (a pool and signer, say), or to None when the
    request must go through botocore; a transport reads it directly on the hot path and calls
    ``route()`` on a miss. ``build(url, signing_region, signing_name)`` makes the object of
    one endpoint, once (None when the transport cannot honour a setting). Thread-safe: both
    maps are replaced as a whole under the lock and read without it.

    :param name: how the transport is named in the warning logged for a botocore route.
    """

    def __init__(
        self, connection: Any, build: Callable[[str, str, str], R | None], name: str
    ) -> None:
        self.resolver = EndpointResolver(connection)
        self.routes: dict[RouteKey, R | None] = {}
        self._build = build
        self._name = name
        self._lock = threading.Lock()
        self._endpoints: dict[tuple[str, str, str], R | None] = {}

    @property
    def built(self) -> list[R]:
        """What was built so far, one per resolved endpoint the transport can honour."""
        return [value for value in self._endpoints.values() if value is not None]

    def route(
        self, credentials: FrozenCredentials, operation: str, table_name: str | None
    ) -> R | None:
        """The route of a request signed with ``credentials`` (frozen); resolved and built
        on first use, then cached. Blocking (botocore's client may be built)."""
        key = (operation, table_name, account_id_of(credentials))
        routes = self.routes
        if key in routes:
            return routes[key]
        endpoint = self.resolver.resolve(credentials, operation, table_name)
        with self._lock:
            if key in self.routes:
                return self.routes[key]
            route: R | None = None
            if (
                endpoint.supported
                and endpoint.url
                and endpoint.signing_region
                and endpoint.signing_name
            ):
                endpoint_key = (endpoint.url, endpoint.signing_region, endpoint.signing_name)
                if endpoint_key in self._endpoints:
                    route = self._endpoints[endpoint_key]
                else:
                    route = self._build(*endpoint_key)
                    self._endpoints = {**self._endpoints, endpoint_key: route}
            else:
                _log.warning(
                    "%s sends %s through botocore: %s", self._name, operation, endpoint.reason
                )
            routes = self.routes
            self.routes = {**routes, key: route} if len(routes) < MAX_ROUTES else {key: route}
        return route
