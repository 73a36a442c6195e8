"""moto as an embedded DynamoDB, with each request applied atomically as DynamoDB applies it.

For demos, examples and tests that need no server and no AWS account::

    from saga_store_pynamo.moto import atomic_moto

    with atomic_moto():
        store = DynamoDBSagaStore(OrderSaga, region="us-east-1")
        create_table(store)
        ...

moto applies a conditional write without holding any lock, so two threads can both pass the
same condition and one update is lost inside moto itself; DynamoDB applies each conditional
write atomically. ``atomic_moto()`` serialises moto's request handling so that moto behaves
like the service it imitates under concurrent writers; the store itself is not changed.

Needs moto (the ``[demo]`` extra, or ``pip install 'moto[dynamodb]>=5,<6'``), imported only
when ``atomic_moto()`` is entered. See ``docs/testing.md``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["atomic_moto"]

_LOCK = threading.RLock()


@contextlib.contextmanager
def atomic_moto() -> Iterator[None]:
    """``moto.mock_aws()`` with one request at a time reaching moto's backends.

    Inside the ``with`` block every AWS call made through botocore (so every store call) is
    answered by moto in this process: nothing reaches the network or an AWS account, and
    moto forgets its tables when the outermost block ends. Like ``mock_aws()`` it sets fake
    credentials in the environment while active; give the store a region (``region=`` or
    ``Meta.region``). Blocks may be nested: an inner one joins the outer one's state.

    :raises ImportError: moto is not installed (install the ``[demo]`` extra).
    """
    try:
        from moto import mock_aws
        from moto.core.botocore_stubber import BotocoreStubber
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the embedded backend needs moto: install saga-store-pynamo with its [demo] "
            "extra, or pip install 'moto[dynamodb]>=5,<6'"
        ) from exc

    original = BotocoreStubber.process_request
    if getattr(original, "_saga_store_atomic", False):  # already patched (nested use)
        with mock_aws():
            yield
        return

    def process_request(self: Any, request: Any) -> Any:
        with _LOCK:
            return original(self, request)

    process_request._saga_store_atomic = True  # type: ignore[attr-defined]
    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    try:
        with mock_aws():
            yield
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]
