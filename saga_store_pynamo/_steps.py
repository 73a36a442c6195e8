"""The steps of a store call: what the sync and the asyncio store run alike.

A store call is written once, as a generator (``Steps``) that yields what it needs done and
is resumed with the outcome:

- ``Send``: one request; resumed with its response, or with ``ConditionFailed`` thrown in;
- ``Call``: a call of the user's function (``modify``'s ``fn``, a ``start``); resumed with
  what it returned (awaited first by the asyncio store, when it is awaitable);
- ``Sleep``: a backoff; resumed once it has passed.

``DynamoDBSagaStore._run`` drives steps with a thread (``dispatch``, ``time.sleep``),
``AsyncDynamoDBSagaStore._run`` on an event loop (``dispatch_async``, ``asyncio.sleep``):
every line that is not I/O is shared. Validation runs before the first yield, so bad input
is refused before anything is sent, on both.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, NamedTuple, TypeAlias, Union

from typing_extensions import TypeVar

from .errors import SagaStoreUnavailableError, UnresolvedWrite

__all__ = ["Call", "Send", "Sleep", "Step", "Steps"]

T = TypeVar("T")


class Send(NamedTuple):
    """One request to send; the response is sent back into the steps.

    ``write`` is ``(version it writes, token)`` for an insert or update, so that a write
    that gives up with its fate unknown says which write it was (``write_landed()``).
    """

    operation: str
    request: dict[str, Any]
    saga_name: str | None = None
    saga_id: str | None = None
    write: tuple[int, str] | None = None

    def identify(self, error: SagaStoreUnavailableError) -> None:
        """Name this write on ``error`` when it may have been applied."""
        if self.write is not None and error.may_have_landed:
            error.write = UnresolvedWrite(self.saga_name or "", self.saga_id or "", *self.write)


class Call(NamedTuple):
    """Call ``fn(*args)``; what it returns (awaited by the asyncio store) is sent back."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


class Sleep(NamedTuple):
    """Wait ``seconds`` (a retry's backoff), then resume."""

    seconds: float


Step: TypeAlias = Union[Send, Call, Sleep]  # noqa: UP007

#: The steps of one store call: yields ``Step``s, is resumed with their outcomes, and
#: returns the call's result.
Steps: TypeAlias = Generator[Step, Any, T]
