"""Building the PynamoDB connection a store sends its requests through."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any, TypeAlias, Union
from urllib.parse import urlsplit

import botocore.session
from botocore.credentials import CredentialProvider, Credentials
from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url
from pynamodb.connection import Connection

from .errors import SagaValidationError

__all__ = [
    "CredentialsOption",
    "StoreConnection",
    "check_endpoint",
    "check_table_name",
    "configured_region",
    "meta_credentials",
    "redact_endpoint",
    "to_credentials",
]

#: A botocore ``Credentials`` object (refreshable ones keep refreshing), or a mapping with
#: ``aws_access_key_id``, ``aws_secret_access_key`` and optionally ``aws_session_token``.
CredentialsOption: TypeAlias = Union[Credentials, Mapping[str, str]]  # noqa: UP007

_CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.\-]{3,255}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def check_table_name(table_name: Any) -> str:
    """Return ``table_name`` if DynamoDB would accept it as a table name."""
    if not isinstance(table_name, str) or not _TABLE_NAME.fullmatch(table_name):
        raise SagaValidationError(
            "table_name",
            f"{table_name!r} is not a valid DynamoDB table name "
            "(3 to 255 characters of a-z, A-Z, 0-9, '_', '-', '.')",
        )
    return table_name


def redact_endpoint(endpoint: str) -> str:
    """``endpoint`` with anything before its last ``@`` (a user-info password) masked."""
    if "@" not in endpoint:
        return endpoint
    scheme, sep, _ = endpoint.partition("://")
    prefix = f"{scheme}://" if sep and _SCHEME.fullmatch(scheme) else ""
    return f"{prefix}***@{endpoint.rpartition('@')[2]}"


def check_endpoint(endpoint: Any, source: str = "endpoint") -> str:
    """Return ``endpoint`` if botocore can send requests to it, else raise.

    Accepted: ``http://`` or ``https://``, a host botocore accepts (DNS labels, IPv4 or a
    bracketed IPv6 address), an optional port from 1 to 65535 and an optional path. Refused:
    anything else, including user-info (``user:password@``), which DynamoDB never reads; the
    message masks it. ``source`` names where the value came from (e.g. ``Meta.host``).
    """
    prefix = "" if source == "endpoint" else f"{source} "
    expected = f"{prefix}must be an http(s) URL such as 'http://localhost:8000'"
    if not isinstance(endpoint, str):
        raise SagaValidationError("endpoint", f"{expected}, got {type(endpoint).__name__}")
    problem = _endpoint_problem(endpoint)
    if problem is not None:
        shown = redact_endpoint(endpoint)
        raise SagaValidationError("endpoint", f"{expected}, got {shown!r}: {problem}")
    return endpoint


def _endpoint_problem(endpoint: str) -> str | None:
    """What is wrong with ``endpoint``, or None."""
    if "@" in endpoint:
        return (
            "user-info (user:password@) is not accepted: DynamoDB never reads it "
            "(AWS keys go in credentials=)"
        )
    if not endpoint.isascii() or not endpoint.isprintable() or any(c.isspace() for c in endpoint):
        return "it contains whitespace, a control character or a non-ASCII character"
    try:
        parts = urlsplit(endpoint)
    except ValueError:  # e.g. an unclosed '['
        return "it is not a valid URL"
    if parts.scheme not in ("http", "https") or not endpoint.lower().startswith(
        f"{parts.scheme}://"
    ):
        return "the scheme must be http:// or https://"
    try:
        port = parts.port
    except ValueError:  # non-numeric or above 65535
        return "the port must be a number from 1 to 65535"
    if not parts.hostname:
        return "it has no host"
    valid_host = (
        is_valid_ipv6_endpoint_url(endpoint)
        if "[" in parts.netloc
        else is_valid_endpoint_url(endpoint)
    )
    if not valid_host:
        return "the host is not a valid host name or IP address"
    if port == 0:
        return "the port must be a number from 1 to 65535"
    if parts.query or parts.fragment or endpoint.endswith(("?", "#")):
        return "it must not have a query or a fragment"
    return None


def configured_region() -> str | None:
    """The region botocore would pick up from the environment or the profile, if any.

    Reads environment variables and the AWS config file; sends nothing.
    """
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        return region
    try:
        configured = botocore.session.Session().get_config_variable("region")
    except Exception:  # a broken profile must not break construction; botocore will say
        return None
    return configured if isinstance(configured, str) and configured else None


def to_credentials(credentials: Any) -> Credentials:
    """Turn the ``credentials`` option into a botocore ``Credentials`` object."""
    if isinstance(credentials, Credentials):
        return credentials
    if not isinstance(credentials, Mapping):
        raise SagaValidationError(
            "credentials",
            "must be a botocore Credentials object or a mapping with aws_access_key_id and "
            f"aws_secret_access_key, got {type(credentials).__name__}",
        )
    unknown = sorted(set(credentials) - set(_CREDENTIAL_KEYS))
    if unknown:
        raise SagaValidationError(
            "credentials", f"unknown keys {unknown}; expected {', '.join(_CREDENTIAL_KEYS)}"
        )
    missing = [k for k in _CREDENTIAL_KEYS[:2] if not credentials.get(k)]
    if missing:
        raise SagaValidationError("credentials", f"missing {' and '.join(missing)}")
    for key in _CREDENTIAL_KEYS:
        if key in credentials and not isinstance(credentials[key], str):
            # Name the key, never the value: it may be a secret.
            raise SagaValidationError(f"credentials[{key!r}]", "must be a str")
    return Credentials(
        credentials["aws_access_key_id"],
        credentials["aws_secret_access_key"],
        credentials.get("aws_session_token"),
    )


def meta_credentials(model: type[Any]) -> Credentials | None:
    """The credentials a model's ``Meta`` sets, as PynamoDB would sign with them.

    PynamoDB uses ``aws_access_key_id`` and ``aws_secret_access_key`` when both are set
    (with ``aws_session_token``, if set) and ignores them otherwise. An incomplete set is
    refused here instead: ignoring it would sign with the default credential chain, i.e.
    possibly another account.
    """
    meta = model.Meta
    values: dict[str, str | None] = {}
    for key in _CREDENTIAL_KEYS:
        value = getattr(meta, key, None)
        if value is not None and not isinstance(value, str):
            # Name the key, never the value: it may be a secret.
            raise SagaValidationError("credentials", f"{model.__name__}.Meta.{key} must be a str")
        values[key] = value or None  # PynamoDB treats "" as unset
    key_id, secret, token = (values[k] for k in _CREDENTIAL_KEYS)
    if key_id and secret:
        return Credentials(key_id, secret, token)
    if key_id or secret or token:
        missing = [k for k in _CREDENTIAL_KEYS[:2] if not values[k]]
        raise SagaValidationError(
            "credentials",
            f"{model.__name__}.Meta sets {', '.join(k for k, v in values.items() if v)} but not "
            f"{' and '.join(missing)}: set aws_access_key_id and aws_secret_access_key together "
            "(PynamoDB would ignore the incomplete set and sign with the default chain)",
        )
    return None


class _FixedCredentialProvider(CredentialProvider):  # type: ignore[misc]
    """Hands botocore the store's own credentials ahead of the default chain."""

    METHOD = "saga-store-pynamo"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


class StoreConnection(Connection):
    """A PynamoDB ``Connection`` that signs with a botocore ``Credentials`` object and
    shares one botocore client between all threads.

    PynamoDB only takes static key strings; a ``RefreshableCredentials`` (from an assumed
    role or an SSO profile) must reach botocore as an object to keep refreshing. Without
    ``credentials``, the ``aws_*`` keys are used as PynamoDB uses them (both or none).

    PynamoDB builds its client lazily without a lock, so threads making their first call at
    once each build one. botocore clients are thread-safe (sessions are not): this one is
    built once, under a lock, from the building thread's session.
    """

    def __init__(self, *, credentials: Credentials | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if credentials is None and self._aws_access_key_id and self._aws_secret_access_key:
            # As PynamoDB's Connection.session does with session.set_credentials().
            credentials = Credentials(
                self._aws_access_key_id,
                self._aws_secret_access_key,
                self._aws_session_token or None,
            )
        self._store_credentials = credentials
        self._client_lock = threading.Lock()

    @property
    def session(self) -> botocore.session.Session:
        """A per-thread botocore session that resolves to the store's credentials."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = botocore.session.get_session()
            if self._store_credentials is not None:
                resolver = session.get_component("credential_provider")
                resolver.insert_before("env", _FixedCredentialProvider(self._store_credentials))
            self._local.session = session
        return session

    @property
    def client(self) -> Any:
        """The botocore client, built on first use (and rebuilt, as PynamoDB does, when it
        came without credentials, e.g. after an instance-metadata hiccup)."""
        client = self._client
        if client is None or _lacks_credentials(client):
            with self._client_lock:
                client = self._client
                if client is None or _lacks_credentials(client):
                    client = super().client  # builds and stores self._client
        return client

    def close(self) -> None:
        """Close the client's HTTP connections; the next call builds a new client."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __repr__(self) -> str:
        # Connection.__repr__ builds a client; ours must stay side-effect free.
        return f"StoreConnection(region={self.region!r}, host={self.host!r})"


def _lacks_credentials(client: Any) -> bool:
    """PynamoDB's test for a client that botocore built without credentials."""
    signer = client._request_signer
    return bool(signer and not signer._credentials)
