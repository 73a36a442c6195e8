"""Write tokens: how a retried write recognises itself, and how incarnations of an id differ.

Two problems share one mechanism, and neither costs a request:

- **Id reuse (ABA).** A saga deleted and inserted again under the same id (unique
  correlation, caller-chosen ids) starts again at version 0, so a version alone cannot tell a
  stale copy of the old saga from the new one. ``insert`` stores a random token in
  ``sagaIncarnation``; every state loaded from the item carries it, and ``update`` writes
  only where the stored incarnation is still the state's own.
- **Lost responses among other writers.** A write is applied, its response is lost, other
  workers write, then the retry fails its condition. ``update`` stores a random token for
  each call in the slot ``sagaWrite<n>`` with ``n = new version mod HISTORY``: a later write
  overwrites the slot only ``HISTORY`` versions later, so the item keeps the tokens of its
  last ``HISTORY`` writes and a retry recognises its own landed write after up to
  ``HISTORY - 1`` later writes by others. ``insert`` is recognised by its incarnation, which
  no update changes, so after any number of later writes.

Items written by earlier builds (a single ``writeToken``) or by other tools (no token at
all) keep working: see ``incarnation_of`` and ``docs/reliability.md`` for what ``update``
checks on each.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any

from .models import SagaModel

__all__ = [
    "HISTORY",
    "INCARNATION",
    "LEGACY_WRITE_TOKEN",
    "RESERVED_NAMES",
    "SLOTS",
    "TOKEN_RESERVE",
    "incarnation_of",
    "insert_landed",
    "new_token",
    "set_incarnation",
    "slot_for",
    "stored_incarnation",
    "update_landed",
]

#: How many recent writes an item remembers: a retry recognises its own landed write after
#: up to ``HISTORY - 1`` later writes by others.
HISTORY = 10
#: The attribute holding the token of the insert that created this incarnation of the id.
INCARNATION = "sagaIncarnation"
#: The attributes holding the tokens of the last ``HISTORY`` writes, by version mod HISTORY.
SLOTS = tuple(f"sagaWrite{n}" for n in range(HISTORY))
#: The single token attribute that earlier builds of the store wrote (reserved, never written).
LEGACY_WRITE_TOKEN = "writeToken"
#: DynamoDB attribute names a model must not declare: the store writes them itself.
RESERVED_NAMES = frozenset({INCARNATION, LEGACY_WRITE_TOKEN, *SLOTS})

#: Characters in a token: 96 random bits in URL-safe base64.
TOKEN_LENGTH = 16
#: Bytes the store's own attributes can take in a stored item (a full write history, the
#: incarnation and a legacy ``writeToken``): counted in every size check, so that an item
#: that can be inserted can also be updated as its history fills.
TOKEN_RESERVE = (
    sum(len(name) + TOKEN_LENGTH for name in SLOTS)
    + len(INCARNATION)
    + TOKEN_LENGTH
    + len(LEGACY_WRITE_TOKEN)
    + 32
)

# The state's incarnation lives outside ``attribute_values``: it is the store's, not the
# model's, and must not travel with ``OrderSaga(**state.attribute_values)``.
_ATTRIBUTE = "_saga_incarnation"


def new_token() -> str:
    """A fresh random token: 96 bits, 16 ASCII characters."""
    return base64.urlsafe_b64encode(os.urandom(12)).decode("ascii")


def slot_for(version: int) -> str:
    """The attribute in which the write that produces ``version`` stores its token."""
    return SLOTS[version % HISTORY]


def incarnation_of(state: SagaModel) -> str | None:
    """The incarnation ``state`` was loaded with.

    A token when it came from an item that has one; ``""`` when it came from an item that
    has none (written by an earlier release or another tool); None when the store never saw
    it (built by hand, or loaded by PynamoDB directly).
    """
    value: str | None = state.__dict__.get(_ATTRIBUTE)
    return value


def set_incarnation(state: SagaModel, item: Mapping[str, Any] | str | None) -> None:
    """Record on ``state`` the incarnation of ``item`` (a stored item, or a token)."""
    if item is None or isinstance(item, str):
        state.__dict__[_ATTRIBUTE] = item
    else:
        state.__dict__[_ATTRIBUTE] = stored_incarnation(item)


def stored_incarnation(item: Mapping[str, Any]) -> str:
    """The incarnation token of a stored item; ``""`` when it has none."""
    text = _text(item, INCARNATION)
    return text if isinstance(text, str) else ""


def _text(item: Mapping[str, Any], name: str) -> object:
    wire = item.get(name)
    return wire.get("S") if isinstance(wire, dict) else None


def insert_landed(item: Mapping[str, Any], token: str) -> bool:
    """Whether ``item`` is the one an insert with ``token`` created."""
    return _text(item, INCARNATION) == token


def update_landed(item: Mapping[str, Any], new_version: int, token: str) -> bool:
    """Whether the update with ``token`` that produced ``new_version`` was applied to ``item``.

    True as long as fewer than ``HISTORY`` later writes have reused its slot.
    """
    return _text(item, slot_for(new_version)) == token
