"""``modify``: load a saga, change it, save it, and retry on a version conflict.

The optimistic-concurrency loop every caller of ``update`` otherwise writes by hand::

    store.modify("OrderSaga", saga_id, lambda state: setattr(state, "status", "paid"))

and its start-or-continue twin ``modify_by_correlation_id``. Both are written once, as steps
(``_steps``) over the store's own steps, and run by the sync and the asyncio store alike;
this module knows the store only through the ``ModifiableStore`` protocol (no import of
``store``).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from . import _telemetry
from ._model_info import model_info
from ._steps import Call, Sleep, Steps
from ._tokens import incarnation_of, set_incarnation
from .errors import (
    ConcurrencyError,
    SagaAlreadyExistsError,
    SagaNotFoundError,
    SagaStoreError,
    SagaValidationError,
)
from .models import SagaModel
from .retry import backoff_delay

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_DELAY",
    "ModifiableStore",
    "backoff_delay",
    "check_retry_options",
    "modify",
    "modify_by_correlation_id_steps",
    "modify_steps",
    "resolve_result",
    "stored_form",
]

M = TypeVar("M", bound=SagaModel)
M_co = TypeVar("M_co", bound=SagaModel, covariant=True)

DEFAULT_MAX_ATTEMPTS = 10
DEFAULT_BASE_DELAY = 0.01
DEFAULT_MAX_DELAY = 1.0


def _check_delay(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SagaValidationError(field, f"must be a non-negative number, got {value!r}")
    if not value >= 0 or value == float("inf"):  # also refuses NaN
        raise SagaValidationError(field, f"must be a finite non-negative number, got {value!r}")
    return float(value)


def check_retry_options(
    max_attempts: Any, base_delay: Any, max_delay: Any
) -> tuple[int, float, float]:
    """Validate ``modify``'s retry options; return them as ``(int, float, float)``.

    :param max_attempts: attempts in total; an int >= 1.
    :param base_delay: seconds; a finite number >= 0.
    :param max_delay: seconds; a finite number >= 0.
    :raises SagaValidationError: ``max_attempts`` is not an int >= 1, or a delay is not a
        finite non-negative number.
    """
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        raise SagaValidationError(
            "max_attempts", f"must be an int >= 1, got {type(max_attempts).__name__}"
        )
    if max_attempts < 1:
        raise SagaValidationError("max_attempts", f"must be an int >= 1, got {max_attempts}")
    return (
        int(max_attempts),
        _check_delay("base_delay", base_delay),
        _check_delay("max_delay", max_delay),
    )


def resolve_result(saga_name: str, saga_id: str, loaded: M, result: object) -> M:
    """The state to save, given the loaded state and what ``fn`` returned for it.

    ``None`` means ``fn`` changed ``loaded`` in place. A different ``SagaModel`` replaces
    it: its unset ``saga_id``, ``correlation_id`` and ``version`` are taken from the loaded
    state; everything else is saved as it holds it (``update`` semantics).

    :param saga_name: the saga's name, as passed to ``modify``.
    :param saga_id: the saga's id, as passed to ``modify``.
    :param loaded: the state ``fn`` was called with.
    :param result: what ``fn`` returned (awaited already, in the async store).
    :raises SagaValidationError: ``fn`` returned something else, or a state of another saga.
    """
    if result is None or result is loaded:
        if loaded.saga_id != saga_id or loaded.saga_name not in (None, saga_name):
            # Saved as it is, the state would go to another saga's key.
            raise SagaValidationError(
                "fn",
                f"changed the state's saga_id or saga_name in place (to {loaded.saga_id!r}, "
                f"{loaded.saga_name!r}); a saga's key cannot change",
            )
        return loaded
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if callable(close):
            close()  # no "coroutine was never awaited" warning on top of the error
        raise SagaValidationError(
            "fn",
            "returned an awaitable; use AsyncDynamoDBSagaStore.modify for async functions",
        )
    if not isinstance(result, SagaModel):
        raise SagaValidationError(
            "fn", f"must return None or a SagaModel state, got {type(result).__name__}"
        )
    if result.saga_name is not None and result.saga_name != saga_name:
        raise SagaValidationError(
            "fn", f"returned a state of saga {result.saga_name!r}, not {saga_name!r}"
        )
    if result.saga_id is None:
        result.saga_id = saga_id
    elif result.saga_id != saga_id:
        raise SagaValidationError(
            "fn", f"returned a state with saga_id {result.saga_id!r}, not {saga_id!r}"
        )
    if result.correlation_id is None:
        result.correlation_id = loaded.correlation_id
    if result.version is None:
        result.version = loaded.version
    if incarnation_of(result) is None:
        # The replacement is this incarnation's state: a saga deleted and inserted again
        # under the same id in between must not be overwritten by it.
        set_incarnation(result, incarnation_of(loaded))
    return result  # type: ignore[return-value]  # update() checks it is of the saga's model


class ModifiableStore(Protocol[M_co]):
    """What ``modify`` needs of a store: its steps and its TTL setting."""

    ttl_days: float | None

    def model_for(self, saga_name: str) -> type[SagaModel]: ...
    def _get_by_id(self, saga_name: str, saga_id: str) -> Steps[M_co | None]: ...
    def _get_by_correlation_id(self, saga_name: str, correlation_id: str) -> Steps[M_co | None]: ...
    def _insert(self, saga_name: str, correlation_id: str, state: SagaModel) -> Steps[None]: ...
    def _update(self, saga_name: str, state: SagaModel, expected_version: int) -> Steps[None]: ...
    def _run(
        self,
        steps: Steps[Any],
        call: str,
        saga_name: object,
        saga_id: object = ...,
        operation: str | None = ...,
        sleep: Callable[[float], object] = ...,
    ) -> Any: ...


def stored_form(store: ModifiableStore[Any], state: SagaModel) -> dict[str, Any] | None:
    """What ``state`` would store, less what the store sets on every write itself
    (``updatedAt``, the version, the write tokens, and the ``ttl`` when ``ttl_days`` derives
    it), to tell whether ``fn`` changed anything; None when the state does not serialize
    (``update`` then reports why)."""
    info = model_info(type(state))
    try:
        item, _ = info.codec.encode(state, 0, {})
    except (SagaStoreError, TypeError, ValueError, OverflowError):
        return None
    item.pop(info.updated_at, None)
    item.pop(info.version, None)
    if store.ttl_days is not None and info.ttl is not None:
        item.pop(info.ttl, None)
    return item


def modify_steps(
    store: ModifiableStore[M],
    saga_name: str,
    saga_id: str,
    fn: Callable[[M], Any],
    max_attempts: int,
    base_delay: float,
    max_delay: float,
    loaded: M | None = None,
) -> Steps[M]:
    """The steps of ``modify``; ``loaded`` is a state already read for the first attempt.

    Each attempt: a consistent read (unless ``loaded`` is given), ``fn``, and, when ``fn``
    changed something (``stored_form``), one conditional update with the loaded version;
    when it changed nothing, the loaded state is returned and nothing is written.
    """
    attempt = 0
    while True:
        attempt += 1
        if loaded is None:
            loaded = yield from store._get_by_id(saga_name, saga_id)
            if loaded is None:
                raise SagaNotFoundError(saga_name, saga_id)
        expected_version = loaded.version
        before = stored_form(store, loaded)
        result = yield Call(fn, (loaded,))
        state = resolve_result(saga_name, saga_id, loaded, result)
        if before is not None and stored_form(store, state) == before:
            return loaded  # nothing to write: the saga as stored
        try:
            yield from store._update(saga_name, state, expected_version)
        except ConcurrencyError:
            if attempt >= max_attempts:
                raise
            delay = backoff_delay(attempt, base_delay, max_delay)
            _telemetry.conflict_retried(saga_name, saga_id, attempt, delay)
            yield Sleep(delay)
            loaded = None
        else:
            return state


def modify_by_correlation_id_steps(
    store: ModifiableStore[M],
    saga_name: str,
    correlation_id: str,
    fn: Callable[[M], Any],
    start: Callable[[], Any] | None,
    max_attempts: int,
    base_delay: float,
    max_delay: float,
) -> Steps[M]:
    """The steps of ``modify_by_correlation_id``: find, then modify; or start and insert.

    A start that loses its race (``SagaAlreadyExistsError``: another worker inserted the
    same derived id first, under ``unique_correlation``) counts as an attempt and goes on as
    ``modify`` of the winner.
    """
    loaded = yield from store._get_by_correlation_id(saga_name, correlation_id)
    if loaded is not None:
        return (
            yield from modify_steps(
                store, saga_name, loaded.saga_id, fn, max_attempts, base_delay, max_delay, loaded
            )
        )
    if start is None:
        raise SagaNotFoundError(saga_name, None, correlation_id=correlation_id)
    state = yield Call(start)
    model = store.model_for(saga_name)
    if not isinstance(state, model):
        raise SagaValidationError(
            "start",
            f"must return a new {model.__name__} state for saga {saga_name!r}, "
            f"got {type(state).__name__}",
        )
    if state.version not in (None, 0):
        raise SagaValidationError(
            "start", f"must return a new state (version None or 0), got version {state.version!r}"
        )
    result = yield Call(fn, (state,))
    if result is not None and result is not state:
        if not isinstance(result, model):
            raise SagaValidationError(
                "fn", f"must return None or a SagaModel state, got {type(result).__name__}"
            )
        state = result
    started: M = state  # type: ignore[assignment]  # checked: an instance of the saga's model
    try:
        yield from store._insert(saga_name, correlation_id, started)
    except SagaAlreadyExistsError as lost:
        # Another worker started it first: continue it. Its id is the one derived from the
        # correlation id, which this insert was given too.
        return (
            yield from modify_steps(
                store,
                saga_name,
                lost.saga_id,
                fn,
                max(1, max_attempts - 1),
                base_delay,
                max_delay,
            )
        )
    return started


def modify(
    store: ModifiableStore[M],
    saga_name: str,
    saga_id: str,
    fn: Callable[[M], M | None],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    sleep: Callable[[float], object] = time.sleep,
) -> M:
    """Load a saga, apply ``fn``, save it; on a version conflict reload and try again.

    Each attempt is one consistent ``get_by_id``, a call of ``fn(state)`` and, when ``fn``
    changed the state, one ``update(saga_name, state, expected_version=<loaded version>)``.
    ``fn`` either changes ``state`` in place and returns None, or returns the state to save
    instead. It may run several times (once per attempt, each time on a freshly loaded
    state), so it should only change the state. After a conflict the next attempt starts
    after ``backoff_delay()`` seconds. Anything ``fn`` raises propagates, and nothing is
    written for that attempt.

    :param store: the store to load from and save to.
    :param saga_name: the saga's name.
    :param saga_id: the saga's id.
    :param fn: called with the loaded state; changes it in place and returns None, or
        returns the state to save.
    :param max_attempts: attempts in total (>= 1) before the last conflict is re-raised.
    :param base_delay: backoff before the second attempt, at most (seconds).
    :param max_delay: cap on any backoff (seconds).
    :param sleep: the function that waits (``time.sleep``); injectable for tests.
    :returns: the saved state, its ``version`` the stored one; when ``fn`` changed nothing,
        the loaded state, unchanged, at its stored version (nothing was written).
    :raises SagaNotFoundError: the saga does not exist, or was deleted between the load
        and the save (it is never re-created).
    :raises ConcurrencyError: every one of the ``max_attempts`` attempts hit a conflict.
    :raises SagaValidationError: bad arguments (before any request), or ``fn`` returned
        something other than None or a state of this saga (nothing is written).
    """
    max_attempts, base_delay, max_delay = check_retry_options(max_attempts, base_delay, max_delay)
    result: M = store._run(
        modify_steps(store, saga_name, saga_id, fn, max_attempts, base_delay, max_delay),
        "modify",
        saga_name,
        saga_id,
        sleep=sleep,
    )
    return result
