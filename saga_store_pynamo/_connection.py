"""Building the PynamoDB connection a store sends its requests through."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, TypeAlias, Union
from urllib.parse import urlsplit

import botocore.session
from botocore.credentials import CredentialProvider, Credentials
from pynamodb.connection import Connection

from .errors import SagaValidationError

__all__ = [
    "CredentialsOption",
    "StoreConnection",
    "check_endpoint",
    "check_table_name",
    "configured_region",
    "to_credentials",
]

#: A botocore ``Credentials`` object (refreshable ones keep refreshing), or a mapping with
#: ``aws_access_key_id``, ``aws_secret_access_key`` and optionally ``aws_session_token``.
CredentialsOption: TypeAlias = Union[Credentials, Mapping[str, str]]  # noqa: UP007

_CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.\-]{3,255}")


def check_table_name(table_name: Any) -> str:
    """Return ``table_name`` if DynamoDB would accept it as a table name."""
    if not isinstance(table_name, str) or not _TABLE_NAME.fullmatch(table_name):
        raise SagaValidationError(
            "table_name",
            f"{table_name!r} is not a valid DynamoDB table name "
            "(3 to 255 characters of a-z, A-Z, 0-9, '_', '-', '.')",
        )
    return table_name


def check_endpoint(endpoint: Any) -> str:
    """Return ``endpoint`` if it is an http(s) URL with a host."""
    if isinstance(endpoint, str):
        parts = urlsplit(endpoint)
        if parts.scheme in ("http", "https") and parts.hostname:
            return endpoint
    raise SagaValidationError(
        "endpoint", f"must be an http(s) URL such as 'http://localhost:8000', got {endpoint!r}"
    )


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


class _FixedCredentialProvider(CredentialProvider):  # type: ignore[misc]
    """Hands botocore the store's own credentials ahead of the default chain."""

    METHOD = "saga-store-pynamo"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


class StoreConnection(Connection):
    """A PynamoDB ``Connection`` that signs with a botocore ``Credentials`` object.

    PynamoDB only takes static key strings; a ``RefreshableCredentials`` (from an assumed
    role or an SSO profile) must reach botocore as an object to keep refreshing.
    """

    def __init__(self, *, credentials: Credentials | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store_credentials = credentials

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

    def __repr__(self) -> str:
        # Connection.__repr__ builds a client; ours must stay side-effect free.
        return f"StoreConnection(region={self.region!r}, host={self.host!r})"
