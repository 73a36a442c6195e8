"""``modify``: the load-change-save loop with retries, on every backend."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from saga_store_pynamo import (
    ConcurrencyError,
    DynamoDBSagaStore,
    SagaNotFoundError,
    SagaValidationError,
    retry,
)
from saga_store_pynamo._modify import check_retry_options, modify
from saga_store_pynamo.retry import backoff_delay
from tests.conftest import Backend, RequestRecorder
from tests.models import OrderSaga, PaymentSaga

NAME = "OrderSaga"


def inserted(store: DynamoDBSagaStore[Any], saga_id: str, **fields: Any) -> OrderSaga:
    state = OrderSaga(saga_id=saga_id, **fields)
    store.insert(NAME, f"order-{saga_id}", state)
    return state


def increment(state: OrderSaga) -> None:
    state.total_cents += 1


class FakeSleep:
    """Records the delays ``modify`` asks for, without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class UpperBound:
    """A random source whose ``uniform(a, b)`` is always ``b``: the backoff cap itself."""

    @staticmethod
    def uniform(a: float, b: float) -> float:
        return b


# -- the loop -------------------------------------------------------------------------------


def test_modify_in_place_is_one_read_and_one_write(
    store: Any, recorder: RequestRecorder, backend: Backend
) -> None:
    inserted(store, "m1", total_cents=5)
    recorder.take()

    saved = modify(store, NAME, "m1", increment)

    assert recorder.take() == ["GetItem", "UpdateItem"]
    assert recorder.requests == []
    assert isinstance(saved, OrderSaga)
    assert (saved.total_cents, saved.version) == (6, 1)
    again = store.get_by_id(NAME, "m1")
    assert (again.total_cents, again.version) == (6, 1)


def test_modify_reads_consistently_and_expects_the_loaded_version(
    store: Any, recorder: RequestRecorder
) -> None:
    state = inserted(store, "m2")
    for _ in range(3):
        store.update(NAME, state, state.version)
    recorder.take()

    saved = modify(store, NAME, "m2", increment)

    (get, params), (update, _) = recorder.requests
    assert (get, update) == ("GetItem", "UpdateItem")
    assert params["ConsistentRead"] is True
    assert saved.version == 4
    assert store.get_by_id(NAME, "m2").version == 4


def test_eight_threads_of_modify_lose_nothing(make_store: Any) -> None:
    threads, increments = 8, 25
    store = make_store(max_pool_connections=threads)
    inserted(store, "counter")
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(increments):
                modify(store, NAME, "counter", increment, max_attempts=200)
        except BaseException as exc:  # surfaced below: a thread must not fail silently
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert errors == []
    final = store.get_by_id(NAME, "counter")
    assert final.total_cents == threads * increments
    assert final.version == threads * increments


def test_fn_returning_a_new_state_is_saved(store: Any) -> None:
    inserted(store, "new", total_cents=1, note="old note", status="pending")

    def replace(state: OrderSaga) -> OrderSaga:
        # A fresh instance: keys and version are taken from the loaded state.
        return OrderSaga(total_cents=state.total_cents + 41, status="paid")

    saved = modify(store, NAME, "new", replace)

    assert (saved.saga_id, saved.version, saved.total_cents, saved.status) == ("new", 1, 42, "paid")
    assert saved.correlation_id == "order-new"
    stored = store.get_by_id(NAME, "new")
    assert stored == saved
    assert stored.note is None  # saved as the returned state holds it


def test_fn_returning_the_same_state_works_like_none(store: Any) -> None:
    inserted(store, "same")

    def change(state: OrderSaga) -> OrderSaga:
        state.status = "paid"
        return state

    saved = modify(store, NAME, "same", change)
    assert (saved.status, saved.version) == ("paid", 1)


def test_fn_may_increment_the_version_saga_bus_style(store: Any) -> None:
    inserted(store, "bus")

    def change(state: OrderSaga) -> None:
        state.version += 1
        state.status = "paid"

    saved = modify(store, NAME, "bus", change)
    assert saved.version == 1
    assert store.get_by_id(NAME, "bus").status == "paid"


# -- errors ---------------------------------------------------------------------------------


def test_fn_raising_propagates_and_writes_nothing(store: Any, recorder: RequestRecorder) -> None:
    inserted(store, "boom", total_cents=3)
    recorder.take()

    def fail(state: OrderSaga) -> None:
        state.total_cents = 999
        raise KeyError("no such item")

    with pytest.raises(KeyError, match="no such item"):
        modify(store, NAME, "boom", fail)

    assert recorder.take() == ["GetItem"]
    stored = store.get_by_id(NAME, "boom")
    assert (stored.version, stored.total_cents) == (0, 3)


def test_missing_saga_raises_not_found_without_a_write(
    store: Any, recorder: RequestRecorder
) -> None:
    called: list[OrderSaga] = []
    with pytest.raises(SagaNotFoundError) as caught:
        modify(store, NAME, "ghost", called.append)
    assert (caught.value.saga_name, caught.value.saga_id) == (NAME, "ghost")
    assert called == []
    assert recorder.take() == ["GetItem"]
    assert store.get_by_id(NAME, "ghost") is None


def test_saga_deleted_between_load_and_save_is_not_recreated(
    store: Any, recorder: RequestRecorder
) -> None:
    inserted(store, "gone")
    recorder.take()

    def delete_meanwhile(state: OrderSaga) -> None:
        store.delete(NAME, "gone")
        state.status = "paid"

    with pytest.raises(SagaNotFoundError):
        modify(store, NAME, "gone", delete_meanwhile)
    assert recorder.take() == ["GetItem", "DeleteItem", "UpdateItem"]
    assert store.get_by_id(NAME, "gone") is None


def test_exhausted_attempts_reraise_the_last_conflict(
    store: Any, recorder: RequestRecorder
) -> None:
    inserted(store, "busy")
    recorder.take()
    sleep = FakeSleep()
    calls = []

    def bump_behind_its_back(state: OrderSaga) -> None:
        calls.append(state.version)
        # Another writer saves first, every time.
        store.update(NAME, store.get_by_id(NAME, "busy"), state.version)
        increment(state)

    with pytest.raises(ConcurrencyError) as caught:
        modify(store, NAME, "busy", bump_behind_its_back, max_attempts=4, sleep=sleep)

    assert calls == [0, 1, 2, 3]
    assert (caught.value.expected_version, caught.value.actual_version) == (3, 4)
    # Per attempt: the load, the other writer's load and save, then modify's own update.
    assert recorder.take() == ["GetItem", "GetItem", "UpdateItem", "UpdateItem"] * 4
    assert len(sleep.delays) == 3  # between attempts, not after the last one
    stored = store.get_by_id(NAME, "busy")
    assert (stored.version, stored.total_cents) == (4, 0)  # none of modify's writes landed


def test_a_conflict_then_success(store: Any, recorder: RequestRecorder) -> None:
    inserted(store, "once")
    recorder.take()
    sleep = FakeSleep()
    interfered: list[bool] = []

    def bump_once(state: OrderSaga) -> None:
        if not interfered:
            interfered.append(True)
            store.update(NAME, store.get_by_id(NAME, "once"), state.version)
        increment(state)

    saved = modify(store, NAME, "once", bump_once, sleep=sleep)

    assert (saved.version, saved.total_cents) == (2, 1)
    assert len(sleep.delays) == 1
    first_attempt = ["GetItem", "GetItem", "UpdateItem", "UpdateItem"]
    assert recorder.take() == [*first_attempt, "GetItem", "UpdateItem"]


def test_fn_returning_something_else_writes_nothing(
    store: DynamoDBSagaStore[OrderSaga], recorder: RequestRecorder
) -> None:
    # The type of fn already rules these out; at run time they are refused before a write.
    inserted(store, "odd")
    recorder.take()
    with pytest.raises(SagaValidationError, match="fn"):
        modify(store, NAME, "odd", lambda state: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(SagaValidationError, match="saga_id 'other'"):
        modify(store, NAME, "odd", lambda state: OrderSaga(saga_id="other"))
    with pytest.raises(SagaValidationError, match="PaymentSaga"):
        modify(store, NAME, "odd", lambda state: PaymentSaga())  # type: ignore[arg-type,return-value]

    async def coroutine_fn(state: OrderSaga) -> None:
        state.status = "paid"

    with pytest.raises(SagaValidationError, match="awaitable"):
        modify(store, NAME, "odd", coroutine_fn)  # type: ignore[arg-type]
    assert recorder.take() == ["GetItem"] * 4
    stored = store.get_by_id(NAME, "odd")
    assert stored is not None
    assert stored.version == 0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 2.0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"base_delay": -0.1}, "base_delay"),
        ({"base_delay": "1"}, "base_delay"),
        ({"max_delay": float("nan")}, "max_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    make_store: Any, recorder: RequestRecorder, options: dict[str, Any], field: str
) -> None:
    store = make_store(create=False)  # no table needed: nothing may be sent
    with pytest.raises(SagaValidationError) as caught:
        modify(store, NAME, "args", increment, **options)
    assert caught.value.field == field
    with pytest.raises(SagaValidationError) as caught:
        modify(store, NAME, "", increment)
    assert caught.value.field == "saga_id"
    assert recorder.take() == []


@pytest.mark.skipif(
    not hasattr(DynamoDBSagaStore, "modify"), reason="DynamoDBSagaStore.modify not added yet"
)
def test_store_modify_delegates(store: Any, recorder: RequestRecorder) -> None:
    inserted(store, "method", total_cents=1)
    recorder.take()
    saved = store.modify(NAME, "method", increment, max_attempts=3)
    assert (saved.total_cents, saved.version) == (2, 1)
    assert recorder.take() == ["GetItem", "UpdateItem"]


# -- backoff --------------------------------------------------------------------------------


def test_backoff_delays_are_bounded_and_grow(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    inserted(store, "slow")

    def bump_behind_its_back(state: OrderSaga) -> None:
        store.update(NAME, store.get_by_id(NAME, "slow"), state.version)
        increment(state)  # a change: an unchanged state would not be written at all

    # At the upper end of every draw, the delays are the caps themselves.
    monkeypatch.setattr(retry, "random", UpperBound)
    sleep = FakeSleep()
    with pytest.raises(ConcurrencyError):
        modify(
            store,
            NAME,
            "slow",
            bump_behind_its_back,
            max_attempts=6,
            base_delay=0.01,
            max_delay=0.1,
            sleep=sleep,
        )
    assert sleep.delays == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.1])

    # With real draws every delay lies within its cap.
    monkeypatch.setattr(retry, "random", random.Random(1234))
    sleep = FakeSleep()
    with pytest.raises(ConcurrencyError):
        modify(store, NAME, "slow", bump_behind_its_back, max_attempts=8, sleep=sleep)
    caps = [min(1.0, 0.01 * 2 ** (attempt - 1)) for attempt in range(1, 8)]
    assert len(sleep.delays) == 7
    assert all(0 <= d <= cap for d, cap in zip(sleep.delays, caps, strict=True))


def test_backoff_delay_is_full_jitter_under_a_growing_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 40):
        cap = min(1.0, 0.01 * 2 ** (attempt - 1))
        draws = [backoff_delay(attempt, 0.01, 1.0, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in draws)
        assert max(draws) > 0.8 * cap  # the whole range is used...
        assert min(draws) < 0.2 * cap  # ...down to (nearly) zero
    means = [sum(backoff_delay(a, 0.01, 1.0, rng) for _ in range(500)) / 500 for a in (1, 4, 8)]
    assert means[0] < means[1] < means[2]
    assert backoff_delay(5, 0.0, 1.0) == 0.0
    assert backoff_delay(5, 0.5, 0.0) == 0.0
    assert 0 <= backoff_delay(10**9, 0.01, 2.0) <= 2.0  # no overflow at absurd attempts


def test_check_retry_options_normalises() -> None:
    assert check_retry_options(3, 0, 1) == (3, 0.0, 1.0)
    assert isinstance(check_retry_options(3, 0, 1)[1], float)


@pytest.mark.parametrize("field", ["saga_id", "saga_name"])
def test_fn_changing_the_key_in_place_writes_nothing(
    store: Any, recorder: RequestRecorder, field: str
) -> None:
    inserted(store, "key")
    recorder.take()

    def move(state: OrderSaga) -> None:
        setattr(state, field, "elsewhere")
        state.total_cents = 1

    with pytest.raises(SagaValidationError, match="in place") as caught:
        modify(store, NAME, "key", move)
    assert caught.value.field == "fn"
    assert recorder.take() == ["GetItem"]
    assert store.get_by_id(NAME, "elsewhere") is None
    assert store.get_by_id(NAME, "key").total_cents == 0
