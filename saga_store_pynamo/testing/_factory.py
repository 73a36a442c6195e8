"""``SagaStoreFactory``: sync and asyncio stores on fresh tables of one backend per test."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest
from botocore.exceptions import ClientError

from .. import DynamoDBSagaStore, SagaModel, create_table
from ._backends import BACKENDS, TEST_CREDENTIALS, TEST_REGION, BackendName

if TYPE_CHECKING:
    from ..aio import AsyncDynamoDBSagaStore

__all__ = ["SagaStoreFactory"]

M = TypeVar("M", bound=SagaModel)

_MOTO_MISSING = (
    "the moto backend needs moto: install saga-store-pynamo with its [demo] extra, or "
    "pip install 'moto[dynamodb]>=5,<6' (or use the dynamodb-local backend)"
)
# The backend a test item uses, shared by every factory of that test.
_BACKEND_IN_USE = pytest.StashKey[str]()


class SagaStoreFactory:
    """Makes stores on fresh tables of one backend; ``close()`` removes what it made.

    The ``saga_store_factory`` fixture is one of these, closed after the test. Calling it
    makes a ``DynamoDBSagaStore``; ``async_store()`` makes an ``AsyncDynamoDBSagaStore``.
    One test uses one backend: while moto is active it stands in for AWS in the whole
    process, so the first store fixes the backend and asking for the other raises
    ``ValueError``.
    """

    def __init__(self, request: pytest.FixtureRequest, *, table_prefix: str = "saga-test") -> None:
        """``request`` finds ``dynamodb_local_endpoint`` and the test the backend is fixed for."""
        self._request = request
        self._table_prefix = table_prefix
        self._backend: BackendName | None = None
        self._endpoint: str | None = None
        self._exit_stack = contextlib.ExitStack()
        self._stores: list[DynamoDBSagaStore[Any]] = []
        self._async_stores: list[AsyncDynamoDBSagaStore[Any]] = []
        # Tables this factory removes at close, each with a (sync) store that can reach it.
        self._owned: dict[str, DynamoDBSagaStore[Any]] = {}
        self._checked: set[str] = set()

    @property
    def backend(self) -> BackendName | None:
        """The backend this factory uses, once a store was made."""
        return self._backend

    @property
    def endpoint(self) -> str | None:
        """DynamoDB Local's endpoint URL; None on moto or before the first store."""
        return self._endpoint

    def __call__(
        self,
        model: type[M],
        *,
        backend: BackendName | None = None,
        create: bool = True,
        store_class: type[DynamoDBSagaStore[Any]] = DynamoDBSagaStore,
        **store_options: Any,
    ) -> DynamoDBSagaStore[M]:
        """A store for ``model`` on a fresh, uniquely named table.

        :param backend: ``"moto"`` or ``"dynamodb-local"``; default: the one this test
            already uses, else moto.
        :param create: create the table (``create_table``); False leaves it to the test.
        :param store_class: ``DynamoDBSagaStore`` or a subclass of it.
        :param store_options: passed to the store. ``region`` and ``credentials`` default to
            ``TEST_REGION`` and ``TEST_CREDENTIALS``, ``endpoint`` to DynamoDB Local's, and
            ``table_name`` to a new unique name. Pass the ``table_name`` of an earlier store
            to share its table; a table the factory did not create or name is never removed.
        """
        options, named_here = self._options(model, backend, store_options)
        store: DynamoDBSagaStore[M] = store_class(model, **options)
        self._stores.append(store)
        self._made(store, named_here=named_here, create=create)
        return store

    def async_store(
        self,
        model: type[M],
        *,
        backend: BackendName | None = None,
        create: bool = True,
        max_workers: int = 8,
        store_class: type[AsyncDynamoDBSagaStore[Any]] | None = None,
        **store_options: Any,
    ) -> AsyncDynamoDBSagaStore[M]:
        """An asyncio store for ``model`` on a fresh table; closed with ``aclose()`` at close.

        The same options and defaults as calling the factory; the table is made (and
        removed) the same way, so an asyncio store and a sync store can share one table by
        ``table_name``. Use the store inside the test's own event loop (``asyncio.run``); the
        factory closes it on an event loop of its own after the test.

        :param max_workers: passed to ``AsyncDynamoDBSagaStore``.
        :param store_class: ``AsyncDynamoDBSagaStore`` (the default) or a subclass of it.
        """
        # Imported here: the plugin loads for every pytest run, asyncio tests or not.
        from ..aio import AsyncDynamoDBSagaStore

        options, named_here = self._options(model, backend, store_options)
        cls = AsyncDynamoDBSagaStore if store_class is None else store_class
        store: AsyncDynamoDBSagaStore[M] = cls(model, max_workers=max_workers, **options)
        self._async_stores.append(store)
        self._made(store.sync, named_here=named_here, create=create)
        return store

    def close(self) -> None:
        """Delete the tables this factory created or named, close its stores, leave moto."""
        errors: list[Exception] = []
        try:
            for table, store in self._owned.items():
                try:
                    _delete_table(store, table)
                except Exception as exc:  # try every table, then report the first failure
                    errors.append(exc)
            for store in self._stores:
                store.close()
            for async_store in self._async_stores:
                try:
                    _run_to_end(async_store.aclose())
                except Exception as exc:  # close every store, then report
                    errors.append(exc)
        finally:
            self._owned.clear()
            self._stores.clear()
            self._async_stores.clear()
            self._exit_stack.close()
        if errors:
            raise errors[0]

    # -- what both kinds of store share -----------------------------------------------------

    def _options(
        self, model: type[SagaModel], backend: BackendName | None, store_options: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """The store's options on this test's backend, and whether the table is named here."""
        self._use(backend)
        options = dict(store_options)
        host = getattr(getattr(model, "Meta", None), "host", None)
        if self._backend == "moto" and host and not {"endpoint", "connection"} & options.keys():
            raise ValueError(
                f"{model.__name__}.Meta.host is {host!r}: moto answers only requests to AWS's "
                "own endpoints, so this store would bypass it; use a model without Meta.host "
                "in tests, or the dynamodb-local backend"
            )
        if "connection" not in options:
            options.setdefault("region", TEST_REGION)
            options.setdefault("credentials", TEST_CREDENTIALS)
            if self._endpoint is not None:
                options.setdefault("endpoint", self._endpoint)
        named_here = "table_name" not in options
        if named_here:
            options["table_name"] = f"{self._table_prefix}-{uuid.uuid4().hex[:12]}"
        return options, named_here

    def _made(self, store: DynamoDBSagaStore[Any], *, named_here: bool, create: bool) -> None:
        """Create ``store``'s table if asked and not done yet; own it if made or named here."""
        table = store.table_name
        if named_here:
            self._owned.setdefault(table, store)
        if create and table not in self._checked:
            if create_table(store):
                self._owned.setdefault(table, store)
            self._checked.add(table)

    def _use(self, backend: BackendName | None) -> None:
        node = self._request.node
        in_use = node.stash.get(_BACKEND_IN_USE, None)
        chosen = backend or self._backend or in_use or "moto"
        if chosen not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {chosen!r}")
        if in_use is not None and in_use != chosen:
            raise ValueError(
                f"this test already uses the {in_use} backend and cannot also use {chosen}: "
                "while moto is active it stands in for AWS in the whole process, so one test "
                "must stay on one backend (parametrise the test to run it on both)"
            )
        if self._backend is not None:
            return
        if chosen == "moto":
            self._enter_moto()
        else:
            self._endpoint = self._dynamodb_local()
        self._backend = cast(BackendName, chosen)
        node.stash[_BACKEND_IN_USE] = chosen

    def _enter_moto(self) -> None:
        from .._moto import atomic_moto

        try:
            self._exit_stack.enter_context(atomic_moto())
        except ImportError:
            pytest.fail(_MOTO_MISSING, pytrace=False)

    def _dynamodb_local(self) -> str:
        try:
            endpoint = self._request.getfixturevalue("dynamodb_local_endpoint")
        except pytest.FixtureLookupError:
            pytest.fail(
                "no dynamodb_local_endpoint fixture: load the plugin with "
                "-p saga_store_pynamo.testing",
                pytrace=False,
            )
        return str(endpoint)


def _delete_table(store: DynamoDBSagaStore[Any], table: str) -> None:
    try:
        store.connection.client.delete_table(TableName=table)
    except ClientError as exc:  # the test may have dropped it, or never created it
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise


def _run_to_end(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` on an event loop of its own, even if one is running in this thread.

    A running loop cannot be waited on from inside one of its own callbacks, so then the
    coroutine runs on a thread of its own.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="saga-store-test-close")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
