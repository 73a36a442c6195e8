"""Typed views of a store for one saga type: ``store.view(PaymentSaga)``.

A store serving several saga types is typed with its default model; a view is bound to one
model and its saga name, offers the store's calls without the ``saga_name`` argument, and is
typed with that model, so ``mypy --strict`` checks a handler's ``fn`` against the right
class::

    payments = store.view(PaymentSaga)
    saga = payments.modify_by_correlation_id(order_id, record_payment, start=PaymentSaga)

``SagaView`` wraps a ``DynamoDBSagaStore``, ``AsyncSagaView`` an ``AsyncDynamoDBSagaStore``;
both are cheap (no I/O, no state of their own) and safe to share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, cast

from typing_extensions import TypeVar

from ._modify import DEFAULT_BASE_DELAY, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DELAY
from ._validation import MAX_PARTITION_KEY_BYTES, check_key
from .errors import SagaValidationError
from .models import SagaModel

if TYPE_CHECKING:  # the stores import this module: no cycle at run time
    from .aio import AsyncDynamoDBSagaStore
    from .store import DynamoDBSagaStore, SagaPage

__all__ = ["AsyncSagaView", "SagaView", "view_saga_name"]

V = TypeVar("V", bound=SagaModel)


def view_saga_name(
    models: dict[str, type[SagaModel]],
    served: Callable[[str], type[SagaModel]],
    model: Any,
    saga_name: str | None,
) -> str:
    """The saga name a view of ``model`` is bound to, checked against what the store serves.

    The name ``model`` is registered under in the store's ``models``, else the class name;
    ``saga_name`` overrides, and is required when the class is registered under several
    names. The store must store that saga name with exactly ``model`` (a view returns
    ``model`` instances, which only the store's own model for the name gives).

    :raises SagaValidationError: ``model`` is not a ``SagaModel`` subclass, is registered
        under several names and no ``saga_name`` is given, or is not the model the store
        uses for the saga name.
    """
    if not (isinstance(model, type) and issubclass(model, SagaModel)):
        raise SagaValidationError("model", f"must be a SagaModel subclass, got {model!r}")
    if saga_name is None:
        registered = sorted(name for name, cls in models.items() if cls is model)
        if len(registered) > 1:
            raise SagaValidationError(
                "saga_name",
                f"{model.__name__} is registered under several saga names "
                f"({', '.join(map(repr, registered))}): pass saga_name=",
            )
        saga_name = registered[0] if registered else model.__name__
    check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
    stored_with = served(saga_name)
    if stored_with is not model:
        raise SagaValidationError(
            "model",
            f"the store keeps saga {saga_name!r} as {stored_with.__name__}, not "
            f"{model.__name__}; register it with models={{{saga_name!r}: {model.__name__}}}",
        )
    return saga_name


def _derived_id(store: DynamoDBSagaStore[Any], saga_name: str, correlation_id: str) -> str:
    saga_id = store.saga_id_for(saga_name, correlation_id)
    if saga_id is None:
        raise SagaValidationError(
            "unique_correlation",
            "saga ids are derived from correlation ids only with unique_correlation=True",
        )
    return saga_id


class SagaView(Generic[V]):
    """One saga type's calls on a ``DynamoDBSagaStore``, typed with its model.

    Made by ``store.view(Model, saga_name=None)``; every call is the store's call of the same
    name with this view's ``saga_name``.
    """

    def __init__(
        self, store: DynamoDBSagaStore[Any], model: type[V], saga_name: str | None = None
    ) -> None:
        self.store = store
        self.model = model
        #: The saga name every call uses.
        self.saga_name = view_saga_name(store._models, store.model_for, model, saga_name)

    def __repr__(self) -> str:
        return f"SagaView({self.model.__name__}, saga_name={self.saga_name!r})"

    def get_by_id(self, saga_id: str) -> V | None:
        """See ``DynamoDBSagaStore.get_by_id()``."""
        return cast("V | None", self.store.get_by_id(self.saga_name, saga_id))

    def get_by_correlation_id(self, correlation_id: str) -> V | None:
        """See ``DynamoDBSagaStore.get_by_correlation_id()``."""
        return cast("V | None", self.store.get_by_correlation_id(self.saga_name, correlation_id))

    def saga_id_for(self, correlation_id: str) -> str:
        """The id of this type's saga for ``correlation_id`` under ``unique_correlation``.

        :raises SagaValidationError: the store is not in unique mode (ids are random then),
            or ``correlation_id`` is not a valid key.
        """
        return _derived_id(self.store, self.saga_name, correlation_id)

    def insert(self, correlation_id: str, state: V) -> None:
        """See ``DynamoDBSagaStore.insert()``."""
        self.store.insert(self.saga_name, correlation_id, state)

    def update(self, state: V, expected_version: int) -> None:
        """See ``DynamoDBSagaStore.update()``."""
        self.store.update(self.saga_name, state, expected_version)

    def delete(self, saga_id: str) -> None:
        """See ``DynamoDBSagaStore.delete()``."""
        self.store.delete(self.saga_name, saga_id)

    def modify(
        self,
        saga_id: str,
        fn: Callable[[V], V | None],
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
    ) -> V:
        """See ``DynamoDBSagaStore.modify()``."""
        store = cast("DynamoDBSagaStore[V]", self.store)
        return store.modify(
            self.saga_name,
            saga_id,
            fn,
            max_attempts=max_attempts,
            base_delay=base_delay,
            max_delay=max_delay,
        )

    def modify_by_correlation_id(
        self,
        correlation_id: str,
        fn: Callable[[V], V | None],
        *,
        start: Callable[[], V] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
    ) -> V:
        """See ``DynamoDBSagaStore.modify_by_correlation_id()``."""
        store = cast("DynamoDBSagaStore[V]", self.store)
        return store.modify_by_correlation_id(
            self.saga_name,
            correlation_id,
            fn,
            start=start,
            max_attempts=max_attempts,
            base_delay=base_delay,
            max_delay=max_delay,
        )

    def find_by_name(
        self,
        *,
        completed: bool | None = None,
        limit: int = 100,
        cursor: str | None = None,
        consistent_read: bool = False,
    ) -> SagaPage[V]:
        """One page of this saga type's sagas; see ``DynamoDBSagaStore.find_by_name()``."""
        store = cast("DynamoDBSagaStore[V]", self.store)
        return store.find_by_name(
            self.saga_name,
            completed=completed,
            limit=limit,
            cursor=cursor,
            consistent_read=consistent_read,
        )

    def iter_by_name(self, *, completed: bool | None = None, page_size: int = 100) -> Iterator[V]:
        """Every saga of this type; see ``DynamoDBSagaStore.iter_by_name()``."""
        store = cast("DynamoDBSagaStore[V]", self.store)
        return store.iter_by_name(self.saga_name, completed=completed, page_size=page_size)


class AsyncSagaView(Generic[V]):
    """One saga type's calls on an ``AsyncDynamoDBSagaStore``, typed with its model.

    Made by ``store.view(Model, saga_name=None)``; the calls of ``SagaView`` as coroutines
    (``iter_by_name`` an async iterator), ``fn`` and ``start`` plain or async.
    """

    def __init__(
        self, store: AsyncDynamoDBSagaStore[Any], model: type[V], saga_name: str | None = None
    ) -> None:
        self.store = store
        self.model = model
        #: The saga name every call uses.
        self.saga_name = view_saga_name(store.sync._models, store.sync.model_for, model, saga_name)

    def __repr__(self) -> str:
        return f"AsyncSagaView({self.model.__name__}, saga_name={self.saga_name!r})"

    async def get_by_id(self, saga_id: str) -> V | None:
        """See ``AsyncDynamoDBSagaStore.get_by_id()``."""
        return cast("V | None", await self.store.get_by_id(self.saga_name, saga_id))

    async def get_by_correlation_id(self, correlation_id: str) -> V | None:
        """See ``AsyncDynamoDBSagaStore.get_by_correlation_id()``."""
        found = await self.store.get_by_correlation_id(self.saga_name, correlation_id)
        return cast("V | None", found)

    def saga_id_for(self, correlation_id: str) -> str:
        """As ``SagaView.saga_id_for()`` (no request)."""
        return _derived_id(self.store.sync, self.saga_name, correlation_id)

    async def insert(self, correlation_id: str, state: V) -> None:
        """See ``AsyncDynamoDBSagaStore.insert()``."""
        await self.store.insert(self.saga_name, correlation_id, state)

    async def update(self, state: V, expected_version: int) -> None:
        """See ``AsyncDynamoDBSagaStore.update()``."""
        await self.store.update(self.saga_name, state, expected_version)

    async def delete(self, saga_id: str) -> None:
        """See ``AsyncDynamoDBSagaStore.delete()``."""
        await self.store.delete(self.saga_name, saga_id)

    async def modify(
        self,
        saga_id: str,
        fn: Callable[[V], V | Awaitable[V | None] | None],
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> V:
        """See ``AsyncDynamoDBSagaStore.modify()``."""
        store = cast("AsyncDynamoDBSagaStore[V]", self.store)
        return await store.modify(
            self.saga_name,
            saga_id,
            fn,
            max_attempts=max_attempts,
            base_delay=base_delay,
            max_delay=max_delay,
            sleep=sleep,
        )

    async def modify_by_correlation_id(
        self,
        correlation_id: str,
        fn: Callable[[V], V | Awaitable[V | None] | None],
        *,
        start: Callable[[], V | Awaitable[V]] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> V:
        """See ``AsyncDynamoDBSagaStore.modify_by_correlation_id()``."""
        store = cast("AsyncDynamoDBSagaStore[V]", self.store)
        return await store.modify_by_correlation_id(
            self.saga_name,
            correlation_id,
            fn,
            start=start,
            max_attempts=max_attempts,
            base_delay=base_delay,
            max_delay=max_delay,
            sleep=sleep,
        )

    async def find_by_name(
        self,
        *,
        completed: bool | None = None,
        limit: int = 100,
        cursor: str | None = None,
        consistent_read: bool = False,
    ) -> SagaPage[V]:
        """One page of this saga type's sagas; see ``AsyncDynamoDBSagaStore.find_by_name()``."""
        store = cast("AsyncDynamoDBSagaStore[V]", self.store)
        return await store.find_by_name(
            self.saga_name,
            completed=completed,
            limit=limit,
            cursor=cursor,
            consistent_read=consistent_read,
        )

    def iter_by_name(
        self, *, completed: bool | None = None, page_size: int = 100
    ) -> AsyncIterator[V]:
        """Every saga of this type: ``async for state in view.iter_by_name()``."""
        store = cast("AsyncDynamoDBSagaStore[V]", self.store)
        return store.iter_by_name(self.saga_name, completed=completed, page_size=page_size)
