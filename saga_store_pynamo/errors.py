"""Errors raised by the saga store.

Every error the store raises is a ``SagaStoreError``; the AWS or PynamoDB exception
that caused it, if any, is chained as ``__cause__``::

    SagaStoreError
    ├── ConcurrencyError            the stored version is not the expected one
    ├── SagaAlreadyExistsError      insert of a (saga_name, saga_id) that exists
    ├── SagaNotFoundError           update of a saga that does not exist (also a LookupError)
    ├── SagaDataError               a stored item the model cannot load (bad stored data)
    ├── SagaValidationError         bad input, rejected before any request (also a ValueError)
    │   └── SagaTooLargeError       the item exceeds DynamoDB's 400 KB item limit
    ├── TableNotFoundError          the table does not exist (or is not visible to the caller)
    ├── IncompatibleTableError      an existing table does not match the model's schema
    └── SagaStoreRequestError       any other error DynamoDB or the network reported
        └── SagaStoreUnavailableError   still throttled / failing after every retry

No message ever contains a credential.
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "ConcurrencyError",
    "IncompatibleTableError",
    "SagaAlreadyExistsError",
    "SagaDataError",
    "SagaNotFoundError",
    "SagaStoreError",
    "SagaStoreRequestError",
    "SagaStoreUnavailableError",
    "SagaTooLargeError",
    "SagaValidationError",
    "TableNotFoundError",
    "UnresolvedWrite",
]


class SagaStoreError(Exception):
    """Base class of every error raised by saga-store-pynamo."""


class ConcurrencyError(SagaStoreError):
    """The saga was changed by someone else: its stored version is not the expected one."""

    def __init__(self, saga_name: str, saga_id: str, expected_version: int, actual_version: int):
        self.saga_name = saga_name
        self.saga_id = saga_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"saga {saga_name!r} id {saga_id!r}: expected version {expected_version}, "
            f"but the stored version is {actual_version}"
        )


class SagaAlreadyExistsError(SagaStoreError):
    """An insert found a saga with the same (saga_name, saga_id) already stored."""

    def __init__(self, saga_name: str, saga_id: str, message: str | None = None):
        self.saga_name = saga_name
        self.saga_id = saga_id
        super().__init__(message or f"saga {saga_name!r} id {saga_id!r} already exists")


class SagaNotFoundError(SagaStoreError, LookupError):
    """The saga does not exist (it was never inserted, or it was deleted)."""

    def __init__(
        self, saga_name: str, saga_id: str | None, *, correlation_id: str | None = None
    ) -> None:
        self.saga_name = saga_name
        #: None when the saga was looked for by correlation id only.
        self.saga_id = saga_id
        self.correlation_id = correlation_id
        what = f"with correlation id {correlation_id!r}" if saga_id is None else f"id {saga_id!r}"
        super().__init__(f"saga {saga_name!r} {what} does not exist")

    def __str__(self) -> str:
        # LookupError would otherwise render args with repr() quoting.
        return str(self.args[0])


class SagaDataError(SagaStoreError):
    """A stored item cannot be loaded as the model's state: an attribute holds a value of
    the wrong type or form (written by another tool, or by an incompatible model).

    ``field`` names the attribute; ``saga_name`` and ``saga_id`` the item, when it has them.
    """

    def __init__(self, saga_name: str | None, saga_id: str | None, field: str, message: str):
        self.saga_name = saga_name
        self.saga_id = saga_id
        self.field = field
        super().__init__(f"{field}: {message} (stored saga {saga_name!r} id {saga_id!r})")


class SagaValidationError(SagaStoreError, ValueError):
    """Bad input or configuration; raised before any request is sent, so nothing is written.

    ``field`` names the offending argument, option or attribute.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class SagaTooLargeError(SagaValidationError):
    """The item would exceed DynamoDB's item size limit (400 KB = 409,600 bytes)."""

    def __init__(self, field: str, size: int | None, limit: int, message: str | None = None):
        self.size = size
        self.limit = limit
        super().__init__(
            field,
            message
            or f"item is {size:,} bytes as DynamoDB counts them; the limit is {limit:,} bytes",
        )


class TableNotFoundError(SagaStoreError):
    """The table does not exist in this account and region (or at this endpoint)."""

    def __init__(self, table_name: str, message: str | None = None):
        self.table_name = table_name
        super().__init__(
            message
            or f"table {table_name!r} does not exist; create it with "
            "saga_store_pynamo.create_table(store)"
        )


class IncompatibleTableError(SagaStoreError):
    """An existing table's schema differs from the one the model needs."""

    def __init__(self, table_name: str, differences: list[str]):
        self.table_name = table_name
        self.differences = differences
        super().__init__(
            f"table {table_name!r} is incompatible with the saga model: " + "; ".join(differences)
        )


class SagaStoreRequestError(SagaStoreError):
    """DynamoDB, or the network on the way to it, reported an error the store does not map.

    ``code`` is DynamoDB's error code (e.g. ``ProvisionedThroughputExceededException``) when
    there is one.
    """

    def __init__(self, operation: str, code: str | None, message: str):
        self.operation = operation
        self.code = code
        super().__init__(f"{operation} failed: {message}")


@dataclasses.dataclass(frozen=True)
class UnresolvedWrite:
    """An insert or update whose every attempt failed, and which may have been applied."""

    saga_name: str
    saga_id: str
    #: The version the write stores (0 for an insert).
    version: int
    #: The write's token, stored in the item when the write is applied.
    token: str


class SagaStoreUnavailableError(SagaStoreRequestError):
    """DynamoDB stayed unavailable (throttling, server errors, dropped connections) through
    every attempt of the store's retry policy.

    ``may_have_landed`` is True when the request was a write and any of its attempts may have
    been applied although no answer arrived (a reset connection, a 500). ``write`` then says
    which insert or update it was, and ``store.write_landed(error)`` tells whether it was
    applied (one read); otherwise load the saga before you repeat the business step.
    """

    #: The insert or update whose fate is unknown, when ``may_have_landed`` is True.
    write: UnresolvedWrite | None = None

    def __init__(
        self,
        operation: str,
        code: str | None,
        message: str,
        *,
        attempts: int,
        may_have_landed: bool,
    ):
        self.attempts = attempts
        self.may_have_landed = may_have_landed
        super().__init__(operation, code, f"{message} (after {attempts} attempts)")
