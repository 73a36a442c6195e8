"""``modify``: load a saga, change it, save it, and retry on a version conflict.

The optimistic-concurrency loop every caller of ``update`` otherwise writes by hand::

    store.modify("OrderSaga", saga_id, lambda state: setattr(state, "status", "paid"))

The pieces shared with the asyncio store (``saga_store_pynamo.aio``) live here too:
argument checks, the backoff delay and the handling of what ``fn`` returns.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ._tokens import incarnation_of, set_incarnation
from .errors import ConcurrencyError, SagaNotFoundError, SagaValidationError
from .models import SagaModel
from .retry import backoff_delay

if TYPE_CHECKING:  # store.py may import this module: no import cycle at run time
    from .store import DynamoDBSagaStore

__all__ = [
    "DEFAULT_BASE_DELAY",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_DELAY",
    "backoff_delay",
    "check_retry_options",
    "modify",
    "resolve_result",
]

M = TypeVar("M", bound=SagaModel)

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


def modify(
    store: DynamoDBSagaStore[M],
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

    Each attempt is one consistent ``get_by_id``, a call of ``fn(state)`` and one
    ``update(saga_name, state, expected_version=<loaded version>)``. ``fn`` either changes
    ``state`` in place and returns None, or returns the state to save instead. It may run
    several times (once per attempt, each time on a freshly loaded state), so it should
    only change the state. After a conflict the next attempt starts after
    ``backoff_delay()`` seconds. Anything ``fn`` raises propagates, and nothing is written
    for that attempt.

    :param store: the store to load from and save to.
    :param saga_name: the saga's name.
    :param saga_id: the saga's id.
    :param fn: called with the loaded state; changes it in place and returns None, or
        returns the state to save.
    :param max_attempts: attempts in total (>= 1) before the last conflict is re-raised.
    :param base_delay: backoff before the second attempt, at most (seconds).
    :param max_delay: cap on any backoff (seconds).
    :param sleep: the function that waits (``time.sleep``); injectable for tests.
    :returns: the saved state; its ``version`` is the stored one.
    :raises SagaNotFoundError: the saga does not exist, or was deleted between the load
        and the save (it is never re-created).
    :raises ConcurrencyError: every one of the ``max_attempts`` attempts hit a conflict.
    :raises SagaValidationError: bad arguments (before any request), or ``fn`` returned
        something other than None or a state of this saga (nothing is written).
    """
    max_attempts, base_delay, max_delay = check_retry_options(max_attempts, base_delay, max_delay)
    attempt = 0
    while True:
        attempt += 1
        loaded = store.get_by_id(saga_name, saga_id)
        if loaded is None:
            raise SagaNotFoundError(saga_name, saga_id)
        expected_version = loaded.version
        state = resolve_result(saga_name, saga_id, loaded, fn(loaded))
        try:
            store.update(saga_name, state, expected_version)
        except ConcurrencyError:
            if attempt >= max_attempts:
                raise
            sleep(backoff_delay(attempt, base_delay, max_delay))
        else:
            return state
