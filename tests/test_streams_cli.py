"""``saga-store tail`` and ``saga-store schema --format iam --streams``, run as subprocesses
against a moto server and DynamoDB Local."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saga_store_pynamo import DynamoDBSagaStore, create_table
from tests.conftest import CREDENTIALS, REGION, cli_environment, run_cli
from tests.models import OrderSaga, PaymentSaga

ROOT = Path(__file__).resolve().parent.parent
NAME = "OrderSaga"
#: How long a test waits for one line of tail's output before it fails.
LINE_TIMEOUT = 60.0


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "saga_store_pynamo", *args]


@pytest.fixture
def endpoint(cli_endpoint: str) -> str:
    """A DynamoDB endpoint the CLI subprocess can reach (moto server, DynamoDB Local)."""
    return cli_endpoint


@pytest.fixture
def store(endpoint: str) -> Iterator[DynamoDBSagaStore[Any]]:
    """A store on a fresh table with a NEW_AND_OLD_IMAGES stream."""
    store: DynamoDBSagaStore[Any] = DynamoDBSagaStore(
        OrderSaga,
        models={"PaymentSaga": PaymentSaga},
        table_name=f"tail-{uuid.uuid4().hex[:10]}",
        endpoint=endpoint,
        region=REGION,
        credentials=CREDENTIALS,
    )
    create_table(store, stream_view_type="NEW_AND_OLD_IMAGES")
    yield store
    with contextlib.suppress(Exception):
        store.connection.delete_table(store.table_name)


class Tail:
    """A running ``saga-store tail``, its stdout lines read on a thread."""

    def __init__(
        self, store: DynamoDBSagaStore[Any], *options: str, background: bool = False
    ) -> None:
        args = command(
            "tail",
            NAME,
            "--table",
            store.table_name,
            "--endpoint",
            str(store.endpoint),
            "--region",
            REGION,
            "--model",
            "tests.models:OrderSaga",
            *options,
        )
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=cli_environment(),
            # As a shell starts a background job (`saga-store tail ... &`): SIGINT ignored.
            preexec_fn=_ignore_sigint if background else None,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.errors: queue.Queue[str | None] = queue.Queue()
        for stream, sink in ((self.process.stdout, self.lines), (self.process.stderr, self.errors)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()
        self.stderr: list[str] = []

    @staticmethod
    def _pump(stream: Any, sink: queue.Queue[str | None]) -> None:
        for line in stream:
            sink.put(line.rstrip("\n"))
        sink.put(None)

    def line(self) -> str:
        line = self.lines.get(timeout=LINE_TIMEOUT)
        assert line is not None, f"tail ended early: {self.stop_output()}"
        return line

    def wait_until_following(self) -> None:
        """Wait for the line tail prints on stderr once it is positioned in the stream."""
        while True:
            line = self.errors.get(timeout=LINE_TIMEOUT)
            assert line is not None, f"tail ended early: {self.stderr}"
            self.stderr.append(line)
            if "Ctrl-C stops" in line:
                return

    def interrupt(self, signum: int = signal.SIGINT) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=LINE_TIMEOUT)

    def stop_output(self) -> list[str]:
        while True:
            try:
                line = self.errors.get(timeout=LINE_TIMEOUT)
            except queue.Empty:
                return self.stderr
            if line is None:
                return self.stderr
            self.stderr.append(line)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_tail_started_in_the_background_stops_on_sigint_and_sigterm(
    store: DynamoDBSagaStore[Any], signum: int
) -> None:
    tail = Tail(store, "--from", "latest", background=True)
    try:
        tail.wait_until_following()
        status = tail.interrupt(signum)
    finally:
        tail.kill()
    assert status == 0
    stderr = tail.stop_output()
    assert not any("Traceback" in line for line in stderr), stderr
    assert stderr[-1] == "saga-store: tail stopped"


def live(store: DynamoDBSagaStore[Any]) -> OrderSaga:
    state = OrderSaga(total_cents=100)
    store.insert(NAME, "order-1", state)
    state.status = "paid"
    store.update(NAME, state, 0)
    state.is_completed = True
    store.update(NAME, state, 1)
    store.delete(NAME, str(state.saga_id))
    return state


def test_tail_prints_each_change_as_json_and_stops_on_ctrl_c(
    store: DynamoDBSagaStore[Any],
) -> None:
    state = live(store)
    store.insert("PaymentSaga", "order-1", PaymentSaga())  # another saga name: not shown
    tail = Tail(store, "--from", "trim-horizon", "--json")
    try:
        tail.wait_until_following()
        changes = [json.loads(tail.line()) for _ in range(4)]
        status = tail.interrupt()
    finally:
        tail.kill()
    assert [(c["kind"], c["saga_id"], c["version"]) for c in changes] == [
        ("started", state.saga_id, 0),
        ("updated", state.saga_id, 1),
        ("completed", state.saga_id, 2),
        ("deleted", state.saga_id, 2),
    ]
    assert changes[1]["changes"] == {"status": {"old": "pending", "new": "paid"}}
    assert changes[2]["changes"] == {"is_completed": {"old": False, "new": True}}
    assert "updated_at" not in json.dumps(changes)
    assert "sagaWrite" not in json.dumps(changes)
    assert status == 0
    stderr = tail.stop_output()
    assert not any("Traceback" in line for line in stderr), stderr
    assert stderr[-1] == "saga-store: tail stopped"
    assert tail.lines.get(timeout=LINE_TIMEOUT) is None  # nothing more on stdout


def test_tail_from_latest_prints_lines_of_later_changes(store: DynamoDBSagaStore[Any]) -> None:
    store.insert(NAME, "before", OrderSaga())
    tail = Tail(store)
    try:
        tail.wait_until_following()
        state = OrderSaga(total_cents=5)
        store.insert(NAME, "after", state)
        state.status = "paid"
        store.update(NAME, state, 0)
        started, updated = tail.line(), tail.line()
        status = tail.interrupt()
    finally:
        tail.kill()
    assert started.split()[1:4] == ["started", state.saga_id, "v0"]
    assert 'correlation_id="after"' in started
    assert "total_cents=5" in started
    assert updated.split()[1:] == ["updated", state.saga_id, "v1", 'status="pending"->"paid"']
    assert status == 0


def test_tail_on_a_table_without_a_stream_fails_in_one_line(endpoint: str) -> None:
    store: DynamoDBSagaStore[Any] = DynamoDBSagaStore(
        OrderSaga,
        table_name=f"tail-none-{uuid.uuid4().hex[:8]}",
        endpoint=endpoint,
        region=REGION,
        credentials=CREDENTIALS,
    )
    create_table(store)
    try:
        result = run_cli(
            "tail",
            NAME,
            "--table",
            store.table_name,
            "--endpoint",
            endpoint,
            "--region",
            REGION,
        )
    finally:
        store.connection.delete_table(store.table_name)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("saga-store: error: ")
    assert f"table {store.table_name!r} has no stream" in result.stderr


def test_schema_iam_streams_adds_the_stream_statement() -> None:
    result = run_cli(
        "schema",
        "--format",
        "iam",
        "--streams",
        "--table",
        "orders",
        "--region",
        "eu-west-1",
    )
    assert result.returncode == 0, result.stderr
    policy = json.loads(result.stdout)
    table = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"
    assert policy["Statement"][-1] == {
        "Effect": "Allow",
        "Action": [
            "dynamodb:DescribeTable",
            "dynamodb:DescribeStream",
            "dynamodb:GetShardIterator",
            "dynamodb:GetRecords",
        ],
        "Resource": [table, f"{table}/stream/*"],
    }


def test_schema_streams_without_iam_is_a_usage_error() -> None:
    result = run_cli("schema", "--format", "cloudformation", "--streams", "--table", "orders")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "--streams goes with --format iam" in result.stderr
    assert "Traceback" not in result.stderr
