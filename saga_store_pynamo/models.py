"""The saga model: the PynamoDB base class users subclass to declare their saga's fields."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.constants import NUMBER, PAY_PER_REQUEST_BILLING_MODE, STRING
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

__all__ = [
    "CorrelationIndex",
    "DecimalAttribute",
    "SagaModel",
    "SagaStateMetadata",
    "UTCTimestampAttribute",
]


def utc_now() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


class UTCTimestampAttribute(Attribute[datetime]):
    """An aware datetime stored as an ISO 8601 UTC string, e.g. ``2026-11-27T10:00:00.123456Z``.

    The format sorts as text in time order and is what JavaScript's ``toISOString()`` (and so
    the TypeScript saga-bus store) writes, with microseconds. Reading also accepts
    milliseconds, a ``+00:00``/``+0000`` offset, or PynamoDB's ``UTCDateTimeAttribute``
    format, so items written by either stay readable. Naive datetimes are refused: a saga
    shared between machines must not depend on their local time zones.
    """

    attr_type = STRING

    def serialize(self, value: datetime) -> str:
        """Render an aware datetime as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is not timezone.utc:
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError("datetime must be timezone-aware (use datetime.now(timezone.utc))")
            value = value.astimezone(timezone.utc)
        # isoformat is twice as fast as strftime and gives the same text; in UTC it ends
        # with "+00:00", which becomes "Z".
        return value.isoformat("T", "microseconds")[:-6] + "Z"

    def deserialize(self, value: str) -> datetime:
        """Parse an ISO 8601 timestamp into an aware UTC datetime."""
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            # Python 3.10's fromisoformat accepts neither "+0000" nor odd fraction widths.
            parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)


def dynamodb_number_text(number: Decimal) -> str:
    """``number`` as DynamoDB gives it back: positional, without exponent or trailing zeros
    (``Decimal("1.50")`` -> ``"1.5"``, ``Decimal("1E+2")`` -> ``"100"``, ``-0`` -> ``"0"``).

    :raises ValueError: for NaN and infinities, more than 38 significant digits, or a
        magnitude outside 1E-130 .. 9.99E+125: DynamoDB refuses them.
    """
    if not number.is_finite():
        raise ValueError(f"{_short(number)} is not a finite number; DynamoDB numbers are finite")
    if not number:
        return "0"
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    end = len(digits)
    while digits[end - 1] == 0:  # trailing zeros are not significant
        end -= 1
    exponent += len(digits) - end
    if end > 38:
        raise ValueError(
            f"{_short(number)} has {end} significant digits; DynamoDB keeps at most 38"
        )
    if not -130 <= exponent + end - 1 <= 125:
        raise ValueError(f"{_short(number)} is outside DynamoDB's range (1E-130 to 9.99E+125)")
    text = "".join(map(str, digits[:end]))
    if exponent >= 0:
        text += "0" * exponent
    elif -exponent < end:
        text = f"{text[:exponent]}.{text[exponent:]}"
    else:
        text = "0." + "0" * (-exponent - end) + text
    return "-" + text if sign else text


def _short(number: Decimal) -> str:
    text = repr(number)
    return text if len(text) <= 60 else f"{text[:40]}...{text[-12:]}"


class DecimalAttribute(Attribute[Decimal]):
    """A number stored exactly and read back as a ``Decimal`` (DynamoDB type N).

    PynamoDB's ``NumberAttribute`` reads every number as an int or a float, so it cannot give
    ``Decimal("19.99")`` back. This attribute takes a ``Decimal`` or an int, stores it as
    DynamoDB's decimal text (38 significant digits, 1E-130 .. 9.99E+125, finite) and reads a
    ``Decimal``. Floats are refused: their decimal value is rarely the one meant.
    """

    attr_type = NUMBER

    def serialize(self, value: Decimal | int) -> str:
        """DynamoDB's text for ``value``."""
        if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
            raise TypeError(
                f"expected a Decimal or an int, got {type(value).__name__} (for a float, "
                "pass Decimal(str(x)) if its shortest text is the value you mean)"
            )
        return dynamodb_number_text(Decimal(value))

    def deserialize(self, value: str) -> Decimal:
        """The stored number, exactly."""
        return Decimal(value)


def _canonical(value: Any) -> Any:
    """A comparable form of a DynamoDB wire value (``{"N": "1.0"}`` equals ``{"N": "1"}``)."""
    ((kind, data),) = value.items()
    if kind == "N":
        return ("N", _decimal(data))
    if kind == "NS":
        return ("NS", frozenset(_decimal(n) for n in data))
    if kind in ("SS", "BS"):
        return (kind, frozenset(bytes(b) if kind == "BS" else b for b in data))
    if kind == "L":
        return ("L", tuple(_canonical(v) for v in data))
    if kind == "M":
        return ("M", frozenset((k, _canonical(v)) for k, v in data.items()))
    if kind == "B":
        return ("B", bytes(data))
    return (kind, data)


def _decimal(text: str) -> Any:
    try:
        return Decimal(text)
    except ArithmeticError:
        return text


class CorrelationIndex(GlobalSecondaryIndex["SagaModel"]):  # type: ignore[no-untyped-call]
    """The ``correlationIndex`` GSI: hash key ``sagaName``, range key ``correlationId``.

    Queries on it are eventually consistent on AWS (GSIs cannot be read consistently).
    """

    class Meta:
        index_name = "correlationIndex"
        projection = AllProjection()

    saga_name = UnicodeAttribute(hash_key=True, attr_name="sagaName")
    correlation_id = UnicodeAttribute(range_key=True, attr_name="correlationId")


@dataclasses.dataclass(frozen=True)
class SagaStateMetadata:
    """A read-only snapshot of a saga's saga-bus metadata."""

    saga_id: str | None
    version: int | None
    created_at: datetime | None
    updated_at: datetime | None
    is_completed: bool
    archived_at: datetime | None = None
    trace_parent: str | None = None
    trace_state: str | None = None
    timeout_ms: int | None = None
    timeout_expires_at: datetime | None = None


class SagaModel(Model):
    """Base model of a saga's stored state; subclass it and add your saga's fields.

    Every subclass shares the table layout below, so several saga types can live in one
    table (the partition key is the saga name)::

        class OrderSaga(SagaModel):
            order_id = UnicodeAttribute()
            total_cents = NumberAttribute(default=0)

    ``Meta`` defaults to the table ``sagas`` with on-demand billing; a subclass may declare
    its own ``Meta`` (``table_name``, ``region``, ``host``), and the store may override them.
    """

    class Meta:
        table_name = "sagas"
        billing_mode = PAY_PER_REQUEST_BILLING_MODE

    saga_name = UnicodeAttribute(hash_key=True, attr_name="sagaName")
    saga_id = UnicodeAttribute(range_key=True, attr_name="sagaId")
    correlation_id = UnicodeAttribute(attr_name="correlationId")
    version = VersionAttribute(attr_name="version")
    ttl = TTLAttribute(attr_name="ttl", null=True)
    is_completed = BooleanAttribute(attr_name="isCompleted", default=False)
    created_at = UTCTimestampAttribute(attr_name="createdAt", default_for_new=utc_now)
    updated_at = UTCTimestampAttribute(attr_name="updatedAt", default_for_new=utc_now)
    archived_at = UTCTimestampAttribute(attr_name="archivedAt", null=True)
    trace_parent = UnicodeAttribute(attr_name="traceParent", null=True)
    trace_state = UnicodeAttribute(attr_name="traceState", null=True)
    timeout_ms = NumberAttribute(attr_name="timeoutMs", null=True)
    timeout_expires_at = UTCTimestampAttribute(attr_name="timeoutExpiresAt", null=True)

    correlation_index = CorrelationIndex()

    def __init__(
        self,
        hash_key: Any = None,
        range_key: Any = None,
        _user_instantiated: bool = True,
        **attributes: Any,
    ) -> None:
        super().__init__(hash_key, range_key, _user_instantiated, **attributes)
        if (
            _user_instantiated
            and attributes.get("created_at") is None
            and attributes.get("updated_at") is None
        ):
            # Both defaults from one clock reading: a new state's createdAt == updatedAt.
            self.updated_at = self.created_at

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass that declares its own Meta would otherwise fall back to PynamoDB's
        # PROVISIONED default, and `OrderSaga.create_table()` would not give the seed's table.
        meta = cls.__dict__.get("Meta")
        if meta is not None and not hasattr(meta, "billing_mode"):
            meta.billing_mode = PAY_PER_REQUEST_BILLING_MODE

    @property
    def metadata(self) -> SagaStateMetadata:
        """The saga-bus metadata of this state, as a frozen snapshot."""
        timeout_ms = self.timeout_ms
        return SagaStateMetadata(
            saga_id=self.saga_id,
            version=self.version,
            created_at=self.created_at,
            updated_at=self.updated_at,
            is_completed=bool(self.is_completed),
            archived_at=self.archived_at,
            trace_parent=self.trace_parent,
            trace_state=self.trace_state,
            timeout_ms=None if timeout_ms is None else int(timeout_ms),
            timeout_expires_at=self.timeout_expires_at,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(saga_name={self.saga_name!r}, saga_id={self.saga_id!r}, "
            f"correlation_id={self.correlation_id!r}, version={self.version!r})"
        )

    def __eq__(self, other: Any) -> bool:
        """Two states are equal when they are of the same model and store the same values.

        Values are compared as DynamoDB keeps them: numbers by decimal value (1.0 == 1), sets
        regardless of order.
        """
        if type(other) is not type(self):
            return NotImplemented
        mine = _comparable_item(self)
        theirs = _comparable_item(other)
        return mine.keys() == theirs.keys() and all(
            _canonical(mine[k]) == _canonical(theirs[k]) for k in mine
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable (as with dataclasses)


def _comparable_item(state: SagaModel) -> dict[str, Any]:
    """``state.serialize(null_check=False)``, with ``Decimal`` numbers as the store writes
    them (PynamoDB's number attributes cannot serialize a Decimal; the store can)."""
    values = state.attribute_values
    decimals = {
        name: value
        for name, value in values.items()
        if isinstance(value, Decimal)
        or (isinstance(value, (set, frozenset)) and any(isinstance(v, Decimal) for v in value))
    }
    if not decimals:
        return state.serialize(null_check=False)
    rest = object.__new__(type(state))
    rest.attribute_values = {k: v for k, v in values.items() if k not in decimals}
    item = rest.serialize(null_check=False)
    attributes = state.get_attributes()
    for name, value in decimals.items():
        attribute = attributes[name]
        if isinstance(value, Decimal):
            item[attribute.attr_name] = {"N": str(value)}
        else:
            item[attribute.attr_name] = {"NS": [str(v) for v in value]}
    return item
