"""Typed views (``store.view(Model)``): each call is the store's call with the view's saga
name, on every backend, sync and asyncio; how a view's saga name is chosen, which models are
refused, and that its calls validate (and refuse to write) as the store's do."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from saga_store_pynamo import (
    DynamoDBSagaStore,
    SagaModel,
    SagaNotFoundError,
    SagaValidationError,
    SagaView,
    correlation_saga_id,
)
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore
from saga_store_pynamo.views import AsyncSagaView
from tests.conftest import CREDENTIALS, REGION, Backend, RequestRecorder
from tests.models import CounterSaga, OrderSaga, PaymentSaga

MakeStore = Callable[..., DynamoDBSagaStore[Any]]
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


def offline(model: type[SagaModel] = OrderSaga, **options: Any) -> DynamoDBSagaStore[Any]:
    """A store that is never sent a request (construction does no I/O)."""
    return DynamoDBSagaStore(model, region=REGION, credentials=CREDENTIALS, **options)


def offline_async(
    model: type[SagaModel] = OrderSaga, **options: Any
) -> AsyncDynamoDBSagaStore[Any]:
    return AsyncDynamoDBSagaStore(model, region=REGION, credentials=CREDENTIALS, **options)


class RefundSaga(PaymentSaga):
    """A subclass of a served model: the store would load its sagas as ``PaymentSaga``."""


def add(cents: int) -> Callable[[PaymentSaga], None]:
    def step(state: PaymentSaga) -> None:
        state.amount_cents += cents

    return step


#: Runs a test with ``shared`` in each correlation mode.
BOTH_MODES = pytest.mark.parametrize(
    "shared", [False, True], ids=["index", "unique"], indirect=True
)


@pytest.fixture
def shared(make_store: MakeStore, request: pytest.FixtureRequest) -> DynamoDBSagaStore[OrderSaga]:
    """Orders (the default model) and payments (registered) in one table; in unique mode
    unless the test is parametrized with ``BOTH_MODES``."""
    unique = bool(getattr(request, "param", True))
    return make_store(OrderSaga, models={"PaymentSaga": PaymentSaga}, unique_correlation=unique)


@pytest.fixture
def async_shared(
    backend: Backend, shared: DynamoDBSagaStore[OrderSaga]
) -> Iterator[AsyncDynamoDBSagaStore[OrderSaga]]:
    """An asyncio store on ``shared``'s table, with the same models and mode."""
    store: AsyncDynamoDBSagaStore[OrderSaga] = AsyncDynamoDBSagaStore(
        OrderSaga,
        **backend.options(
            {
                "table_name": shared.table_name,
                "models": {"PaymentSaga": PaymentSaga},
                "unique_correlation": shared.unique_correlation,
            }
        ),
    )
    yield store
    asyncio.run(store.aclose())


# -- every call is the store's call with the view's saga name -------------------------------


@BOTH_MODES
def test_a_round_trip_through_a_view_is_the_stores_with_its_saga_name(
    shared: DynamoDBSagaStore[OrderSaga],
) -> None:
    payments = shared.view(PaymentSaga)
    orders = shared.view(OrderSaga)
    # The same correlation id in both saga types: the saga name keeps them apart.
    orders.insert("order-1", OrderSaga(total_cents=900))
    new = PaymentSaga(amount_cents=100)
    payments.insert("order-1", new)
    assert (new.saga_name, new.correlation_id, new.version) == ("PaymentSaga", "order-1", 0)
    saga_id = new.saga_id
    assert saga_id is not None

    by_id = payments.get_by_id(saga_id)
    by_correlation = payments.get_by_correlation_id("order-1")
    for got in (by_id, by_correlation):
        assert type(got) is PaymentSaga
        assert got.attribute_values == new.attribute_values
    stored = shared.get_by_id("PaymentSaga", saga_id)
    assert stored is not None
    assert stored.attribute_values == new.attribute_values

    assert by_id is not None
    by_id.amount_cents = 150
    payments.update(by_id, expected_version=0)
    assert by_id.version == 1
    modified = payments.modify(saga_id, add(10))
    assert (type(modified), modified.version, modified.amount_cents) == (PaymentSaga, 2, 160)

    started = payments.modify_by_correlation_id("order-2", add(5), start=PaymentSaga)
    assert (type(started), started.version, started.amount_cents) == (PaymentSaga, 0, 5)
    assert started.saga_name == "PaymentSaga"
    continued = payments.modify_by_correlation_id("order-1", add(1), start=PaymentSaga)
    assert (continued.saga_id, continued.version, continued.amount_cents) == (saga_id, 3, 161)

    page = payments.find_by_name(consistent_read=True)
    assert page.cursor is None
    assert all(type(state) is PaymentSaga for state in page.items)
    assert sorted(state.correlation_id or "" for state in page.items) == ["order-1", "order-2"]
    assert [s.saga_id for s in page.items] == [
        s.saga_id for s in shared.find_by_name("PaymentSaga", consistent_read=True).items
    ]
    listed = list(payments.iter_by_name(page_size=1))
    assert [(type(s), s.saga_id) for s in listed] == [(PaymentSaga, s.saga_id) for s in page.items]
    assert [s.total_cents for s in orders.iter_by_name()] == [900]  # untouched
    assert [len(payments.find_by_name(completed=c).items) for c in (True, False)] == [0, 2]

    payments.delete(saga_id)
    assert payments.get_by_id(saga_id) is None
    assert shared.get_by_id("PaymentSaga", saga_id) is None
    order = orders.get_by_correlation_id("order-1")
    assert order is not None  # the order saga with the same correlation id is still there
    assert type(order) is OrderSaga


@BOTH_MODES
def test_an_asyncio_view_round_trip_is_the_stores_with_its_saga_name(
    async_shared: AsyncDynamoDBSagaStore[OrderSaga], shared: DynamoDBSagaStore[OrderSaga]
) -> None:
    payments = async_shared.view(PaymentSaga)
    assert isinstance(payments, AsyncSagaView)

    async def start() -> PaymentSaga:
        await asyncio.sleep(0)
        return PaymentSaga(amount_cents=7)

    async def add_async(state: PaymentSaga) -> None:
        await asyncio.sleep(0)
        state.amount_cents += 1

    async def scenario() -> None:
        await async_shared.view(OrderSaga).insert("order-1", OrderSaga(total_cents=900))
        new = PaymentSaga(amount_cents=100)
        await payments.insert("order-1", new)
        saga_id = new.saga_id
        assert saga_id is not None
        by_id = await payments.get_by_id(saga_id)
        by_correlation = await payments.get_by_correlation_id("order-1")
        for got in (by_id, by_correlation):
            assert type(got) is PaymentSaga
            assert got.attribute_values == new.attribute_values

        assert by_id is not None
        by_id.amount_cents = 150
        await payments.update(by_id, 0)
        modified = await payments.modify(saga_id, add_async)
        assert (type(modified), modified.version, modified.amount_cents) == (PaymentSaga, 2, 151)
        plain = await payments.modify(saga_id, add(9))
        assert (plain.version, plain.amount_cents) == (3, 160)

        started = await payments.modify_by_correlation_id("order-2", add_async, start=start)
        assert (type(started), started.version, started.amount_cents) == (PaymentSaga, 0, 8)
        again = await payments.modify_by_correlation_id("order-2", add(1), start=PaymentSaga)
        assert (again.saga_id, again.version, again.amount_cents) == (started.saga_id, 1, 9)

        page = await payments.find_by_name(consistent_read=True)
        assert all(type(state) is PaymentSaga for state in page.items)
        assert sorted(s.correlation_id or "" for s in page.items) == ["order-1", "order-2"]
        listed = [s async for s in payments.iter_by_name(page_size=1)]
        assert [s.saga_id for s in listed] == [s.saga_id for s in page.items]

        await payments.delete(saga_id)
        assert await payments.get_by_id(saga_id) is None

    asyncio.run(scenario())
    # What the asyncio view wrote, the sync store reads under the same saga name.
    assert [s.attribute_values["amount_cents"] for s in shared.iter_by_name("PaymentSaga")] == [9]
    assert [s.total_cents for s in shared.iter_by_name("OrderSaga")] == [900]


@BOTH_MODES
def test_a_views_reads_send_the_stores_requests(
    shared: DynamoDBSagaStore[OrderSaga], recorder: RequestRecorder
) -> None:
    payments = shared.view(PaymentSaga)
    payments.insert("order-1", PaymentSaga())
    reads: list[tuple[Callable[[], object], Callable[[], object]]] = [
        (lambda: payments.get_by_id("s-1"), lambda: shared.get_by_id("PaymentSaga", "s-1")),
        (
            lambda: payments.get_by_correlation_id("order-1"),
            lambda: shared.get_by_correlation_id("PaymentSaga", "order-1"),
        ),
        (
            lambda: payments.find_by_name(completed=False, limit=5),
            lambda: shared.find_by_name("PaymentSaga", completed=False, limit=5),
        ),
        (lambda: list(payments.iter_by_name()), lambda: list(shared.iter_by_name("PaymentSaga"))),
        (lambda: payments.delete("s-1"), lambda: shared.delete("PaymentSaga", "s-1")),
    ]
    for through_view, through_store in reads:
        recorder.take()
        through_view()
        sent_by_view = recorder.requests
        recorder.take()
        through_store()
        assert sent_by_view == recorder.requests
        assert sent_by_view  # something was sent, and compared


def test_a_view_under_another_saga_name_uses_it(make_store: MakeStore) -> None:
    store = make_store(OrderSaga, models={"PaymentSaga": PaymentSaga, "Refund": PaymentSaga})
    refunds = store.view(PaymentSaga, saga_name="Refund")
    legacy = store.view(OrderSaga, saga_name="LegacyOrder")  # a name the default model serves
    refunds.insert("order-1", PaymentSaga(amount_cents=3))
    legacy.insert("order-1", OrderSaga(status="imported"))
    assert [s.amount_cents for s in store.iter_by_name("Refund")] == [3]
    assert [s.status for s in store.iter_by_name("LegacyOrder")] == ["imported"]
    assert list(store.iter_by_name("PaymentSaga")) == []
    assert list(store.iter_by_name("OrderSaga")) == []


# -- the saga name a view is bound to --------------------------------------------------------


@pytest.mark.parametrize("make", [offline, offline_async], ids=["sync", "asyncio"])
def test_a_view_takes_the_registered_name_else_the_class_name(make: Callable[..., Any]) -> None:
    store = make(OrderSaga, models={"payments": PaymentSaga})
    assert store.view(PaymentSaga).saga_name == "payments"
    assert store.view(OrderSaga).saga_name == "OrderSaga"
    assert store.view(PaymentSaga, saga_name="payments").saga_name == "payments"
    assert store.view(OrderSaga, saga_name="LegacyOrder").saga_name == "LegacyOrder"
    view = store.view(PaymentSaga)
    assert view.model is PaymentSaga
    assert type(view) is (SagaView if make is offline else AsyncSagaView)
    assert "PaymentSaga" in repr(view)
    assert "'payments'" in repr(view)


@pytest.mark.parametrize("make", [offline, offline_async], ids=["sync", "asyncio"])
def test_a_class_registered_under_several_names_needs_saga_name(make: Callable[..., Any]) -> None:
    store = make(OrderSaga, models={"Refund": PaymentSaga, "PaymentSaga": PaymentSaga})
    with pytest.raises(SagaValidationError) as caught:
        store.view(PaymentSaga)
    assert caught.value.field == "saga_name"
    assert "'PaymentSaga', 'Refund'" in str(caught.value)
    assert store.view(PaymentSaga, saga_name="Refund").saga_name == "Refund"
    assert store.view(PaymentSaga, saga_name="PaymentSaga").saga_name == "PaymentSaga"


@pytest.mark.parametrize("make", [offline, offline_async], ids=["sync", "asyncio"])
@pytest.mark.parametrize(
    ("model", "saga_name", "message"),
    [
        pytest.param(
            CounterSaga,
            None,
            "keeps saga 'CounterSaga' as OrderSaga, not CounterSaga; register it with "
            "models={'CounterSaga': CounterSaga}",
            id="unregistered",
        ),
        pytest.param(
            PaymentSaga, "OrderSaga", "keeps saga 'OrderSaga' as OrderSaga", id="others-name"
        ),
        pytest.param(OrderSaga, "refunds", "keeps saga 'refunds' as PaymentSaga", id="taken"),
        pytest.param(RefundSaga, None, "as OrderSaga, not RefundSaga", id="subclass"),
    ],
)
def test_a_model_the_store_does_not_keep_under_the_name_is_refused(
    make: Callable[..., Any], model: type[SagaModel], saga_name: str | None, message: str
) -> None:
    store = make(OrderSaga, models={"refunds": PaymentSaga})
    with pytest.raises(SagaValidationError) as caught:
        store.view(model, saga_name=saga_name)
    assert caught.value.field == "model"
    assert message in str(caught.value)


@pytest.mark.parametrize("make", [offline, offline_async], ids=["sync", "asyncio"])
def test_a_store_of_plain_saga_models_serves_no_view_until_registered(
    make: Callable[..., Any],
) -> None:
    store = make(SagaModel, table_name="sagas")  # the store's default model
    with pytest.raises(SagaValidationError) as caught:
        store.view(PaymentSaga)
    assert caught.value.field == "model"
    assert "as SagaModel, not PaymentSaga" in str(caught.value)
    registered = make(SagaModel, table_name="sagas", models={"PaymentSaga": PaymentSaga})
    assert registered.view(PaymentSaga).saga_name == "PaymentSaga"


@pytest.mark.parametrize("make", [offline, offline_async], ids=["sync", "asyncio"])
@pytest.mark.parametrize(
    "not_a_model",
    [dict, "PaymentSaga", PaymentSaga(), None, SagaView],
    ids=["class", "name", "instance", "none", "view-class"],
)
def test_a_non_model_is_refused(make: Callable[..., Any], not_a_model: Any) -> None:
    with pytest.raises(SagaValidationError) as caught:
        make().view(not_a_model)
    assert caught.value.field == "model"
    assert "must be a SagaModel subclass" in str(caught.value)


@pytest.mark.parametrize("make", [offline, offline_async], ids=["sync", "asyncio"])
@pytest.mark.parametrize("saga_name", ["", 7, "x" * 2049])
def test_a_bad_saga_name_is_refused(make: Callable[..., Any], saga_name: Any) -> None:
    with pytest.raises(SagaValidationError) as caught:
        make().view(OrderSaga, saga_name=saga_name)
    assert caught.value.field == "saga_name"


# -- saga_id_for ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [offline, offline_async], ids=["sync", "asyncio"])
def test_saga_id_for_is_the_derived_id_in_unique_mode(make: Callable[..., Any]) -> None:
    store = make(OrderSaga, models={"payments": PaymentSaga}, unique_correlation=True)
    payments = store.view(PaymentSaga)
    assert payments.saga_id_for("order-1") == correlation_saga_id("payments", "order-1")
    assert payments.saga_id_for("order-1") == store.saga_id_for("payments", "order-1")
    assert payments.saga_id_for("order-1") != store.view(OrderSaga).saga_id_for("order-1")
    with pytest.raises(SagaValidationError) as caught:
        payments.saga_id_for("")
    assert caught.value.field == "correlation_id"


@pytest.mark.parametrize("make", [offline, offline_async], ids=["sync", "asyncio"])
def test_saga_id_for_outside_unique_mode_is_refused(make: Callable[..., Any]) -> None:
    with pytest.raises(SagaValidationError) as caught:
        make(OrderSaga).view(OrderSaga).saga_id_for("order-1")
    assert caught.value.field == "unique_correlation"
    assert "unique_correlation=True" in str(caught.value)


def test_a_started_saga_has_the_id_saga_id_for_gives(make_store: MakeStore) -> None:
    store = make_store(CounterSaga, unique_correlation=True)
    counters = store.view(CounterSaga)
    started = counters.modify_by_correlation_id("c-1", lambda state: None, start=CounterSaga)
    assert started.saga_id == counters.saga_id_for("c-1")


# -- a view's calls validate as the store's, and bad input writes nothing ---------------------

BAD_CALLS = [
    pytest.param("insert", ("", PaymentSaga()), {}, "correlation_id", id="insert-empty-id"),
    pytest.param("insert", ("c", OrderSaga()), {}, "state", id="insert-other-model"),
    pytest.param("insert", ("c", PaymentSaga(version=3)), {}, "state.version", id="insert-v3"),
    pytest.param(
        "update",
        (PaymentSaga(saga_id="s", correlation_id="c", version=0), -1),
        {},
        "expected_version",
        id="update-negative",
    ),
    pytest.param(
        "update",
        (OrderSaga(saga_id="s", correlation_id="c", version=0), 0),
        {},
        "state",
        id="update-other-model",
    ),
    pytest.param("get_by_id", ("",), {}, "saga_id", id="get-empty-id"),
    pytest.param("get_by_correlation_id", ("x" * 1025,), {}, "correlation_id", id="get-long"),
    pytest.param("delete", ("",), {}, "saga_id", id="delete-empty-id"),
    pytest.param("modify", ("s", add(1)), {"max_attempts": 0}, "max_attempts", id="modify"),
    pytest.param(
        "modify_by_correlation_id",
        ("c", add(1)),
        {"start": OrderSaga},
        "start",
        id="start-other-model",
    ),
    pytest.param(
        "modify_by_correlation_id",
        ("c", lambda state: OrderSaga()),
        {"start": PaymentSaga},
        "fn",
        id="fn-other-model",
    ),
    pytest.param("find_by_name", (), {"limit": 0}, "limit", id="find-limit"),
    pytest.param("iter_by_name", (), {"page_size": 1001}, "limit", id="iter-page-size"),
]


def _sync_call(target: Any, method: str, *args: Any, **kwargs: Any) -> None:
    result = getattr(target, method)(*args, **kwargs)
    if isinstance(result, Iterator):
        list(result)


async def _async_call(target: Any, method: str, *args: Any, **kwargs: Any) -> None:
    result = getattr(target, method)(*args, **kwargs)
    if isinstance(result, AsyncIterator):
        result = [state async for state in result]
    elif inspect.isawaitable(result):
        await result


@pytest.mark.parametrize(("method", "args", "kwargs", "field"), BAD_CALLS)
def test_a_views_bad_call_fails_as_the_stores_and_writes_nothing(
    shared: DynamoDBSagaStore[OrderSaga],
    recorder: RequestRecorder,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    field: str,
) -> None:
    recorder.take()
    with pytest.raises(SagaValidationError) as by_view:
        _sync_call(shared.view(PaymentSaga), method, *args, **kwargs)
    sent = recorder.take()
    with pytest.raises(SagaValidationError) as by_store:
        _sync_call(shared, method, "PaymentSaga", *args, **kwargs)
    assert (by_view.value.field, str(by_view.value)) == (field, str(by_store.value))
    assert sent == recorder.take()
    assert not WRITES & set(sent)
    assert list(shared.iter_by_name("PaymentSaga")) == []


@pytest.mark.parametrize(("method", "args", "kwargs", "field"), BAD_CALLS)
def test_an_asyncio_views_bad_call_fails_as_the_stores_and_writes_nothing(
    async_shared: AsyncDynamoDBSagaStore[OrderSaga],
    recorder: RequestRecorder,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    field: str,
) -> None:
    recorder.attach(async_shared.sync)

    async def both() -> tuple[SagaValidationError, SagaValidationError, list[str]]:
        recorder.take()
        with pytest.raises(SagaValidationError) as by_view:
            await _async_call(async_shared.view(PaymentSaga), method, *args, **kwargs)
        sent = recorder.take()
        with pytest.raises(SagaValidationError) as by_store:
            await _async_call(async_shared, method, "PaymentSaga", *args, **kwargs)
        assert sent == recorder.take()
        return by_view.value, by_store.value, sent

    by_view, by_store, sent = asyncio.run(both())
    assert (by_view.field, str(by_view)) == (field, str(by_store))
    assert not WRITES & set(sent)
    assert list(async_shared.sync.iter_by_name("PaymentSaga")) == []


def test_a_missing_saga_is_not_found_through_a_view(
    shared: DynamoDBSagaStore[OrderSaga], recorder: RequestRecorder
) -> None:
    payments = shared.view(PaymentSaga)
    with pytest.raises(SagaNotFoundError) as caught:
        payments.modify_by_correlation_id("nobody", add(1))
    assert (caught.value.saga_name, caught.value.correlation_id) == ("PaymentSaga", "nobody")
    with pytest.raises(SagaNotFoundError):
        payments.modify("no-such-id", add(1))
    assert not WRITES & set(recorder.take())


# -- what mypy --strict sees ------------------------------------------------------------------

#: Each ``# E: text`` line must fail with an error containing text, each ``# N: text`` line
#: reveal a type containing text; every other line must type-check.
TYPING_PROBE = """
from pynamodb.attributes import NumberAttribute

from saga_store_pynamo import DynamoDBSagaStore, SagaModel
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore


class OrderSaga(SagaModel):
    total_cents = NumberAttribute(default=0)


class PaymentSaga(SagaModel):
    amount_cents = NumberAttribute(default=0)


def to_order(state: OrderSaga) -> None: ...
def to_payment(state: PaymentSaga) -> None: ...
def replace_payment(state: PaymentSaga) -> PaymentSaga:
    return state


def to_any_saga(state: SagaModel) -> None: ...
async def to_payment_async(state: PaymentSaga) -> None: ...
async def start_payment() -> PaymentSaga:
    return PaymentSaga()



store = DynamoDBSagaStore(OrderSaga, models={"PaymentSaga": PaymentSaga})
payments = store.view(PaymentSaga)
reveal_type(payments)  # N: SagaView[probe.PaymentSaga]
reveal_type(payments.get_by_id("s"))  # N: probe.PaymentSaga | None
reveal_type(payments.get_by_correlation_id("o"))  # N: probe.PaymentSaga | None
reveal_type(payments.modify("s", to_payment))  # N: probe.PaymentSaga
started = payments.modify_by_correlation_id("o", to_payment, start=PaymentSaga)
reveal_type(started)  # N: probe.PaymentSaga
reveal_type(payments.find_by_name().items)  # N: list[probe.PaymentSaga]
reveal_type(payments.iter_by_name())  # N: Iterator[probe.PaymentSaga]
reveal_type(payments.saga_id_for("o"))  # N: str
payments.modify_by_correlation_id("o", replace_payment, start=lambda: PaymentSaga(amount_cents=1))
payments.modify_by_correlation_id("o", to_any_saga)
payments.modify("s", lambda state: None)
payments.insert("o", PaymentSaga())
payments.update(PaymentSaga(), 0)
payments.modify_by_correlation_id("o", to_order)  # E: "Callable[[OrderSaga], None]"
payments.modify_by_correlation_id("o", to_payment, start=OrderSaga)  # E: "type[OrderSaga]"
payments.modify_by_correlation_id("o", to_payment_async)  # E: "Callable[[PaymentSaga], Coroutine
payments.insert("o", OrderSaga())  # E: "OrderSaga"; expected "PaymentSaga"
payments.get_by_id("s").amount_cents  # E: Item "None" of "PaymentSaga | None"
store.view(OrderSaga).modify("s", to_order).amount_cents  # E: "OrderSaga" has no attribute


async def asyncio_handlers(async_store: AsyncDynamoDBSagaStore[OrderSaga]) -> None:
    apayments = async_store.view(PaymentSaga)
    reveal_type(apayments)  # N: AsyncSagaView[probe.PaymentSaga]
    reveal_type(await apayments.get_by_id("s"))  # N: probe.PaymentSaga | None
    started = await apayments.modify_by_correlation_id("o", to_payment_async, start=start_payment)
    reveal_type(started)  # N: probe.PaymentSaga
    reveal_type(await apayments.modify("s", to_payment, max_attempts=3))  # N: probe.PaymentSaga
    reveal_type(apayments.saga_id_for("o"))  # N: str
    await apayments.modify_by_correlation_id("o", replace_payment, start=PaymentSaga)
    async for state in apayments.iter_by_name():
        reveal_type(state)  # N: probe.PaymentSaga
    await apayments.modify_by_correlation_id("o", to_order)  # E: "Callable[[OrderSaga], None]"
    await apayments.insert("o", OrderSaga())  # E: "OrderSaga"; expected "PaymentSaga"
"""


def test_mypy_checks_a_views_calls_against_its_model(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    root = Path(__file__).resolve().parent.parent
    probe = tmp_path / "probe.py"
    probe.write_text(TYPING_PROBE)
    monkeypatch.setenv("MYPYPATH", str(root))  # the package, even where it is not installed
    out, err, _ = mypy_api.run(
        [
            "--config-file",
            str(root / "pyproject.toml"),
            # A cache of its own: a shared one may hold an earlier run's "probe" module
            # under another temporary path, and answer for it.
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            str(probe),
        ]
    )
    assert "probe.py" in out or not err, err
    found: dict[int, list[str]] = {}
    for line in out.splitlines():
        match = re.match(rf"{re.escape(str(probe))}:(\d+): (?:error|note): (.*)", line)
        if match:  # what mypy says about the package itself is not this test's concern
            found.setdefault(int(match[1]), []).append(match[2])
    for number, line in enumerate(TYPING_PROBE.splitlines(), start=1):
        said = found.pop(number, [])
        marker = re.search(r"# ([EN]): (.*)$", line)
        if marker is None:
            assert said == [], f"line {number}: {line.strip()}"
            continue
        kind = "Revealed type is" if marker[1] == "N" else ""
        assert any(kind in text and marker[2] in text for text in said), (number, line, said)
    assert found == {}
