"""What the store knows about a model class, worked out once per class.

The DynamoDB names of the attributes the store itself reads and writes, the model's codec,
and the placeholders ``update`` uses for every declared attribute. A model that the store
could not serve correctly is refused here, at store construction: two fields stored under
one name, a field stored under a name of ``SagaModel``'s or of the store's own write tokens,
or so many attributes that an update of them all would pass DynamoDB's expression limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pynamodb.attributes import TTLAttribute, VersionAttribute

from ._codec import ModelCodec
from ._tokens import RESERVED_NAMES
from .errors import SagaValidationError
from .models import SagaModel

__all__ = [
    "ADD_INCARNATION",
    "FIXED_SETS",
    "MAX_EXPRESSION_BYTES",
    "ModelInfo",
    "model_info",
]

#: DynamoDB's limit on one expression string (an ``UpdateExpression``, a condition).
MAX_EXPRESSION_BYTES = 4096

# ``update``'s fixed clauses. The store's own placeholders are upper case; those of the
# model's attributes are lower-case base 36 (``#0``..``#z``, ``#10``...), so they never meet.
FIXED_SETS = "SET #V=:W,#T=:T"
ADD_INCARNATION = "#I=:J"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the store needs to know about a model class, computed once per class."""

    hash_key: str  # DynamoDB attribute names
    range_key: str
    version: str
    correlation_id: str
    completed: str
    updated_at: str
    ttl: str | None
    codec: ModelCodec
    # Per declared non-key attribute other than the version, in declaration order:
    # (DynamoDB name, "#n", ":n", "#n=:n").
    update_slots: tuple[tuple[str, str, str, str], ...]


_cache: dict[type[SagaModel], ModelInfo] = {}


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if number == 0:
            return text


def _check_attribute_names(model: type[SagaModel], attributes: Mapping[str, Any]) -> None:
    """Refuse a model that stores two fields, or a field and the store's own, under one name.

    Such a value would be overwritten silently, or refused by DynamoDB with a message that
    names no field.
    """
    builtin = {a.attr_name: name for name, a in SagaModel.get_attributes().items()}
    seen: dict[str, str] = {}
    for name, attribute in attributes.items():
        stored_as = attribute.attr_name
        if stored_as in RESERVED_NAMES:
            raise SagaValidationError(
                f"{model.__name__}.{name}",
                f"is stored as {stored_as!r}, which the store reserves for its write tokens "
                f"(reserved: {', '.join(sorted(RESERVED_NAMES))})",
            )
        owner = builtin.get(stored_as)
        if owner is not None and owner != name:
            raise SagaValidationError(
                f"{model.__name__}.{name}",
                f"is stored as {stored_as!r}, which is SagaModel.{owner}'s attribute; "
                "choose another attr_name",
            )
        if stored_as in seen:
            raise SagaValidationError(
                f"{model.__name__}.{name}",
                f"is stored as {stored_as!r}, as {model.__name__}.{seen[stored_as]} is",
            )
        seen[stored_as] = name


def model_info(model: type[SagaModel]) -> ModelInfo:
    info = _cache.get(model)
    if info is None:
        attributes = model.get_attributes()
        _check_attribute_names(model, attributes)
        version = [a.attr_name for a in attributes.values() if isinstance(a, VersionAttribute)]
        ttl = [a.attr_name for a in attributes.values() if isinstance(a, TTLAttribute)]
        if len(version) != 1:
            raise SagaValidationError(
                "model", f"{model.__name__} must have exactly one VersionAttribute (``version``)"
            )
        writable = [
            a.attr_name
            for a in attributes.values()
            if not (a.is_hash_key or a.is_range_key or a.attr_name == version[0])
        ]
        slots = tuple(
            (name, f"#{ref}", f":{ref}", f"#{ref}=:{ref}")
            for name, ref in ((name, _base36(i)) for i, name in enumerate(writable))
        )
        # The longest UpdateExpression: every attribute SET (a REMOVE is shorter).
        longest = len(f"{FIXED_SETS},{ADD_INCARNATION}") + sum(1 + len(s[3]) for s in slots)
        if longest > MAX_EXPRESSION_BYTES:
            raise SagaValidationError(
                "model",
                f"{model.__name__} declares {len(writable)} attributes: updating them all "
                f"takes an UpdateExpression of {longest:,} bytes, over DynamoDB's "
                f"{MAX_EXPRESSION_BYTES:,}-byte expression limit (about 500 attributes fit); "
                "group fields into a MapAttribute",
            )
        info = ModelInfo(
            hash_key=attributes["saga_name"].attr_name,
            range_key=attributes["saga_id"].attr_name,
            version=version[0],
            correlation_id=attributes["correlation_id"].attr_name,
            completed=attributes["is_completed"].attr_name,
            updated_at=attributes["updated_at"].attr_name,
            ttl=ttl[0] if ttl else None,
            codec=ModelCodec(model, version[0]),
            update_slots=slots,
        )
        _cache[model] = info
    return info
