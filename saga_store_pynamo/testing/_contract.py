"""``SagaStoreContract``: the store's behavioural contract, a test class users subclass.

pytest rewrites this module's asserts (they show their operands when a check fails): the
plugin's package is marked for rewriting before it is imported, by pytest itself for a plugin
loaded through its entry point or ``-p``, and by ``pytest.register_assert_rewrite`` in a
``conftest.py`` otherwise.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, ClassVar, Final, Generic, TypeVar, cast

import pytest

from .. import (
    ConcurrencyError,
    DynamoDBSagaStore,
    SagaAlreadyExistsError,
    SagaModel,
    SagaNotFoundError,
    SagaStateMetadata,
    SagaValidationError,
    correlation_saga_id,
)
from ._backends import BACKENDS, BackendName, backend_params
from ._contract_cases import (
    _BAD_CALLS,
    _attr_name,
    _epoch,
    _lookup_ops,
    _not_found_ops,
    _unique,
)
from ._factory import SagaStoreFactory
from ._recorder import RequestRecorder
from ._table import RawTable

__all__ = ["SEED_IAM_ACTIONS", "SagaStoreContract"]

M = TypeVar("M", bound=SagaModel)

#: The five IAM actions of the seed's policy: all the data-plane calls may use.
SEED_IAM_ACTIONS: Final = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"})


class SagaStoreContract(Generic[M]):
    """The store's behavioural contract, run on your own model: subclass it in a test module.

    Set ``model`` (and, when your model has required fields, override ``make_state``)::

        class TestOrderSagaStore(SagaStoreContract[OrderSaga]):
            model = OrderSaga

            def make_state(self) -> OrderSaga:
                return OrderSaga(order_id="o-1", total_cents=100)

    Each test runs once per backend in ``backends`` (a DynamoDB Local run is marked
    ``ddblocal``), each on a fresh table, and checks only what every ``SagaModel`` has. Tests
    you add to the subclass can use the fixtures ``saga_store``, ``saga_store_recorder``,
    ``saga_table``, ``saga_store_factory`` and ``saga_store_backend``.
    """

    #: Your ``SagaModel`` subclass. Required.
    model: type[M]
    #: The saga name the tests store under; default: the model's class name.
    saga_name: ClassVar[str | None] = None
    #: The backends to run on; e.g. ``("moto",)`` where Java is not available.
    backends: ClassVar[Sequence[BackendName]] = BACKENDS
    #: Options of the store under test (``ttl_days``, ``unique_correlation``, ...).
    store_options: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    #: The store class under test: ``DynamoDBSagaStore`` or your subclass of it.
    store_class: ClassVar[type[DynamoDBSagaStore[Any]]] = DynamoDBSagaStore

    # -- what a subclass overrides ---------------------------------------------------------

    def make_state(self) -> M:
        """A fresh, valid, unsaved state of ``model``, with no ``saga_id``; default ``model()``."""
        return self.model()

    def change_state(self, state: M) -> None:
        """Change ``state`` as a message handler would (default: a new ``trace_state``)."""
        state.trace_state = f"contract={uuid.uuid4().hex[:8]}"

    # -- helpers ---------------------------------------------------------------------------

    @property
    def contract_saga_name(self) -> str:
        """The saga name the tests use: ``saga_name``, or the model's class name."""
        return self.saga_name or self.model.__name__

    def fresh(self, **fields: Any) -> M:
        """``make_state()`` with ``fields`` set on it."""
        state = self.make_state()
        if not isinstance(state, self.model):
            pytest.fail(
                f"make_state() must return a {self.model.__name__}, got {type(state).__name__}",
                pytrace=False,
            )
        if state.saga_id is not None or state.version not in (None, 0):
            pytest.fail(
                "make_state() must return an unsaved state: no saga_id, no version (got "
                f"saga_id={state.saga_id!r}, version={state.version!r})",
                pytrace=False,
            )
        for name, value in fields.items():
            setattr(state, name, value)
        return state

    def loaded_like(self, saga_name: str, **fields: Any) -> M:
        """A fresh state that looks loaded at version 0 (it is not stored)."""
        defaults: dict[str, Any] = {
            "saga_id": _unique("loaded"),
            "saga_name": saga_name,
            "correlation_id": _unique("corr"),
            "version": 0,
        }
        state = self.fresh()
        for name, value in {**defaults, **fields}.items():
            setattr(state, name, value)
        return state

    def insert(
        self,
        store: DynamoDBSagaStore[Any],
        state: M | None = None,
        correlation_id: str | None = None,
    ) -> M:
        """Insert ``state`` (default: a fresh one) under a new correlation id; return it."""
        state = self.fresh() if state is None else state
        store.insert(self.contract_saga_name, correlation_id or _unique("corr"), state)
        return state

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Run every test that uses ``saga_store_backend`` once per backend in ``backends``."""
        if "saga_store_backend" not in metafunc.fixturenames:
            return
        cls = type(self)
        model = getattr(cls, "model", None)
        if not (isinstance(model, type) and issubclass(model, SagaModel)):
            raise TypeError(
                f"{cls.__qualname__} must set `model` to a SagaModel subclass, got {model!r}"
            )
        metafunc.parametrize("saga_store_backend", backend_params(cls.backends), indirect=True)

    # -- fixtures --------------------------------------------------------------------------

    @pytest.fixture
    def saga_store_backend(self, request: pytest.FixtureRequest) -> BackendName:
        """The backend this run of the test uses."""
        return cast(BackendName, getattr(request, "param", self.backends[0]))

    @pytest.fixture
    def saga_store_factory(self, request: pytest.FixtureRequest) -> Iterator[SagaStoreFactory]:
        """The plugin's ``saga_store_factory``, so the contract runs without the plugin too."""
        factory = SagaStoreFactory(request)
        yield factory
        factory.close()

    @pytest.fixture
    def saga_store(
        self, saga_store_factory: SagaStoreFactory, saga_store_backend: BackendName
    ) -> DynamoDBSagaStore[Any]:
        """The store under test (``store_class`` with ``store_options``) on a fresh table."""
        return saga_store_factory(
            self.model,
            backend=saga_store_backend,
            store_class=self.store_class,
            **self.store_options,
        )

    @pytest.fixture
    def saga_store_recorder(self, saga_store: DynamoDBSagaStore[Any]) -> RequestRecorder:
        """Records the requests ``saga_store`` sends."""
        recorder = RequestRecorder()
        recorder.attach(saga_store)
        return recorder

    @pytest.fixture
    def saga_table(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> RawTable:
        """``saga_store``'s table as stored (not recorded)."""
        return RawTable(saga_store, saga_store_recorder)

    def _peer(
        self, factory: SagaStoreFactory, store: DynamoDBSagaStore[Any], **options: Any
    ) -> DynamoDBSagaStore[Any]:
        """Another store of the class under test on ``store``'s table."""
        merged = {**self.store_options, **options}
        return factory(
            self.model, table_name=store.table_name, store_class=self.store_class, **merged
        )

    # -- insert ----------------------------------------------------------------------------

    def test_insert_assigns_id_version_and_timestamps(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> None:
        """insert: one PutItem; sets name, correlation id, a new id, version 0, created/updated."""
        name = self.contract_saga_name
        state = self.fresh(created_at=None, updated_at=None)
        before = datetime.now(timezone.utc)
        saga_store.insert(name, "corr-insert", state)
        after = datetime.now(timezone.utc)

        assert saga_store_recorder.take() == ["PutItem"]
        assert state.saga_name == name
        assert state.correlation_id == "corr-insert"
        assert isinstance(state.saga_id, str)
        if saga_store.unique_correlation:
            assert state.saga_id == correlation_saga_id(name, "corr-insert")
        else:
            assert uuid.UUID(state.saga_id).version == 4
        assert state.version == 0
        assert before <= state.created_at == state.updated_at <= after

    def test_insert_keeps_a_given_id_and_round_trips(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> None:
        """A given id is kept; get_by_id (one GetItem) returns a state equal to the inserted one."""
        name = self.contract_saga_name
        correlation_id = _unique("corr")
        given = saga_store.saga_id_for(name, correlation_id) or _unique("given")
        state = self.insert(saga_store, self.fresh(saga_id=given), correlation_id)
        saga_store_recorder.take()

        loaded = saga_store.get_by_id(name, given)

        assert saga_store_recorder.take() == ["GetItem"]
        assert isinstance(loaded, self.model)
        assert loaded == state
        assert loaded.version == 0

    def test_duplicate_insert_is_refused_and_leaves_the_stored_saga(
        self,
        saga_store: DynamoDBSagaStore[Any],
        saga_store_recorder: RequestRecorder,
        saga_table: RawTable,
    ) -> None:
        """A second insert of the same id: SagaAlreadyExistsError, one PutItem, item untouched."""
        name = self.contract_saga_name
        first = self.insert(saga_store)
        stored = saga_table.item(name, first.saga_id)
        duplicate = self.fresh(saga_id=first.saga_id)
        self.change_state(duplicate)
        saga_store_recorder.take()

        with pytest.raises(SagaAlreadyExistsError) as caught:
            saga_store.insert(name, first.correlation_id, duplicate)

        assert saga_store_recorder.take() == ["PutItem"]
        assert caught.value.saga_id == first.saga_id
        assert isinstance(caught.value.__cause__, Exception)  # the AWS error is chained
        assert saga_table.item(name, first.saga_id) == stored
        assert saga_store.get_by_id(name, first.saga_id) == first

    # -- get -------------------------------------------------------------------------------

    def test_get_by_id_is_strongly_consistent(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> None:
        """get_by_id is one GetItem with ConsistentRead."""
        state = self.insert(saga_store)
        saga_store_recorder.take()
        saga_store.get_by_id(self.contract_saga_name, state.saga_id)
        ((operation, params),) = saga_store_recorder.requests
        assert operation == "GetItem"
        assert params["ConsistentRead"] is True

    def test_get_missing_saga_returns_none(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> None:
        """get_by_id and get_by_correlation_id of a missing saga return None."""
        name = self.contract_saga_name
        assert saga_store.get_by_id(name, _unique("missing")) is None
        assert saga_store_recorder.take() == ["GetItem"]
        assert saga_store.get_by_correlation_id(name, _unique("missing")) is None
        assert saga_store_recorder.take() == _lookup_ops(saga_store, found=False)

    def test_get_by_correlation_id_finds_the_saga(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> None:
        """get_by_correlation_id finds the saga of that correlation id, not another's."""
        name = self.contract_saga_name
        state = self.insert(saga_store, correlation_id="corr-wanted")
        self.insert(saga_store, correlation_id="corr-other")
        saga_store_recorder.take()

        found = saga_store.get_by_correlation_id(name, "corr-wanted")

        assert found == state
        assert saga_store_recorder.take() == _lookup_ops(saga_store, found=True)

    def test_correlation_lookup_reads_the_index_or_the_key(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> None:
        """The lookup queries correlationIndex (a GSI: no ConsistentRead), or with
        unique_correlation reads the derived key consistently."""
        self.insert(saga_store, correlation_id="corr-index")
        saga_store_recorder.take()
        saga_store.get_by_correlation_id(self.contract_saga_name, "corr-index")
        ((operation, params),) = saga_store_recorder.requests
        if saga_store.unique_correlation:
            assert operation == "GetItem"
            assert params["ConsistentRead"] is True
        else:
            assert operation == "Query"
            assert params["IndexName"] == "correlationIndex"
            assert "ConsistentRead" not in params

    # -- update ----------------------------------------------------------------------------

    def test_update_orm_style_loaded_changed_saved(
        self,
        saga_store: DynamoDBSagaStore[Any],
        saga_store_recorder: RequestRecorder,
        saga_table: RawTable,
    ) -> None:
        """Loaded, changed, saved with its own version: one UpdateItem, version 1, read back
        equal."""
        name = self.contract_saga_name
        inserted = self.insert(saga_store)
        loaded = saga_store.get_by_id(name, inserted.saga_id)
        assert loaded is not None
        self.change_state(loaded)
        saga_store_recorder.take()

        saga_store.update(name, loaded, 0)

        assert saga_store_recorder.take() == ["UpdateItem"]
        assert loaded.version == 1
        again = saga_store.get_by_id(name, inserted.saga_id)
        assert again == loaded
        assert again is not None
        assert again.created_at == inserted.created_at
        assert again.updated_at >= again.created_at
        item = saga_table.item(name, inserted.saga_id)
        assert item is not None
        assert item[_attr_name(self.model, "version")] == {"N": "1"}

    def test_update_saga_bus_style_version_already_incremented(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> None:
        """A state whose version the caller already raised to expected + 1 is saved as is."""
        name = self.contract_saga_name
        state = self.insert(saga_store)
        state.version = 1  # saga-bus increments before it saves
        self.change_state(state)
        saga_store_recorder.take()

        saga_store.update(name, state, 0)

        assert saga_store_recorder.take() == ["UpdateItem"]
        assert state.version == 1
        assert saga_store.get_by_id(name, state.saga_id) == state

    def test_update_refuses_a_state_version_out_of_step(
        self,
        saga_store: DynamoDBSagaStore[Any],
        saga_store_recorder: RequestRecorder,
        saga_table: RawTable,
    ) -> None:
        """A state version other than expected or expected + 1 is refused; nothing is sent."""
        name = self.contract_saga_name
        state = self.insert(saga_store)
        stored = saga_table.item(name, state.saga_id)
        self.change_state(state)
        saga_store_recorder.take()
        for version in (None, 2, 5):
            if version is None:
                state.attribute_values.pop("version", None)
            else:
                state.version = version
            with pytest.raises(SagaValidationError, match=r"state\.version"):
                saga_store.update(name, state, 0)
        assert saga_store_recorder.take() == []
        assert saga_table.item(name, state.saga_id) == stored

    def test_stale_update_reports_the_actual_version_in_one_request(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> None:
        """A stale update: ConcurrencyError with the stored version, from one UpdateItem."""
        name = self.contract_saga_name
        state = self.insert(saga_store)
        for _ in range(3):
            self.change_state(state)
            saga_store.update(name, state, state.version)
        stale = saga_store.get_by_id(name, state.saga_id)
        assert stale is not None
        stale.version = 1
        self.change_state(stale)
        saga_store_recorder.take()

        with pytest.raises(ConcurrencyError) as caught:
            saga_store.update(name, stale, 1)

        # DynamoDB returns the stored item with the failed condition: no extra read.
        assert saga_store_recorder.take() == ["UpdateItem"]
        error = caught.value
        assert (error.saga_id, error.expected_version, error.actual_version) == (
            state.saga_id,
            1,
            3,
        )
        assert stale.version == 1  # unchanged on failure

    def test_lost_race_between_two_writers(self, saga_store: DynamoDBSagaStore[Any]) -> None:
        """Two writers of the same version: the first wins, the second gets ConcurrencyError."""
        name = self.contract_saga_name
        state = self.insert(saga_store)
        alice = saga_store.get_by_id(name, state.saga_id)
        bob = saga_store.get_by_id(name, state.saga_id)
        assert alice is not None
        assert bob is not None
        self.change_state(alice)
        self.change_state(bob)

        saga_store.update(name, alice, 0)
        with pytest.raises(ConcurrencyError) as caught:
            saga_store.update(name, bob, 0)

        assert (caught.value.expected_version, caught.value.actual_version) == (0, 1)
        assert saga_store.get_by_id(name, state.saga_id) == alice

    def test_update_of_a_missing_saga_never_creates_it(
        self,
        saga_store: DynamoDBSagaStore[Any],
        saga_store_recorder: RequestRecorder,
        saga_table: RawTable,
    ) -> None:
        """Update of a saga never inserted: SagaNotFoundError (a LookupError); nothing created."""
        name = self.contract_saga_name
        ghost = self.loaded_like(name)
        with pytest.raises(SagaNotFoundError) as caught:
            saga_store.update(name, ghost, 0)
        assert isinstance(caught.value, LookupError)
        assert saga_store_recorder.take() == _not_found_ops(saga_store)
        assert saga_table.items() == []

    def test_update_after_delete_does_not_recreate(
        self, saga_store: DynamoDBSagaStore[Any], saga_table: RawTable
    ) -> None:
        """Update of a deleted saga: SagaNotFoundError; the saga stays deleted."""
        name = self.contract_saga_name
        state = self.insert(saga_store)
        saga_store.delete(name, state.saga_id)
        self.change_state(state)
        with pytest.raises(SagaNotFoundError):
            saga_store.update(name, state, 0)
        assert saga_table.item(name, state.saga_id) is None
        assert saga_table.items() == []

    def test_stale_state_never_overwrites_a_saga_inserted_again_under_its_id(
        self, saga_store: DynamoDBSagaStore[Any], saga_table: RawTable
    ) -> None:
        """Id reuse: a state loaded before a delete gets SagaNotFoundError, not the new saga.

        Versions restart at 0 when an id is reused, so only the incarnation token tells the
        two sagas apart.
        """
        name = self.contract_saga_name
        first = self.insert(saga_store)
        stale = saga_store.get_by_id(name, first.saga_id)
        assert stale is not None
        saga_store.delete(name, first.saga_id)
        successor = self.fresh()
        successor.saga_id = first.saga_id
        self.insert(saga_store, successor, first.correlation_id)
        before = saga_table.item(name, first.saga_id)

        self.change_state(stale)
        with pytest.raises(SagaNotFoundError):
            saga_store.update(name, stale, 0)
        assert saga_table.item(name, first.saga_id) == before

    def test_attribute_the_model_does_not_declare_survives_an_update(
        self, saga_store: DynamoDBSagaStore[Any], saga_table: RawTable
    ) -> None:
        """An attribute written by someone else (a newer model) is kept by update."""
        name = self.contract_saga_name
        state = self.insert(saga_store)
        saga_table.set_attribute(name, state.saga_id, "contractUndeclared", {"S": "keep me"})
        loaded = saga_store.get_by_id(name, state.saga_id)
        assert loaded is not None
        self.change_state(loaded)

        saga_store.update(name, loaded, 0)

        item = saga_table.item(name, state.saga_id)
        assert item is not None
        assert item["contractUndeclared"] == {"S": "keep me"}
        assert item[_attr_name(self.model, "version")] == {"N": "1"}
        assert saga_store.get_by_id(name, state.saga_id) == loaded

    def test_declared_attribute_set_to_none_is_removed(
        self, saga_store: DynamoDBSagaStore[Any], saga_table: RawTable
    ) -> None:
        """A declared attribute set to None (trace_state, trace_parent) is removed from the item."""
        name = self.contract_saga_name
        state = self.insert(
            saga_store, self.fresh(trace_state="vendor=1", trace_parent="00-abc-def-01")
        )
        item = saga_table.item(name, state.saga_id)
        assert item is not None
        assert _attr_name(self.model, "trace_state") in item
        state.trace_state = None
        state.trace_parent = None

        saga_store.update(name, state, 0)

        item = saga_table.item(name, state.saga_id)
        assert item is not None
        assert _attr_name(self.model, "trace_state") not in item
        assert _attr_name(self.model, "trace_parent") not in item
        loaded = saga_store.get_by_id(name, state.saga_id)
        assert loaded is not None
        assert (loaded.trace_state, loaded.trace_parent) == (None, None)

    # -- delete ----------------------------------------------------------------------------

    def test_delete_is_idempotent(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> None:
        """delete is one DeleteItem; deleting again is not an error."""
        name = self.contract_saga_name
        state = self.insert(saga_store)
        saga_store_recorder.take()
        saga_store.delete(name, state.saga_id)
        saga_store.delete(name, state.saga_id)
        assert saga_store_recorder.take() == ["DeleteItem", "DeleteItem"]
        assert saga_store.get_by_id(name, state.saga_id) is None

    # -- TTL and metadata ------------------------------------------------------------------

    def test_ttl_only_on_completion(
        self,
        saga_store: DynamoDBSagaStore[Any],
        saga_store_factory: SagaStoreFactory,
        saga_table: RawTable,
    ) -> None:
        """With ttl_days, a completed saga gets ttl = updated_at + ttl_days, others none."""
        name = self.contract_saga_name
        days = self.store_options.get("ttl_days") or 30
        store = self._peer(saga_store_factory, saga_store, ttl_days=days)
        ttl = _attr_name(self.model, "ttl")
        state = self.insert(store)
        assert ttl not in (saga_table.item(name, state.saga_id) or {})

        self.change_state(state)
        store.update(name, state, 0)
        assert ttl not in (saga_table.item(name, state.saga_id) or {})

        state.is_completed = True
        store.update(name, state, 1)
        item = saga_table.item(name, state.saga_id)
        assert item is not None
        assert item[ttl] == {"N": str(_epoch(state.updated_at + timedelta(days=days)))}
        loaded = store.get_by_id(name, state.saga_id)
        assert loaded is not None
        assert loaded.metadata.is_completed is True

        state.is_completed = False  # re-opened: the expiry goes away again
        store.update(name, state, 2)
        assert ttl not in (saga_table.item(name, state.saga_id) or {})

    def test_without_ttl_days_the_state_ttl_is_kept(
        self,
        saga_store: DynamoDBSagaStore[Any],
        saga_store_factory: SagaStoreFactory,
        saga_table: RawTable,
    ) -> None:
        """Without ttl_days the store writes the state's own ttl, if any, as it is."""
        name = self.contract_saga_name
        options = {k: v for k, v in self.store_options.items() if k != "ttl_days"}
        store = saga_store_factory(
            self.model, table_name=saga_store.table_name, store_class=self.store_class, **options
        )
        expiry = datetime(2030, 1, 1, tzinfo=timezone.utc)
        state = self.insert(store, self.fresh(ttl=expiry))
        item = saga_table.item(name, state.saga_id)
        assert item is not None
        assert item[_attr_name(self.model, "ttl")] == {"N": str(_epoch(expiry))}

    def test_metadata_round_trips(self, saga_store: DynamoDBSagaStore[Any]) -> None:
        """The saga-bus metadata is stored and read back, as a frozen SagaStateMetadata."""
        name = self.contract_saga_name
        state = self.insert(
            saga_store,
            self.fresh(
                trace_parent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                trace_state="vendor=value",
                timeout_ms=5000,
                timeout_expires_at=datetime(2030, 1, 1, tzinfo=timezone.utc),
            ),
        )
        loaded = saga_store.get_by_id(name, state.saga_id)
        assert loaded is not None
        meta = loaded.metadata
        assert isinstance(meta, SagaStateMetadata)
        assert meta == state.metadata
        assert (meta.saga_id, meta.version, meta.timeout_ms) == (state.saga_id, 0, 5000)
        with pytest.raises(dataclasses.FrozenInstanceError):
            meta.version = 5  # type: ignore[misc]

    # -- requests --------------------------------------------------------------------------

    def test_one_request_per_call_within_the_seed_iam_actions(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_recorder: RequestRecorder
    ) -> None:
        """Every call is one request (two only where an option asks), all within the seed's
        five IAM actions."""
        name = self.contract_saga_name
        state = self.insert(saga_store)
        saga_store.get_by_id(name, state.saga_id)
        saga_store.get_by_correlation_id(name, state.correlation_id)
        self.change_state(state)
        saga_store.update(name, state, 0)
        with pytest.raises(ConcurrencyError):
            saga_store.update(name, state, 0)
        with pytest.raises(SagaAlreadyExistsError):
            saga_store.insert(name, state.correlation_id, self.fresh(saga_id=state.saga_id))
        saga_store.delete(name, state.saga_id)
        with pytest.raises(SagaNotFoundError):
            saga_store.update(name, state, 1)

        sent = saga_store_recorder.take()
        assert set(sent) <= SEED_IAM_ACTIONS
        assert sent == [
            "PutItem",
            "GetItem",
            *_lookup_ops(saga_store, found=True),
            "UpdateItem",
            "UpdateItem",
            "PutItem",
            "DeleteItem",
            *_not_found_ops(saga_store),
        ]

    def test_bad_input_sends_nothing(
        self,
        saga_store: DynamoDBSagaStore[Any],
        saga_store_recorder: RequestRecorder,
        saga_table: RawTable,
    ) -> None:
        """Empty or over-long names and ids, bad versions: SagaValidationError naming the
        field, and no request."""
        name = self.contract_saga_name
        problems = []
        for case in _BAD_CALLS:
            try:
                case.call(self, saga_store, name)
            except SagaValidationError as exc:
                if exc.field != case.field:
                    problems.append(f"{case.label}: error names {exc.field!r}, not {case.field!r}")
            else:
                problems.append(f"{case.label}: no SagaValidationError")
            sent = saga_store_recorder.take()
            if sent:
                problems.append(f"{case.label}: sent {sent}")
        assert problems == []
        assert saga_table.items() == []

    # -- concurrency -----------------------------------------------------------------------

    def test_concurrent_optimistic_updates_lose_nothing(
        self, saga_store: DynamoDBSagaStore[Any], saga_store_factory: SagaStoreFactory
    ) -> None:
        """4 threads x 10 load-change-save increments, retried on ConcurrencyError: version 40,
        and none lost (the count kept in trace_state is 40 too)."""
        threads, increments = 4, 10
        name = self.contract_saga_name
        pool_size = {} if "connection" in self.store_options else {"max_pool_connections": threads}
        store = self._peer(saga_store_factory, saga_store, **pool_size)
        state = self.insert(store, self.fresh(trace_state="0"))
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(increments):
                    while True:
                        current = store.get_by_id(name, state.saga_id)
                        assert current is not None
                        count = int(current.trace_state or "0")
                        self.change_state(current)
                        current.trace_state = str(count + 1)
                        try:
                            store.update(name, current, current.version)
                            break
                        except ConcurrencyError:
                            continue
            except BaseException as exc:  # surfaced below: a thread must not fail silently
                errors.append(exc)

        pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=300)
        assert not any(thread.is_alive() for thread in pool), "workers still running after 300 s"
        assert errors == []
        final = store.get_by_id(name, state.saga_id)
        assert final is not None
        assert (final.version, final.trace_state) == (
            threads * increments,
            str(threads * increments),
        )
