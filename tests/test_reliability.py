"""Reliability under faults: retries, ambiguous writes, and a fault-injection soak.

Faults come from a loopback proxy in front of DynamoDB Local (tests/ddb_proxy.py):
throttling, 500s, connections reset before the request is forwarded, and requests that are
forwarded (so DynamoDB applies them) whose response is then dropped.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute

from saga_store_pynamo import (
    ConcurrencyError,
    DynamoDBSagaStore,
    RetryPolicy,
    SagaAlreadyExistsError,
    SagaModel,
    SagaStoreUnavailableError,
    SagaValidationError,
    create_table,
)
from saga_store_pynamo.retry import is_retryable, may_have_landed
from tests.conftest import CREDENTIALS, REGION
from tests.ddb_proxy import DROP_RESPONSE, RESET, DynamoDBProxy, FaultInjector, error

NAME = "CounterSaga"


class CounterSaga(SagaModel):
    """A saga whose every increment records its own operation id, to catch double steps."""

    class Meta:
        table_name = "sagas"
        region = REGION

    count = NumberAttribute(default=0)
    ops = ListAttribute(of=UnicodeAttribute, default=list)


FAST = RetryPolicy(max_attempts=6, base_delay=0.001, max_delay=0.01)


@pytest.fixture
def faulty(dynamodb_local_endpoint: str) -> Iterator[tuple[FaultInjector, DynamoDBProxy]]:
    """DynamoDB Local behind a fault-injecting proxy (no faults until a test sets some)."""
    injector = FaultInjector()
    with DynamoDBProxy(dynamodb_local_endpoint, injector) as proxy:
        yield injector, proxy


def faulty_store(proxy: DynamoDBProxy, **options: Any) -> DynamoDBSagaStore[CounterSaga]:
    options.setdefault("retry", FAST)
    store = DynamoDBSagaStore(
        CounterSaga,
        table_name=f"faults-{uuid.uuid4().hex[:10]}",
        endpoint=proxy.endpoint,
        region=REGION,
        credentials=CREDENTIALS,
        **options,
    )
    create_table(store)
    return store


# -- the policy itself -------------------------------------------------------------------------


def test_backoff_is_bounded_full_jitter() -> None:
    policy = RetryPolicy(max_attempts=8, base_delay=0.1, max_delay=0.5)
    random.seed(7)
    for attempt in range(1, 8):
        cap = min(0.5, 0.1 * 2 ** (attempt - 1))
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # it does use the whole range


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"max_attempts": 0}, "retry.max_attempts"),
        ({"max_attempts": 2.5}, "retry.max_attempts"),
        ({"base_delay": -1}, "retry.base_delay"),
        ({"max_delay": "1"}, "retry.max_delay"),
    ],
)
def test_bad_policies_are_refused(options: dict[str, Any], field: str) -> None:
    with pytest.raises(SagaValidationError) as caught:
        RetryPolicy(**options)
    assert caught.value.field == field


def test_store_refuses_a_non_policy() -> None:
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(CounterSaga, retry=3)  # type: ignore[arg-type]
    assert caught.value.field == "retry"


def test_what_is_retried_and_what_may_have_landed() -> None:
    from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

    def client_error(code: str, status: int) -> ClientError:
        response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response, "PutItem")

    throttled = client_error("ThrottlingException", 400)
    server = client_error("InternalServerError", 500)
    invalid = client_error("ValidationException", 400)
    closed = ConnectionClosedError(endpoint_url="http://x")
    refused = EndpointConnectionError(endpoint_url="http://x")
    assert [is_retryable(e) for e in (throttled, server, invalid, closed, refused)] == [
        True, True, False, True, True,
    ]  # fmt: skip
    assert [may_have_landed(e) for e in (throttled, server, closed, refused)] == [
        False, True, True, False,
    ]  # fmt: skip


# -- scripted faults, one at a time ---------------------------------------------------------------


@pytest.mark.ddblocal
def test_throttled_read_is_retried(faulty: tuple[FaultInjector, DynamoDBProxy]) -> None:
    injector, proxy = faulty
    retries: list[tuple[str, int]] = []
    store = faulty_store(
        proxy, retry=RetryPolicy(base_delay=0, on_retry=lambda op, n, e: retries.append((op, n)))
    )
    state = CounterSaga()
    store.insert(NAME, "c", state)
    injector.queue(
        "GetItem", error("ThrottlingException"), error("ProvisionedThroughputExceededException")
    )
    assert store.get_by_id(NAME, state.saga_id) == state
    assert retries == [("GetItem", 1), ("GetItem", 2)]


@pytest.mark.ddblocal
def test_insert_whose_response_was_lost_is_not_reported_as_a_duplicate(
    faulty: tuple[FaultInjector, DynamoDBProxy],
) -> None:
    injector, proxy = faulty
    store = faulty_store(proxy)
    injector.queue("PutItem", DROP_RESPONSE)

    state = CounterSaga()
    store.insert(
        NAME, "c", state
    )  # attempt 1 applied but unanswered; attempt 2 fails its condition

    assert injector.requests["PutItem"] == 2
    assert state.version == 0
    stored = store.get_by_id(NAME, state.saga_id)
    assert stored == state
    # A genuine duplicate is still refused.
    with pytest.raises(SagaAlreadyExistsError):
        store.insert(NAME, "c", CounterSaga(saga_id=state.saga_id))


@pytest.mark.ddblocal
def test_update_whose_response_was_lost_is_not_reported_as_a_conflict(
    faulty: tuple[FaultInjector, DynamoDBProxy],
) -> None:
    injector, proxy = faulty
    store = faulty_store(proxy)
    state = CounterSaga()
    store.insert(NAME, "c", state)
    injector.queue("UpdateItem", DROP_RESPONSE)

    state.count = 1
    store.update(NAME, state, 0)

    assert injector.requests["UpdateItem"] == 2
    assert state.version == 1
    assert store.get_by_id(NAME, state.saga_id).version == 1
    # A genuine conflict is still a conflict.
    with pytest.raises(ConcurrencyError) as caught:
        store.update(NAME, CounterSaga(saga_id=state.saga_id, correlation_id="c", version=0), 0)
    assert caught.value.actual_version == 1


@pytest.mark.ddblocal
def test_reset_before_forwarding_is_retried(faulty: tuple[FaultInjector, DynamoDBProxy]) -> None:
    injector, proxy = faulty
    store = faulty_store(proxy)
    injector.queue("PutItem", RESET, RESET)
    state = CounterSaga()
    store.insert(NAME, "c", state)
    assert injector.requests["PutItem"] == 3
    assert store.get_by_id(NAME, state.saga_id) == state


@pytest.mark.ddblocal
def test_giving_up_says_whether_the_write_may_have_landed(
    faulty: tuple[FaultInjector, DynamoDBProxy],
) -> None:
    injector, proxy = faulty
    store = faulty_store(proxy, retry=RetryPolicy(max_attempts=3, base_delay=0))
    state = CounterSaga()
    store.insert(NAME, "c", state)

    injector.queue("UpdateItem", *[error("InternalServerError", status=500)] * 3)
    with pytest.raises(SagaStoreUnavailableError) as caught:
        store.update(NAME, state, 0)
    assert (caught.value.attempts, caught.value.may_have_landed) == (3, True)
    assert caught.value.code == "InternalServerError"
    assert caught.value.__cause__ is not None

    injector.queue("UpdateItem", *[error("ThrottlingException")] * 3)
    with pytest.raises(SagaStoreUnavailableError) as caught:
        store.update(NAME, state, 0)
    assert caught.value.may_have_landed is False
    assert store.get_by_id(NAME, state.saga_id).version == 0


@pytest.mark.ddblocal
def test_errors_that_are_not_transient_are_not_retried(
    faulty: tuple[FaultInjector, DynamoDBProxy],
) -> None:
    injector, proxy = faulty
    store = faulty_store(proxy)
    injector.queue(
        "GetItem", error("ValidationException", message="One or more parameter values were invalid")
    )
    with pytest.raises(SagaValidationError):
        store.get_by_id(NAME, "x")
    assert injector.requests["GetItem"] == 1


# -- the soak --------------------------------------------------------------------------------------

SOAK_THREADS = int(os.environ.get("SOAK_THREADS", "4"))
SOAK_SAGAS = int(os.environ.get("SOAK_SAGAS", "20"))
SOAK_INCREMENTS = int(os.environ.get("SOAK_INCREMENTS", "25"))
SOAK_FAULT_RATE = float(os.environ.get("SOAK_FAULT_RATE", "0.2"))


@pytest.mark.ddblocal
def test_soak_under_faults_loses_and_doubles_nothing(
    faulty: tuple[FaultInjector, DynamoDBProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    injector, proxy = faulty
    retried: Counter[str] = Counter()
    lock = threading.Lock()

    def count_retry(operation: str, attempt: int, failure: BaseException) -> None:
        with lock:
            retried[operation] += 1

    store = faulty_store(
        proxy,
        retry=RetryPolicy(max_attempts=12, base_delay=0.001, max_delay=0.02, on_retry=count_retry),
        max_pool_connections=SOAK_THREADS,
    )
    recognised: list[int] = []
    original = store._own_write_landed

    def spy(*args: Any, **kwargs: Any) -> bool:
        landed = original(*args, **kwargs)
        if landed:
            with lock:
                recognised.append(1)
        return landed

    monkeypatch.setattr(store, "_own_write_landed", spy)
    injector.rate = SOAK_FAULT_RATE

    saga_ids = []
    for i in range(SOAK_SAGAS):
        state = CounterSaga()
        store.insert(NAME, f"order-{i}", state)  # faults apply here too
        saga_ids.append(state.saga_id)

    conflicts: Counter[str] = Counter()
    unavailable: list[SagaStoreUnavailableError] = []
    unexpected: list[BaseException] = []

    def increment(saga_id: str, op: str) -> None:
        while True:
            try:
                state = store.get_by_id(NAME, saga_id)
                assert state is not None
                if op in state.ops:
                    return  # an earlier attempt landed (only after SagaStoreUnavailableError)
                state.count += 1
                state.ops = [*state.ops, op]
                store.update(NAME, state, state.version)
                return
            except ConcurrencyError:
                with lock:
                    conflicts["genuine"] += 1
            except SagaStoreUnavailableError as exc:  # documented: retry the step idempotently
                with lock:
                    unavailable.append(exc)

    def worker(worker_id: int) -> None:
        rng = random.Random(worker_id)
        try:
            for round_ in range(SOAK_INCREMENTS):
                order = list(saga_ids)
                rng.shuffle(order)
                for saga_id in order:
                    increment(saga_id, f"w{worker_id}-r{round_}-{saga_id[:8]}")
        except BaseException as exc:
            with lock:
                unexpected.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(SOAK_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    injector.rate = 0.0

    assert unexpected == []
    expected = SOAK_THREADS * SOAK_INCREMENTS
    lost = doubled = 0
    for saga_id in saga_ids:
        state = store.get_by_id(NAME, saga_id)
        assert state is not None
        doubled += len(state.ops) - len(set(state.ops))
        lost += expected - len(set(state.ops))
        assert state.count == len(state.ops)
    sagas = store.find_by_name(NAME, limit=1000).items
    report = {
        "threads": SOAK_THREADS,
        "sagas": SOAK_SAGAS,
        "increments_per_saga_per_thread": SOAK_INCREMENTS,
        "fault_rate": SOAK_FAULT_RATE,
        "seconds": round(elapsed, 1),
        "requests_seen_by_proxy": sum(injector.requests.values()),
        "faults_injected": dict(injector.injected),
        "retries_by_operation": dict(retried),
        "own_writes_recognised_by_token": len(recognised),
        "genuine_conflicts_retried": conflicts["genuine"],
        "unavailable_after_all_retries": len(unavailable),
        "lost_updates": lost,
        "double_applications": doubled,
        "sagas_in_table": len(sagas),
    }
    print("\nSOAK REPORT " + json.dumps(report, indent=2))
    assert lost == 0
    assert doubled == 0  # a spurious conflict for a landed write would show up here
    assert len(sagas) == SOAK_SAGAS  # no insert duplicated
    assert sum(injector.injected.values()) > 0
    assert injector.injected["forward-then-drop-response"] > 0
    store.connection.delete_table(store.table_name)
