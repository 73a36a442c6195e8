"""An order saga end to end: ``python -m saga_store_pynamo.demo [--endpoint URL]``.

Starts an order (insert), lets four workers handle its payment and shipping messages at once
(concurrent updates; the conflicts they cause are retried), and completes it with a TTL. By
default it runs on an embedded moto backend, so no server is needed (``[demo]`` extra);
``--endpoint`` points it at DynamoDB Local or LocalStack instead.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from .errors import ConcurrencyError
from .models import SagaModel
from .store import DynamoDBSagaStore
from .table import create_table

SAGA_NAME = "OrderSaga"


class DemoOrderSaga(SagaModel):
    """The demo's saga: an order that must be paid and shipped in full."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    order_id = UnicodeAttribute()
    total_cents = NumberAttribute()
    paid_cents = NumberAttribute(default=0)
    items_total = NumberAttribute()
    items_shipped = NumberAttribute(default=0)
    status = UnicodeAttribute(default="awaiting-payment")


@dataclass(frozen=True)
class Message:
    """A message for the saga, keyed by its correlation id (the order id)."""

    kind: str  # "PaymentReceived" or "ItemShipped"
    order_id: str
    amount_cents: int = 0


@dataclass
class Tally:
    handled: int = 0
    conflicts: int = 0


def handle(store: DynamoDBSagaStore[DemoOrderSaga], message: Message, tally: Tally) -> None:
    """Load the saga, apply the message, save with the loaded version; retry on conflict."""
    for attempt in range(1, 51):
        state = store.get_by_correlation_id(SAGA_NAME, message.order_id)
        if state is None:
            raise LookupError(f"no saga for order {message.order_id}")
        # A fresh consistent read of the saga itself: the index may lag on real DynamoDB.
        state = store.get_by_id(SAGA_NAME, state.saga_id)
        assert state is not None
        if message.kind == "PaymentReceived":
            state.paid_cents += message.amount_cents
        else:
            state.items_shipped += 1
        paid = state.paid_cents >= state.total_cents
        shipped = state.items_shipped >= state.items_total
        state.status = {
            (False, False): "awaiting-payment",
            (True, False): "paid",
            (False, True): "shipped-unpaid",
            (True, True): "completed",
        }[(paid, shipped)]
        state.is_completed = paid and shipped
        try:
            store.update(SAGA_NAME, state, state.version)
        except ConcurrencyError:
            tally.conflicts += 1
            time.sleep(random.uniform(0, 0.002 * attempt))  # back off, with jitter
            continue
        tally.handled += 1
        return
    raise RuntimeError(f"gave up on {message} after 50 conflicts")


@contextlib.contextmanager
def _backend(endpoint: str | None) -> Iterator[None]:
    if endpoint is not None:
        yield
        return
    from ._moto import atomic_moto

    with atomic_moto():
        yield


def run(endpoint: str | None = None, workers: int = 4, out: TextIO | None = None) -> DemoOrderSaga:
    """Run the demo and return the final state of the saga."""
    write = (out or sys.stdout).write
    credentials = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}
    with _backend(endpoint):
        store = DynamoDBSagaStore(
            DemoOrderSaga,
            table_name=f"saga-demo-{uuid.uuid4().hex[:8]}",
            endpoint=endpoint,
            credentials=credentials,
            ttl_days=30,
            max_pool_connections=workers,
        )
        create_table(store)
        write(f"table {store.table_name!r} ready on {endpoint or 'embedded moto'}\n")

        order_id = f"order-{uuid.uuid4().hex[:6]}"
        saga = DemoOrderSaga(order_id=order_id, total_cents=12_000, items_total=3)
        store.insert(SAGA_NAME, order_id, saga)
        write(f"1. insert     saga {saga.saga_id} for {order_id}: version {saga.version}\n")

        messages: queue.Queue[Message] = queue.Queue()
        for amount in (5_000, 4_000, 3_000):
            messages.put(Message("PaymentReceived", order_id, amount))
        for _ in range(3):
            messages.put(Message("ItemShipped", order_id))
        tally = Tally()
        lock = threading.Lock()

        def worker() -> None:
            local = Tally()
            while True:
                try:
                    message = messages.get_nowait()
                except queue.Empty:
                    break
                handle(store, message, local)
            with lock:
                tally.handled += local.handled
                tally.conflicts += local.conflicts

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        write(
            f"2. update     {tally.handled} messages by {workers} workers at once: "
            f"{tally.conflicts} version conflicts, each reloaded and retried\n"
        )

        final = store.get_by_id(SAGA_NAME, saga.saga_id)
        assert final is not None
        write(
            f"3. complete   status={final.status} paid={final.paid_cents}/{final.total_cents} "
            f"shipped={final.items_shipped}/{final.items_total} version={final.version}\n"
        )
        expiry = "none" if final.ttl is None else final.ttl.isoformat()
        write(f"   ttl        {expiry} (completed sagas expire after ttl_days=30)\n")
        if endpoint is not None:  # leave nothing behind on a real server
            store.connection.delete_table(store.table_name)
        store.close()
        return final


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m saga_store_pynamo.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--endpoint", help="DynamoDB endpoint URL (default: an embedded moto backend)"
    )
    parser.add_argument("--workers", type=int, default=4, help="concurrent workers (default 4)")
    args = parser.parse_args(argv)
    final = run(args.endpoint, args.workers)
    ok = final.is_completed and final.paid_cents == final.total_cents
    print("demo finished: the order saga is complete" if ok else "demo FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
