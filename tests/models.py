"""Saga models shared by the tests."""

from __future__ import annotations

from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute

from saga_store_pynamo import SagaModel


class OrderSaga(SagaModel):
    """An order saga: order -> payment -> shipping."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    order_id = UnicodeAttribute(null=True)
    total_cents = NumberAttribute(default=0)
    status = UnicodeAttribute(default="pending")
    note = UnicodeAttribute(null=True)
    items = ListAttribute(of=UnicodeAttribute, null=True)
    extra = MapAttribute(null=True)


class OrderSagaV1(SagaModel):
    """The same saga as an older worker knows it: no ``note``, ``items`` or ``extra``."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    order_id = UnicodeAttribute(null=True)
    total_cents = NumberAttribute(default=0)
    status = UnicodeAttribute(default="pending")


class PaymentSaga(SagaModel):
    """A second saga type sharing the table."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    amount_cents = NumberAttribute(default=0)


class CounterSaga(SagaModel):
    """A saga whose every change records its own operation id, to catch double steps."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    count = NumberAttribute(default=0)
    ops = ListAttribute(of=UnicodeAttribute, default=list)
    #: Who inserted it (the contended soak races inserts).
    creator = UnicodeAttribute(null=True)
