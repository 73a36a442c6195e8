"""An order service with two saga types in one table, its handlers written with typed views.

Each order has an ``OrderSaga`` (placed, items packed, paid) and a ``PaymentSaga`` (amount
due, captures received), both keyed by the order id as correlation id and kept in the same
table. Messages arrive out of order and some twice, handled by many workers at once, so each
handler is one ``modify_by_correlation_id`` per saga it touches: it starts the saga when its
message comes first, continues it otherwise, and records each message id so that a second
delivery changes nothing (and writes nothing).

``store.view(PaymentSaga)`` binds the store's calls to one saga type: no saga name to repeat,
and ``mypy --strict`` checks every step function against the right model. The same steps serve
a thread-pool consumer (``OrderService``) and an asyncio one (``AsyncOrderService``).

Run it on moto, the embedded DynamoDB (the package installed with its ``[demo]`` extra)::

    python examples/two_sagas.py
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeAlias

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeSetAttribute

from saga_store_pynamo import DynamoDBSagaStore, SagaModel, create_table
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore
from saga_store_pynamo.moto import atomic_moto

#: Attempts per call: many workers on one saga take turns, and each turn is an attempt.
ATTEMPTS = 50


# -- the two saga types -----------------------------------------------------------------------


class OrderSaga(SagaModel):
    """An order: placed, its items packed, paid; complete when all three are done."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    item_count = NumberAttribute(default=0)  # 0 until the order is placed
    placed = BooleanAttribute(default=False)
    paid = BooleanAttribute(default=False)
    packed = UnicodeSetAttribute(default=set)
    seen = UnicodeSetAttribute(default=set)


class PaymentSaga(SagaModel):
    """An order's payment: paid once the captures reach the amount due."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    amount_cents = NumberAttribute(default=0)  # 0 until the order is placed
    captured_cents = NumberAttribute(default=0)
    seen = UnicodeSetAttribute(default=set)


# -- the messages -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OrderPlaced:
    message_id: str
    order_id: str
    total_cents: int
    item_count: int


@dataclasses.dataclass(frozen=True)
class ItemPacked:
    message_id: str
    order_id: str
    item: str


@dataclasses.dataclass(frozen=True)
class PaymentCaptured:
    message_id: str
    order_id: str
    cents: int


Message: TypeAlias = OrderPlaced | ItemPacked | PaymentCaptured


# -- the steps: plain functions of a state, shared by both consumers ----------------------------
# Each may run more than once per message (once per attempt), so it only changes the state it
# is given; a message already in ``seen`` changes nothing.


def _settle_order(state: OrderSaga) -> None:
    packed = state.placed and len(state.packed) >= state.item_count
    state.is_completed = bool(packed and state.paid)


def _settle_payment(state: PaymentSaga) -> None:
    state.is_completed = 0 < state.amount_cents <= state.captured_cents


def place_order(message: OrderPlaced) -> Callable[[OrderSaga], None]:
    def step(state: OrderSaga) -> None:
        if message.message_id in state.seen:
            return
        state.seen = state.seen | {message.message_id}
        state.placed = True
        state.item_count = message.item_count
        _settle_order(state)

    return step


def pack_item(message: ItemPacked) -> Callable[[OrderSaga], None]:
    def step(state: OrderSaga) -> None:
        if message.message_id in state.seen:
            return
        state.seen = state.seen | {message.message_id}
        state.packed = state.packed | {message.item}
        _settle_order(state)

    return step


def mark_paid(state: OrderSaga) -> None:
    """The payment is complete (idempotent in itself: marking twice changes nothing)."""
    state.paid = True
    _settle_order(state)


def expect_amount(message: OrderPlaced) -> Callable[[PaymentSaga], None]:
    def step(state: PaymentSaga) -> None:
        if message.message_id in state.seen:
            return
        state.seen = state.seen | {message.message_id}
        state.amount_cents = message.total_cents
        _settle_payment(state)

    return step


def capture(message: PaymentCaptured) -> Callable[[PaymentSaga], None]:
    def step(state: PaymentSaga) -> None:
        if message.message_id in state.seen:
            return
        state.seen = state.seen | {message.message_id}
        state.captured_cents += message.cents
        _settle_payment(state)

    return step


# -- the handlers: a thread-pool consumer and an asyncio consumer ---------------------------------


class OrderService:
    """Handles messages on worker threads; safe to call from many at once."""

    def __init__(self, store: DynamoDBSagaStore[OrderSaga]) -> None:
        self.orders = store.view(OrderSaga)
        self.payments = store.view(PaymentSaga)

    def handle(self, message: Message) -> None:
        if isinstance(message, OrderPlaced):
            self.orders.modify_by_correlation_id(
                message.order_id, place_order(message), start=OrderSaga, max_attempts=ATTEMPTS
            )
            self._payment_step(message.order_id, expect_amount(message))
        elif isinstance(message, ItemPacked):
            self.orders.modify_by_correlation_id(
                message.order_id, pack_item(message), start=OrderSaga, max_attempts=ATTEMPTS
            )
        else:
            self._payment_step(message.order_id, capture(message))

    def _payment_step(self, order_id: str, step: Callable[[PaymentSaga], None]) -> None:
        payment = self.payments.modify_by_correlation_id(
            order_id, step, start=PaymentSaga, max_attempts=ATTEMPTS
        )
        # Whichever step completed the payment (or a redelivery after a crash right here)
        # tells the order; once it knows, this writes nothing.
        if payment.is_completed:
            self.orders.modify_by_correlation_id(
                order_id, mark_paid, start=OrderSaga, max_attempts=ATTEMPTS
            )


class AsyncOrderService:
    """``OrderService`` for an asyncio consumer: the same steps, awaited calls."""

    def __init__(self, store: AsyncDynamoDBSagaStore[OrderSaga]) -> None:
        self.orders = store.view(OrderSaga)
        self.payments = store.view(PaymentSaga)

    async def handle(self, message: Message) -> None:
        if isinstance(message, OrderPlaced):
            await self.orders.modify_by_correlation_id(
                message.order_id, place_order(message), start=OrderSaga, max_attempts=ATTEMPTS
            )
            await self._payment_step(message.order_id, expect_amount(message))
        elif isinstance(message, ItemPacked):
            await self.orders.modify_by_correlation_id(
                message.order_id, pack_item(message), start=OrderSaga, max_attempts=ATTEMPTS
            )
        else:
            await self._payment_step(message.order_id, capture(message))

    async def _payment_step(self, order_id: str, step: Callable[[PaymentSaga], None]) -> None:
        payment = await self.payments.modify_by_correlation_id(
            order_id, step, start=PaymentSaga, max_attempts=ATTEMPTS
        )
        if payment.is_completed:
            await self.orders.modify_by_correlation_id(
                order_id, mark_paid, start=OrderSaga, max_attempts=ATTEMPTS
            )


# -- a burst of messages, and the end states it must leave --------------------------------------

ITEMS = ("book", "lamp", "mug")
PAYMENTS = (5_000, 2_500, 1_500)


def burst(order_ids: Sequence[str], seed: int) -> list[Message]:
    """Every order's messages, shuffled, with about a third of them delivered twice."""
    messages: list[Message] = []
    for order_id in order_ids:
        messages.append(OrderPlaced(f"{order_id}/placed", order_id, sum(PAYMENTS), len(ITEMS)))
        messages += [ItemPacked(f"{order_id}/packed/{item}", order_id, item) for item in ITEMS]
        messages += [
            PaymentCaptured(f"{order_id}/capture/{n}", order_id, cents)
            for n, cents in enumerate(PAYMENTS)
        ]
    rng = random.Random(seed)
    messages += rng.sample(messages, len(messages) // 3)
    rng.shuffle(messages)
    return messages


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def check_order(service: OrderService, order_id: str) -> None:
    """One order's two sagas, as every delivery order must leave them."""
    order = service.orders.get_by_correlation_id(order_id)
    payment = service.payments.get_by_correlation_id(order_id)
    if order is None or payment is None:
        raise AssertionError(f"{order_id}: a saga is missing ({order=}, {payment=})")
    expect(order.saga_id == service.orders.saga_id_for(order_id), f"{order_id}: order saga id")
    expect(
        (order.placed, order.paid, order.packed, order.is_completed)
        == (True, True, set(ITEMS), True),
        f"{order_id}: order saga ended as {order.attribute_values}",
    )
    expect(
        (payment.amount_cents, payment.captured_cents, payment.is_completed)
        == (sum(PAYMENTS), sum(PAYMENTS), True),
        f"{order_id}: payment saga ended as {payment.attribute_values}",
    )


def check_totals(service: OrderService, order_ids: Sequence[str]) -> None:
    """One saga of each type per order: duplicates and races started nothing twice."""
    for view in (service.orders, service.payments):
        names = sorted(state.correlation_id or "" for state in view.iter_by_name())
        expect(names == sorted(order_ids), f"{view.saga_name}: sagas for {names}")


def run_sync(store: DynamoDBSagaStore[OrderSaga], order_ids: Sequence[str]) -> int:
    service = OrderService(store)
    messages = burst(order_ids, seed=1)
    with ThreadPoolExecutor(8) as workers:
        list(workers.map(service.handle, messages))
    for order_id in order_ids:
        check_order(service, order_id)
    return len(messages)


async def run_async(store: AsyncDynamoDBSagaStore[OrderSaga], order_ids: Sequence[str]) -> int:
    service = AsyncOrderService(store)
    messages = burst(order_ids, seed=2)
    await asyncio.gather(*(service.handle(message) for message in messages))
    sync_service = OrderService(store.sync)  # the checks read through the sync views
    for order_id in order_ids:
        check_order(sync_service, order_id)
    return len(messages)


def main() -> None:
    sync_orders = [f"order-{n}" for n in range(1, 5)]
    async_orders = [f"order-{n}" for n in range(5, 9)]
    with atomic_moto():  # against AWS: leave this out and give the store your region
        store = DynamoDBSagaStore(
            OrderSaga, models={"PaymentSaga": PaymentSaga}, unique_correlation=True, ttl_days=30
        )
        create_table(store)
        handled = run_sync(store, sync_orders)
        print(f"threads: {handled} deliveries, {len(sync_orders)} orders complete")

        async def consume() -> int:
            async with AsyncDynamoDBSagaStore(
                OrderSaga, models={"PaymentSaga": PaymentSaga}, unique_correlation=True, ttl_days=30
            ) as async_store:
                return await run_async(async_store, async_orders)

        handled = asyncio.run(consume())
        print(f"asyncio: {handled} deliveries, {len(async_orders)} orders complete")
        check_totals(OrderService(store), sync_orders + async_orders)
        store.close()


if __name__ == "__main__":
    main()
