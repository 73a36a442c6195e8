"""The testing kit, from a user's point of view: test files of their own, run by pytester.

Each test writes a user's test module into a temporary folder and runs pytest on it in this
process, with the plugin loaded as users get it.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import uuid
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import botocore.session
import pytest

import saga_store_pynamo.testing as kit
import saga_store_pynamo.testing._backends as kit_backends
from saga_store_pynamo import DynamoDBSagaStore, create_table
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore
from saga_store_pynamo.testing import (
    DYNAMODB_LOCAL_ENDPOINT_ENV,
    TEST_CREDENTIALS,
    TEST_REGION,
    BackendName,
    RawTable,
    RequestRecorder,
    SagaStoreContract,
    SagaStoreFactory,
    serve_dynamodb_local,
)
from tests.models import OrderSaga

pytest_plugins = ["pytester"]

PLUGIN = "saga_store_pynamo.testing"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing-kit.md"
CONTRACT_TESTS = sorted(name for name in dir(SagaStoreContract) if name.startswith("test_"))


def plugin_args() -> list[str]:
    """``-p`` for the plugin, unless an entry point under another name loads it already
    (pytest would then refuse to register the same module twice)."""
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return ["-p", PLUGIN]
    names = {ep.name for ep in entry_points(group="pytest11") if ep.value.startswith(PLUGIN)}
    return [] if names - {PLUGIN} else ["-p", PLUGIN]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        *plugin_args(), "-p", "no:cacheprovider", "--strict-markers", "-rA", *args
    )


def failed_tests(result: pytest.RunResult) -> set[str]:
    """The names of the failed tests, without class or parameters."""
    failed = set()
    for line in result.outlines:
        match = re.match(r"FAILED \S+::(\w+)\[", line)
        if match:
            failed.add(match.group(1))
    return failed


def ddblocal_client(endpoint: str) -> Any:
    return botocore.session.get_session().create_client(
        "dynamodb", region_name=TEST_REGION, endpoint_url=endpoint, **TEST_CREDENTIALS
    )


USER_MODEL = """
from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from saga_store_pynamo import SagaModel


class InvoiceSaga(SagaModel):
    class Meta:
        table_name = "invoices"

    invoice_id = UnicodeAttribute()  # required: the default make_state() cannot make one
    amount_cents = NumberAttribute(default=0)
"""

USER_CONTRACT = (
    USER_MODEL
    + """
from saga_store_pynamo.testing import SagaStoreContract


class TestInvoiceSagaStore(SagaStoreContract):
    model = InvoiceSaga
    saga_name = "Invoice"

    def make_state(self):
        return InvoiceSaga(invoice_id="inv-1", amount_cents=100)

    def change_state(self, state):
        state.amount_cents += 1
"""
)


# -- the contract on a user's model -----------------------------------------------------------


def test_a_users_contract_passes_on_moto(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_invoices=USER_CONTRACT)
    # --strict-markers: the plugin registers ddblocal, so deselecting by it is no error.
    result = run(pytester, "-m", "not ddblocal")
    result.assert_outcomes(passed=len(CONTRACT_TESTS), deselected=len(CONTRACT_TESTS))
    for name in CONTRACT_TESTS:
        result.stdout.fnmatch_lines([f"PASSED *::TestInvoiceSagaStore::{name}[[]moto[]]"])


def test_a_contract_without_a_model_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_nomodel="""
        from saga_store_pynamo.testing import SagaStoreContract

        class TestForgotTheModel(SagaStoreContract):
            pass
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*TestForgotTheModel must set `model` to a SagaModel subclass*"])


BROKEN_STORES = {
    # Last writer wins: the stored version is read and used instead of the expected one.
    "update ignores the expected version": (
        """
        def update(self, saga_name, state, expected_version):
            current = self.get_by_id(saga_name, state.saga_id)
            version = expected_version if current is None else current.version
            state.version = version
            super().update(saga_name, state, version)
        """,
        {
            "test_stale_update_reports_the_actual_version_in_one_request",
            "test_lost_race_between_two_writers",
            "test_concurrent_optimistic_updates_lose_nothing",
            "test_update_orm_style_loaded_changed_saved",
        },
    ),
    # Insert replaces whatever is stored under the id.
    "insert overwrites": (
        """
        def insert(self, saga_name, correlation_id, state):
            if state.saga_id:
                self.delete(saga_name, state.saga_id)
            super().insert(saga_name, correlation_id, state)
        """,
        {
            "test_duplicate_insert_is_refused_and_leaves_the_stored_saga",
            "test_one_request_per_call_within_the_seed_iam_actions",
        },
    ),
    # Update of a missing saga starts it afresh.
    "update re-creates a missing saga": (
        """
        def update(self, saga_name, state, expected_version):
            try:
                super().update(saga_name, state, expected_version)
            except SagaNotFoundError:
                state.version = None
                self.insert(saga_name, state.correlation_id, state)
        """,
        {
            "test_update_of_a_missing_saga_never_creates_it",
            "test_update_after_delete_does_not_recreate",
        },
    ),
}


@pytest.mark.parametrize("broken", sorted(BROKEN_STORES))
def test_the_contract_catches_a_broken_store(pytester: pytest.Pytester, broken: str) -> None:
    body, expected = BROKEN_STORES[broken]
    pytester.makepyfile(
        test_broken=USER_MODEL
        + "\nfrom saga_store_pynamo import DynamoDBSagaStore, SagaNotFoundError\n"
        + "from saga_store_pynamo.testing import SagaStoreContract\n\n\n"
        + "class BrokenStore(DynamoDBSagaStore):"
        + textwrap.indent(textwrap.dedent(body), "    ")
        + """

class TestBrokenInvoiceSagaStore(SagaStoreContract):
    model = InvoiceSaga
    backends = ("moto",)
    store_class = BrokenStore

    def make_state(self):
        return InvoiceSaga(invoice_id="inv-1")
"""
    )
    # The tests that must catch it, and one that must not mind.
    control = "test_insert_keeps_a_given_id_and_round_trips"
    result = run(pytester, "-k", " or ".join([*sorted(expected), control]))
    assert failed_tests(result) == expected, result.stdout.str()
    result.assert_outcomes(passed=1, failed=len(expected))


# -- saga_store_factory -----------------------------------------------------------------------

FACTORY_TESTS = (
    USER_MODEL
    + """
import os
import sys

import pytest

from saga_store_pynamo.testing import backend_params


@pytest.mark.parametrize("backend", backend_params())
def test_a_fresh_table_per_store(saga_store_factory, backend):
    store = saga_store_factory(InvoiceSaga, backend=backend)
    other = saga_store_factory(InvoiceSaga)  # the same backend
    assert store.table_name != other.table_name
    assert saga_store_factory.backend == backend
    assert (store.region, other.endpoint) == ("us-east-1", store.endpoint)
    assert (store.endpoint is None) == (backend == "moto")
    client = store.connection.client
    assert client.describe_table(TableName=store.table_name)["Table"]["TableStatus"] == "ACTIVE"
    store.insert("Invoice", "c-1", InvoiceSaga(invoice_id="i-1"))
    with open("tables.txt", "a") as out:
        out.write(f"{backend} {store.table_name} {other.table_name}\\n")


@pytest.mark.parametrize("backend", backend_params())
def test_stores_can_share_a_table(saga_store_factory, backend):
    first = saga_store_factory(InvoiceSaga, backend=backend, ttl_days=3)
    second = saga_store_factory(InvoiceSaga, table_name=first.table_name)
    assert (second.table_name, second.ttl_days) == (first.table_name, None)
    state = InvoiceSaga(invoice_id="i-1")
    second.insert("Invoice", "c-1", state)
    assert first.get_by_id("Invoice", state.saga_id) == state


@pytest.mark.ddblocal
def test_a_table_the_factory_did_not_make_is_kept(saga_store_factory):
    store = saga_store_factory(
        InvoiceSaga, backend="dynamodb-local", table_name=os.environ["KEPT_TABLE"]
    )
    store.insert("Invoice", "c-1", InvoiceSaga(invoice_id="i-1"))


def test_moto_starts_empty_in_every_test(saga_store_factory):
    store = saga_store_factory(InvoiceSaga)
    assert store.connection.client.list_tables()["TableNames"] == [store.table_name]


def test_one_test_one_backend(saga_store_factory):
    saga_store_factory(InvoiceSaga, backend="moto")
    with pytest.raises(ValueError, match="already uses the moto backend"):
        saga_store_factory(InvoiceSaga, backend="dynamodb-local")


def test_missing_moto_names_the_extra(saga_store_factory, monkeypatch):
    monkeypatch.setitem(sys.modules, "moto", None)
    with pytest.raises(pytest.fail.Exception, match=r"its \\[demo\\] extra"):
        saga_store_factory(InvoiceSaga)
"""
)


def test_saga_store_factory_on_moto(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_factory=FACTORY_TESTS)
    result = run(pytester, "-m", "not ddblocal")
    result.assert_outcomes(passed=5, deselected=3)
    made = (pytester.path / "tables.txt").read_text().split()
    assert made[0] == "moto"
    assert made[1] != made[2]


@pytest.mark.ddblocal
def test_saga_store_factory_removes_its_tables_from_dynamodb_local(
    pytester: pytest.Pytester, dynamodb_local_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = ddblocal_client(dynamodb_local_endpoint)
    kept = f"user-table-{uuid.uuid4().hex[:8]}"
    create_table(
        DynamoDBSagaStore(
            table_name=kept,
            endpoint=dynamodb_local_endpoint,
            region=TEST_REGION,
            credentials=TEST_CREDENTIALS,
        )
    )
    try:
        monkeypatch.setenv(DYNAMODB_LOCAL_ENDPOINT_ENV, dynamodb_local_endpoint)
        monkeypatch.setenv("KEPT_TABLE", kept)
        pytester.makepyfile(test_factory=FACTORY_TESTS)
        result = run(pytester, "-m", "ddblocal")
        result.assert_outcomes(passed=3, deselected=5)

        backend, *made = (pytester.path / "tables.txt").read_text().split()
        assert backend == "dynamodb-local"
        tables = client.list_tables(Limit=100)["TableNames"]
        assert kept in tables  # not the factory's to remove
        assert not set(made) & set(tables)
        assert not [t for t in tables if t.startswith("saga-test-")]
    finally:
        client.delete_table(TableName=kept)


# -- asyncio stores from the factory ----------------------------------------------------------


@pytest.mark.parametrize("backend", kit.backend_params())
def test_an_async_store_on_each_backend(
    saga_store_factory: SagaStoreFactory, backend: BackendName
) -> None:
    """insert, modify and get through the asyncio store, in the test's own event loop; its
    requests are recorded, and a sync store on its table sees what it wrote."""
    store = saga_store_factory.async_store(OrderSaga, backend=backend, max_workers=2)
    assert isinstance(store, AsyncDynamoDBSagaStore)
    assert saga_store_factory.backend == backend
    assert (store.sync.endpoint is None) == (backend == "moto")
    recorder = RequestRecorder()
    recorder.attach(store)  # through store.sync, whose send point the asyncio store uses
    table = RawTable(store, recorder)

    def pay(state: OrderSaga) -> None:
        state.total_cents += 4200
        state.status = "paid"

    async def scenario() -> tuple[OrderSaga, OrderSaga, OrderSaga | None]:
        state = OrderSaga(order_id="order-7")
        await store.insert("OrderSaga", "order-7", state)
        saved = await store.modify("OrderSaga", state.saga_id, pay)
        return state, saved, await store.get_by_id("OrderSaga", state.saga_id)

    state, saved, loaded = asyncio.run(scenario())

    assert recorder.take() == ["PutItem", "GetItem", "UpdateItem", "GetItem"]
    assert loaded == saved
    assert loaded is not None
    assert (loaded.status, loaded.total_cents, loaded.version) == ("paid", 4200, 1)
    item = table.item("OrderSaga", state.saga_id)  # not recorded: the recorder is paused
    assert item is not None
    assert item["version"] == {"N": "1"}
    assert recorder.take() == []
    sync = saga_store_factory(OrderSaga, table_name=store.table_name)
    assert sync.get_by_id("OrderSaga", state.saga_id) == loaded


@pytest.mark.parametrize("backend", kit.backend_params())
def test_the_factory_closes_its_async_stores_and_drops_their_tables(
    request: pytest.FixtureRequest, backend: BackendName
) -> None:
    factory = SagaStoreFactory(request)
    try:
        store = factory.async_store(OrderSaga, backend=backend)
        shared = factory.async_store(OrderSaga, table_name=store.table_name)
        asyncio.run(store.insert("OrderSaga", "order-1", OrderSaga(order_id="order-1")))
        # The table exists while the test runs.
        assert asyncio.run(shared.get_by_correlation_id("OrderSaga", "order-1")) is not None
    finally:
        factory.close()
    assert store.closed
    assert shared.closed
    if backend == "dynamodb-local":
        assert factory.endpoint is not None
        tables = ddblocal_client(factory.endpoint).list_tables(Limit=100)["TableNames"]
        assert store.table_name not in tables


def test_the_factory_closes_async_stores_from_inside_an_event_loop(
    request: pytest.FixtureRequest,
) -> None:
    """close() called on a running loop closes the asyncio stores on a loop of their own."""
    factory = SagaStoreFactory(request)
    store = factory.async_store(OrderSaga, backend="moto")

    async def scenario() -> None:
        await store.insert("OrderSaga", "order-1", OrderSaga(order_id="order-1"))
        factory.close()

    try:
        asyncio.run(scenario())
    finally:
        factory.close()  # idempotent; leaves moto if the scenario failed early
    assert store.closed


# -- DynamoDB Local availability --------------------------------------------------------------


def test_a_missing_dynamodb_local_skips_or_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DYNAMODB_LOCAL_ENDPOINT_ENV, raising=False)
    monkeypatch.setattr(kit_backends, "unavailable_reason", lambda: "Java 17+ is required (test)")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match=r"Java 17\+ is required \(test\)"):
        serve_dynamodb_local().__enter__()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but DynamoDB Local cannot run"):
        serve_dynamodb_local().__enter__()


def test_an_endpoint_from_the_environment_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DYNAMODB_LOCAL_ENDPOINT_ENV, "http://dynamodb-local:8000")
    monkeypatch.setattr(kit_backends, "DynamoDBLocal", None)  # nothing may be started
    with serve_dynamodb_local() as endpoint:
        assert endpoint == "http://dynamodb-local:8000"


def test_the_plugin_imports_no_moto_and_no_asyncio_store() -> None:
    """moto and boto3 load only when a test uses moto; the asyncio store (and aiohttp) only
    when a test makes one: pytest loads the plugin in every run."""
    lazy = ("moto", "boto3", "aiohttp", "saga_store_pynamo.aio")
    code = (
        "import sys, saga_store_pynamo.testing; "
        f"print([name for name in {lazy!r} if name in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.stdout.strip() == "[]"


# -- assert rewriting ---------------------------------------------------------------------------

REWRITTEN = """
import sys

from saga_store_pynamo.testing import SagaStoreContract


def test_the_contract_module_is_rewritten():
    loader = sys.modules[SagaStoreContract.__module__].__loader__
    assert type(loader).__name__ == "AssertionRewritingHook"
"""


@pytest.mark.parametrize("loaded_by", ["-p", "conftest"])
def test_the_contracts_asserts_show_their_operands(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, loaded_by: str
) -> None:
    """pytest rewrites the contract's asserts whether the plugin is loaded with -p or a
    conftest.py registers the package for rewriting (in a fresh process each)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_rewritten=REWRITTEN)
    args = ["-p", PLUGIN] if loaded_by == "-p" else []
    if loaded_by == "conftest":
        pytester.makeconftest(f"import pytest\n\npytest.register_assert_rewrite({PLUGIN!r})\n")
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


# -- the documented example -------------------------------------------------------------------


def documented_example() -> str:
    """The complete test file of docs/testing-kit.md (the block after its marker)."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"<!-- example: test_orders\.py -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"no example block in {DOCS}"
    return match.group(1)


@pytest.mark.parametrize("backend", kit.backend_params())
def test_the_documented_example_passes(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    """The example runs as documented: the contract on both backends, and the user's
    handler tests (two on both backends, one of them through the asyncio store, and one on
    moto only)."""
    pytester.makepyfile(test_orders=documented_example())
    contract = len(CONTRACT_TESTS)
    if backend == "moto":
        result = run(pytester, "-m", "not ddblocal")
        result.assert_outcomes(passed=contract + 3, deselected=contract + 2)
    else:
        # The inner run uses this session's server instead of starting its own.
        endpoint = request.getfixturevalue("dynamodb_local_endpoint")
        monkeypatch.setenv(DYNAMODB_LOCAL_ENDPOINT_ENV, endpoint)
        result = run(pytester, "-m", "ddblocal")
        result.assert_outcomes(passed=contract + 2, deselected=contract + 3)
    result.stdout.fnmatch_lines(
        [f"PASSED *::TestOrderSagaStore::test_stale_update_*[[]{backend}[]]"]
    )
