"""The ``saga-store`` CLI, run as a subprocess against a moto server and DynamoDB Local."""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from pynamodb.attributes import (
    BinaryAttribute,
    BinarySetAttribute,
    JSONAttribute,
    MapAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)

from saga_store_pynamo import DynamoDBSagaStore, SagaModel, _cli_local, cli
from tests.conftest import CREDENTIALS, IN_CI, REGION, run_cli
from tests.models import OrderSaga, PaymentSaga

ROOT = Path(__file__).resolve().parent.parent
NAME = "OrderSaga"


@pytest.fixture
def endpoint(cli_endpoint: str) -> str:
    """A DynamoDB endpoint the CLI subprocess can reach (moto server, DynamoDB Local)."""
    return cli_endpoint


@pytest.fixture
def table(endpoint: str) -> Iterator[tuple[str, list[str]]]:
    """A fresh table name, and the common options pointing at it."""
    name = f"cli-{uuid.uuid4().hex[:10]}"
    options = ["--table", name, "--endpoint", endpoint, "--region", REGION]
    yield name, options
    store = DynamoDBSagaStore(
        OrderSaga, table_name=name, endpoint=endpoint, region=REGION, credentials=CREDENTIALS
    )
    with contextlib.suppress(Exception):
        store.connection.delete_table(name)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("saga-store: error: ")
    return lines[0]


def test_operator_workflow(endpoint: str, table: tuple[str, list[str]]) -> None:
    name, options = table
    model = ["--model", "tests.models:OrderSaga"]
    created = run_cli("create-table", *options, *model)
    assert created.returncode == 0, created.stderr
    assert f"table {name!r} created" in created.stdout
    again = run_cli("create-table", *options, *model)
    assert "already exists and matches the model" in again.stdout

    store = DynamoDBSagaStore(
        OrderSaga, table_name=name, endpoint=endpoint, region=REGION, credentials=CREDENTIALS
    )
    for i in range(3):
        state = OrderSaga(saga_id=f"saga-{i}", total_cents=i)
        store.insert(NAME, f"order-{i}", state)
        if i == 1:
            state.is_completed = True
            store.update(NAME, state, 0)

    listed = run_cli("list", NAME, *options, *model)
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.strip().splitlines()
    assert rows[0].split("\t")[0] == "saga_id"
    assert [r.split("\t")[0] for r in rows[1:]] == ["saga-0", "saga-1", "saga-2"]
    done = run_cli("list", NAME, "--completed", *options, *model)
    assert [r.split("\t")[0] for r in done.stdout.strip().splitlines()[1:]] == ["saga-1"]
    active = run_cli("list", NAME, "--active", *options, *model)
    assert [r.split("\t")[0] for r in active.stdout.strip().splitlines()[1:]] == [
        "saga-0",
        "saga-2",
    ]

    assert rows[2].split("\t")[3] == "True"
    for row in rows[1:]:
        updated = row.split("\t")[4]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", updated), updated

    first = run_cli("list", NAME, "--limit", "2", *options, *model)
    more = first.stdout.strip().splitlines()[-1]
    assert more.startswith("# more: --cursor ")
    rest = run_cli("list", NAME, "--cursor", more.split()[-1], *options, *model)
    assert [r.split("\t")[0] for r in rest.stdout.strip().splitlines()[1:]] == ["saga-2"]

    shown = run_cli("show", NAME, "saga-1", *options, *model)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert (document["sagaId"], document["isCompleted"], document["version"]) == ("saga-1", True, 1)

    missing = run_cli("show", NAME, "nope", *options, *model)
    assert "not found" in one_line_error(missing)

    tomorrow = "2999-01-01"
    purge = ["purge", NAME, "--before", tomorrow, *options, *model]
    dry = run_cli(*purge, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    dry_rows = dry.stdout.strip().splitlines()
    assert dry_rows[0].split("\t") == ["saga_id", "correlation_id", "version", "updated_at"]
    saga_id, correlation_id, version, updated_at = dry_rows[1].split("\t")
    assert (saga_id, correlation_id, version) == ("saga-1", "order-1", "1")
    assert updated_at.endswith("Z")
    assert dry_rows[2].startswith("would delete 1 completed OrderSaga sagas")
    assert len(dry_rows) == 3
    assert store.get_by_id(NAME, "saga-1") is not None  # a dry run deletes nothing

    refused = run_cli(*purge)  # no terminal, no --yes
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "--yes" in refused.stderr
    assert refused.stdout == ""
    assert store.get_by_id(NAME, "saga-1") is not None

    purged = run_cli(*purge, "--yes")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.startswith("deleted 1 ")
    assert store.get_by_id(NAME, "saga-1") is None
    assert store.get_by_id(NAME, "saga-0") is not None


def test_list_json_fields_and_all(endpoint: str, table: tuple[str, list[str]]) -> None:
    name, options = table
    model = ["--model", "tests.models:OrderSaga"]
    assert run_cli("create-table", *options, *model).returncode == 0
    store = DynamoDBSagaStore(
        OrderSaga, table_name=name, endpoint=endpoint, region=REGION, credentials=CREDENTIALS
    )
    for i in range(5):
        state = OrderSaga(
            saga_id=f"saga-{i}",
            total_cents=i * 100,
            items=["a", "b"],
            extra={"k": i},
            status="paid" if i % 2 else "pending",
        )
        store.insert(NAME, f"order-{i}", state)

    as_json = run_cli("list", NAME, "--json", "--all", "--limit", "2", *options, *model)
    assert as_json.returncode == 0, as_json.stderr
    documents = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [d["saga_id"] for d in documents] == [f"saga-{i}" for i in range(5)]
    assert set(documents[0]) == set(OrderSaga.get_attributes())  # every field of the model
    first = documents[3]
    assert (first["correlation_id"], first["version"], first["is_completed"]) == (
        "order-3",
        0,
        False,
    )
    assert (first["total_cents"], first["items"], first["extra"]) == (300, ["a", "b"], {"k": 3})
    assert first["note"] is None
    for field in ("created_at", "updated_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first[field])
    shown = json.loads(run_cli("show", NAME, "saga-3", *options, *model).stdout)
    assert first["updated_at"] == shown["updatedAt"]  # one format in list and show

    one_page = run_cli("list", NAME, "--json", "--limit", "2", *options, *model)
    assert len(one_page.stdout.splitlines()) == 2
    assert "--cursor " in one_page.stderr

    every = run_cli("list", NAME, "--all", "--limit", "2", *options, *model)
    lines = every.stdout.strip().splitlines()
    assert [r.split("\t")[0] for r in lines[1:]] == [f"saga-{i}" for i in range(5)]
    assert not any(line.startswith("#") for line in lines)

    wider = run_cli("list", NAME, "--fields", "status,total_cents,items", *options, *model)
    assert wider.returncode == 0, wider.stderr
    header, *rows = wider.stdout.strip().splitlines()
    assert header.split("\t") == [
        "saga_id",
        "correlation_id",
        "version",
        "completed",
        "updated_at",
        "status",
        "total_cents",
        "items",
    ]
    assert rows[1].split("\t")[5:] == ["paid", "100", '["a", "b"]']

    unknown = run_cli("list", NAME, "--fields", "status,colour", *options, *model)
    assert unknown.returncode == 2, (unknown.stdout, unknown.stderr)
    assert "Traceback" not in unknown.stderr
    assert "'colour'" in unknown.stderr
    assert "total_cents" in unknown.stderr  # the model's fields are named
    assert unknown.stdout == ""


def test_environment_variables_configure_the_connection(
    endpoint: str, table: tuple[str, list[str]]
) -> None:
    name, _ = table
    env = {
        "SAGA_STORE_TABLE": name,
        "SAGA_STORE_ENDPOINT": endpoint,
        "SAGA_STORE_REGION": REGION,
        "SAGA_STORE_MODEL": "tests.models:OrderSaga",
    }
    result = run_cli("create-table", env=env)
    assert result.returncode == 0, result.stderr
    assert f"table {name!r} created" in result.stdout


def test_missing_table_names_table_region_endpoint_and_the_fix(endpoint: str) -> None:
    options = ["--table", "no-such-table", "--endpoint", endpoint, "--region", REGION]
    commands = [
        ["list", NAME],
        ["show", NAME, "x"],
        ["purge", NAME, "--before", "2030-01-01", "--yes"],
    ]
    for command in commands:
        result = run_cli(*command, *options)
        line = one_line_error(result)
        assert "'no-such-table' does not exist" in line
        assert f"region {REGION}" in line
        assert endpoint in line
        assert "saga-store create-table --table no-such-table" in line
        assert "create_table(" not in line  # the command, not the Python call
        assert result.stdout == ""


class NotDynamoDB(http.server.BaseHTTPRequestHandler):
    """A web server: every request gets 404 and an HTML page."""

    def do_POST(self) -> None:
        page = b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotDynamoDB)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "command",
    [
        ["list", NAME],
        ["show", NAME, "x"],
        ["purge", NAME, "--before", "2030-01-01", "--dry-run"],
        ["create-table"],
    ],
)
def test_an_endpoint_that_is_not_dynamodb_is_one_line(web_server: str, command: list[str]) -> None:
    result = run_cli(*command, "--table", "sagas", "--endpoint", web_server, "--region", REGION)
    line = one_line_error(result)
    assert f"endpoint {web_server} does not answer as DynamoDB" in line
    assert "HTTP 404" in line
    assert "<" not in line
    assert result.stdout == ""


def test_bad_date_and_bad_model_are_one_line(endpoint: str) -> None:
    options = ["--table", "whatever", "--endpoint", endpoint, "--region", REGION]
    assert "ISO 8601" in one_line_error(run_cli("purge", NAME, "--before", "last week", *options))
    assert "cannot import" in one_line_error(
        run_cli("list", NAME, "--model", "no_such_module:Saga", *options)
    )
    assert "not a SagaModel subclass" in one_line_error(
        run_cli("list", NAME, "--model", "tests.models:NAME", *options)
    )
    assert "module:Class" in one_line_error(run_cli("list", NAME, "--model", "nocolon", *options))


# -- no backend needed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [[], ["create-table"], ["schema"], ["list"], ["show"], ["purge"], ["local"], ["demo"]],
)
def test_help_on_every_command(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "usage: saga-store" in result.stdout


def test_usage_errors_exit_2() -> None:
    assert run_cli("list").returncode == 2  # NAME missing
    assert run_cli("frobnicate").returncode == 2
    assert run_cli("list", NAME, "--completed", "--active").returncode == 2


def test_schema_iam_takes_the_account_id_and_the_partition_from_the_region() -> None:
    policy = json.loads(
        run_cli(
            "schema", "--format", "iam", "--region", "cn-north-1", "--account-id", "210987654321"
        ).stdout
    )
    resources = json.dumps(policy["Statement"][0]["Resource"])
    assert "arn:aws-cn:dynamodb:cn-north-1:210987654321:table/sagas" in resources
    refused = run_cli("schema", "--format", "iam", "--region", REGION, "--account-id", "12")
    assert refused.returncode != 0
    assert "account_id" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_schema_formats() -> None:
    as_json = json.loads(run_cli("schema", "--format", "json").stdout)
    assert as_json["TableName"] == "sagas"
    assert as_json["GlobalSecondaryIndexes"][0]["IndexName"] == "correlationIndex"
    policy = json.loads(
        run_cli("schema", "--format", "iam", "--table", "orders", "--region", REGION).stdout
    )
    actions = policy["Statement"][0]["Action"]
    assert sorted(actions) == sorted(
        f"dynamodb:{a}" for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query")
    )
    assert "table/orders" in json.dumps(policy)
    cloudformation = run_cli("schema", "--format", "cloudformation").stdout
    assert "AWS::DynamoDB::Table" in cloudformation
    assert "correlationIndex" in cloudformation
    terraform = run_cli("schema", "--format", "terraform").stdout
    assert 'resource "aws_dynamodb_table"' in terraform


def test_demo_command() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert "demo finished: the order saga is complete" in result.stdout


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "saga-store"
    if not script.exists():
        if IN_CI:
            pytest.fail("the saga-store console script is not installed")
        pytest.skip("package not installed in this environment (pip install -e .)")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "usage: saga-store" in result.stdout


class SetSaga(SagaModel):
    """A saga with the attribute types ``to_simple_dict`` cannot print: sets and binary."""

    class Meta:
        table_name = "sagas"
        region = REGION

    tags = UnicodeSetAttribute(null=True)
    scores = NumberSetAttribute(null=True)
    blobs = BinarySetAttribute(legacy_encoding=False, null=True)
    photo = BinaryAttribute(legacy_encoding=False, null=True)
    details = MapAttribute(null=True)  # type: ignore[var-annotated]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_show_prints_every_attribute_type(endpoint: str, table: tuple[str, list[str]]) -> None:
    name, options = table
    model = ["--model", "tests.test_cli:SetSaga"]
    assert run_cli("create-table", *options, *model).returncode == 0
    store = DynamoDBSagaStore(
        SetSaga, table_name=name, endpoint=endpoint, region=REGION, credentials=CREDENTIALS
    )
    state = SetSaga(
        saga_id="sets-1",
        tags={"b", "a", "ü"},
        scores={3, 1.5, -2},
        blobs={b"abc", b"\x00\xff"},
        photo=b"\x89PNG\r\n\x00",
        details={"nested": {"deep": [1, "x", None, True]}},
    )
    store.insert("SetSaga", "order-1", state)
    # An attribute the model does not declare (a newer worker's field, say), holding every
    # DynamoDB type, written behind the store's back.
    every_type = {
        "s": {"S": "text"},
        "n": {"N": "42"},
        "f": {"N": "-0.25"},
        "b": {"B": b"\x01\x02"},
        "yes": {"BOOL": True},
        "nothing": {"NULL": True},
        "ss": {"SS": ["y", "x"]},
        "ns": {"NS": ["10", "9", "-1.5"]},
        "bs": {"BS": [b"\x02", b"\x01"]},
        "l": {"L": [{"S": "a"}, {"N": "1"}, {"SS": ["q", "p"]}, {"M": {"k": {"BS": [b"z"]}}}]},
    }
    undeclared = {**every_type, "m": {"M": {"inner": {"M": every_type}}}}
    client = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
    )
    key = {"sagaName": {"S": "SetSaga"}, "sagaId": {"S": "sets-1"}}
    client.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET newerField = :v",
        ExpressionAttributeValues={":v": {"M": undeclared}},
    )

    shown = run_cli("show", "SetSaga", "sets-1", *options, *model)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["tags"] == ["a", "b", "ü"]
    assert document["scores"] == [-2, 1.5, 3]
    assert document["blobs"] == [b64(b"\x00\xff"), b64(b"abc")]
    assert document["photo"] == b64(b"\x89PNG\r\n\x00")
    assert document["details"] == {"nested": {"deep": [1, "x", None, True]}}
    expected_every_type = {
        "s": "text",
        "n": 42,
        "f": -0.25,
        "b": b64(b"\x01\x02"),
        "yes": True,
        "nothing": None,
        "ss": ["x", "y"],
        "ns": [-1.5, 9, 10],
        "bs": [b64(b"\x01"), b64(b"\x02")],
        "l": ["a", 1, ["p", "q"], {"k": [b64(b"z")]}],
    }
    assert document["newerField"] == {**expected_every_type, "m": {"inner": expected_every_type}}
    # What printed before keeps its form.
    assert (document["sagaId"], document["correlationId"], document["version"]) == (
        "sets-1",
        "order-1",
        0,
    )
    assert document["isCompleted"] is False
    stored = client.get_item(TableName=name, Key=key, ConsistentRead=True)["Item"]
    assert document["createdAt"] == stored["createdAt"]["S"]
    assert sorted(document) == sorted(stored)  # every stored attribute, the store's own too


# -- the purge confirmation ------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    """Standard input as a terminal would give it."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("answer", "confirmed"),
    [("y\n", True), ("yes\n", True), ("YES\n", True), ("n\n", False), ("\n", False), ("", False)],
)
def test_confirm_purge_accepts_only_y_or_yes(answer: str, confirmed: bool) -> None:
    prompt = io.StringIO()
    before = datetime(2026, 1, 31, tzinfo=timezone.utc)
    result = cli.confirm_purge(
        3, NAME, before, "sagas-prod", stdin=FakeTerminal(answer), prompt=prompt
    )
    assert result is confirmed
    shown = prompt.getvalue()
    assert "3 completed OrderSaga sagas" in shown
    assert "2026-01-31T00:00:00.000000Z" in shown
    assert "'sagas-prod'" in shown
    assert "[y/N]" in shown


def _fake_store(count: int, deleted: list[str]) -> Any:
    class Store:
        table_name = "sagas-prod"

        def purge_completed(self, saga_name: str, **options: Any) -> int:
            if not options.get("dry_run"):
                deleted.append(saga_name)
            return count

    return Store()


@pytest.mark.parametrize(("answer", "status"), [("yes\n", 0), ("no\n", 1)])
def test_purge_on_a_terminal_asks_first(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answer: str,
    status: int,
) -> None:
    deleted: list[str] = []
    monkeypatch.setattr(cli, "store_from_args", lambda args: _fake_store(2, deleted))
    monkeypatch.setattr(sys, "stdin", FakeTerminal(answer))
    assert cli.main(["purge", NAME, "--before", "2026-01-31"]) == status
    captured = capsys.readouterr()
    assert "delete 2 completed OrderSaga sagas" in captured.err
    assert deleted == ([NAME] if status == 0 else [])
    assert ("deleted 2 " in captured.out) is (status == 0)


# -- show, typed by the saga name's model, and --raw -------------------------------------------


class TypedSaga(SagaModel):
    """Attributes whose stored form differs from what the model reads."""

    class Meta:
        table_name = "sagas"
        region = REGION

    document = JSONAttribute(null=True)
    legacy = BinaryAttribute(legacy_encoding=True, null=True)  # stored as base64 of the bytes
    due = UTCDateTimeAttribute(null=True)  # stored as 2026-...+0000
    tags = UnicodeSetAttribute(null=True)
    status = UnicodeAttribute(default="new")


def client_for(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
    )


def test_show_is_typed_by_the_model_and_raw_without_it(
    endpoint: str, table: tuple[str, list[str]]
) -> None:
    name, options = table
    model = ["--model", "TypedSaga=tests.test_cli:TypedSaga"]
    assert run_cli("create-table", *options, *model).returncode == 0
    store = DynamoDBSagaStore(
        TypedSaga, table_name=name, endpoint=endpoint, region=REGION, credentials=CREDENTIALS
    )
    due = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
    state = TypedSaga(
        saga_id="t-1",
        document={"lines": [1, 2.5], "gift": True},
        legacy=b"\x00\xffraw",
        due=due,
        tags={"b", "a"},
        ttl=datetime(2030, 1, 1, tzinfo=timezone.utc),
    )
    store.insert("TypedSaga", "order-7", state)
    client = client_for(endpoint)
    key = {"sagaName": {"S": "TypedSaga"}, "sagaId": {"S": "t-1"}}
    # Behind the store's back: a declared attribute goes (the model's default must not come
    # back in its place), an undeclared one with sets and nesting comes.
    client.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="REMOVE #s SET newerField = :v",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":v": {"M": {"ns": {"NS": ["2", "-1"]}, "deep": {"L": [{"BS": [b"\x02", b"\x01"]}]}}}
        },
    )
    stored = client.get_item(TableName=name, Key=key, ConsistentRead=True)["Item"]

    typed = run_cli("show", "TypedSaga", "t-1", *options, *model)
    assert typed.returncode == 0, typed.stderr
    document = json.loads(typed.stdout)
    assert sorted(document) == sorted(stored)  # what is stored, nothing more, nothing less
    assert "status" not in document
    assert document["document"] == {"lines": [1, 2.5], "gift": True}
    assert document["legacy"] == b64(b"\x00\xffraw")
    assert document["due"] == "2026-03-01T12:30:00.000000Z"
    assert document["ttl"] == "2030-01-01T00:00:00.000000Z"
    assert document["tags"] == ["a", "b"]
    assert document["newerField"] == {"ns": [-1, 2], "deep": [[b64(b"\x01"), b64(b"\x02")]]}
    assert (document["sagaId"], document["correlationId"], document["version"]) == (
        "t-1",
        "order-7",
        0,
    )

    raw = run_cli("show", "TypedSaga", "t-1", "--raw", *options, *model)
    assert raw.returncode == 0, raw.stderr
    as_stored = json.loads(raw.stdout)
    assert sorted(as_stored) == sorted(stored)
    assert as_stored["document"] == stored["document"]["S"]  # the JSON text
    assert json.loads(as_stored["document"]) == document["document"]
    assert as_stored["legacy"] == b64(base64.b64encode(b"\x00\xffraw"))
    assert as_stored["due"] == stored["due"]["S"]
    assert as_stored["due"].endswith("+0000")
    assert as_stored["ttl"] == int(datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp())
    assert as_stored["newerField"] == document["newerField"]
    without_model = json.loads(run_cli("show", "TypedSaga", "t-1", "--raw", *options).stdout)
    assert without_model == as_stored  # --raw never depends on a model

    by_correlation = run_cli("show", "TypedSaga", "--correlation-id", "order-7", *options, *model)
    assert by_correlation.returncode == 0, by_correlation.stderr
    assert json.loads(by_correlation.stdout) == document

    missing = run_cli("show", "TypedSaga", "--correlation-id", "order-8", *options, *model)
    assert "correlation id 'order-8' not found" in one_line_error(missing)
    both = run_cli("show", "TypedSaga", "t-1", "--correlation-id", "order-7", *options)
    assert both.returncode == 2, (both.stdout, both.stderr)
    assert "Traceback" not in both.stderr


def test_two_saga_types_in_one_table_with_a_model_each(
    endpoint: str, table: tuple[str, list[str]]
) -> None:
    name, options = table
    models = [
        "--model",
        "OrderSaga=tests.models:OrderSaga",
        "--model",
        "PaymentSaga=tests.models:PaymentSaga",
    ]
    assert run_cli("create-table", *options, *models).returncode == 0
    store = DynamoDBSagaStore(
        OrderSaga,
        models={"PaymentSaga": PaymentSaga},
        table_name=name,
        endpoint=endpoint,
        region=REGION,
        credentials=CREDENTIALS,
    )
    store.insert("OrderSaga", "order-1", OrderSaga(saga_id="o-1", total_cents=500, note="n"))
    store.insert("PaymentSaga", "order-1", PaymentSaga(saga_id="p-1", amount_cents=500))
    store.insert("PaymentSaga", "order-2", PaymentSaga(saga_id="p-2", amount_cents=1))
    client_for(endpoint).update_item(
        TableName=name,
        Key={"sagaName": {"S": "PaymentSaga"}, "sagaId": {"S": "p-2"}},
        UpdateExpression="REMOVE amount_cents",
    )

    payment = json.loads(run_cli("show", "PaymentSaga", "p-1", *options, *models).stdout)
    assert payment["amount_cents"] == 500
    assert not {"status", "total_cents", "note", "items", "extra"} & set(payment)
    no_amount = json.loads(run_cli("show", "PaymentSaga", "p-2", *options, *models).stdout)
    assert "amount_cents" not in no_amount  # not the model's default 0: it is not stored
    order = run_cli("show", "OrderSaga", "--correlation-id", "order-1", *options, *models)
    assert order.returncode == 0, order.stderr
    shown = json.loads(order.stdout)
    assert (shown["sagaId"], shown["total_cents"], shown["note"]) == ("o-1", 500, "n")
    assert "amount_cents" not in shown

    payments = run_cli("list", "PaymentSaga", "--json", *options, *models)
    assert payments.returncode == 0, payments.stderr
    documents = [json.loads(line) for line in payments.stdout.splitlines()]
    assert [d["saga_id"] for d in documents] == ["p-1", "p-2"]
    assert set(documents[0]) == set(PaymentSaga.get_attributes())
    orders = run_cli("list", "OrderSaga", "--json", *options, *models)
    (order_document,) = [json.loads(line) for line in orders.stdout.splitlines()]
    assert set(order_document) == set(OrderSaga.get_attributes())

    dry = run_cli("purge", "PaymentSaga", "--before", "2999-01-01", "--dry-run", *options, *models)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip().splitlines()[-1].startswith("would delete 0 completed PaymentSaga")


SHOP_MODELS = """
from pynamodb.attributes import JSONAttribute

from saga_store_pynamo import SagaModel


class ShopSaga(SagaModel):
    class Meta:
        table_name = "shop-sagas"
        region = "eu-west-1"

    payload = JSONAttribute(null=True)
"""


def test_model_module_is_imported_from_the_current_directory(endpoint: str, tmp_path: Path) -> None:
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(SHOP_MODELS)
    script = Path(sys.executable).parent / "saga-store"
    # The console script (or -P: no current directory on sys.path), as a user runs it from a
    # project directory; the package is nowhere on PYTHONPATH.
    command = (
        [str(script)] if script.exists() else [sys.executable, "-P", "-m", "saga_store_pynamo"]
    )
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
    }
    environment.pop("SAGA_STORE_MODEL", None)
    if script.exists():
        environment.pop("PYTHONPATH", None)
    else:
        environment["PYTHONPATH"] = str(ROOT)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=environment,
            check=False,
        )

    schema = run("schema", "--model", "shop.models:ShopSaga")  # the plain form
    assert schema.returncode == 0, schema.stderr
    assert json.loads(schema.stdout)["TableName"] == "shop-sagas"  # the model's Meta

    table = f"shop-{uuid.uuid4().hex[:8]}"
    options = ["--table", table, "--endpoint", endpoint, "--region", REGION]
    model = ["--model", "ShopSaga=shop.models:ShopSaga"]
    created = run("create-table", *options, *model)
    assert created.returncode == 0, created.stderr
    try:
        client_for(endpoint).put_item(
            TableName=table,
            Item={
                "sagaName": {"S": "ShopSaga"},
                "sagaId": {"S": "s-1"},
                "correlationId": {"S": "c-1"},
                "version": {"N": "0"},
                "payload": {"S": '{"sku": "A-1", "qty": 2}'},
            },
        )
        shown = run("show", "ShopSaga", "s-1", *options, *model)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["payload"] == {"sku": "A-1", "qty": 2}  # read by ShopSaga
    finally:
        client_for(endpoint).delete_table(TableName=table)


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (["Order=nocolon"], "must look like 'package.module:ClassName'"),
        (["tests.models:Order Saga"], "must look like"),
        (["=tests.models:OrderSaga"], "the saga name before '=' is empty"),
        (["X=no_such_module.models:Saga"], "cannot import model module 'no_such_module.models'"),
        (["tests.models:NoSuchSaga"], "has no 'NoSuchSaga'"),
        (["X=tests.models:UnicodeAttribute"], "UnicodeAttribute is a class, not a SagaModel"),
        (["tests.conftest:REGION"], "REGION is a str, not a SagaModel subclass"),
        (
            ["A=tests.models:OrderSaga", "A=tests.models:PaymentSaga"],
            "two models for saga name 'A'",
        ),
        (["tests.models:OrderSaga", "tests.models:PaymentSaga"], "two default models"),
    ],
)
def test_bad_model_options_are_one_line(
    models: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI adds the current directory
    options = ["--table", "sagas", "--endpoint", "http://127.0.0.1:9", "--region", REGION]
    argv = ["list", NAME, *options]
    for spec in models:
        argv += ["--model", spec]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert error.startswith("saga-store: error: --model")
    assert message in error


def test_model_environment_variable_takes_several_specs() -> None:
    env = {"SAGA_STORE_MODEL": "A=tests.models:OrderSaga, A=tests.models:PaymentSaga"}
    result = run_cli("list", NAME, "--endpoint", "http://127.0.0.1:9", "--region", REGION, env=env)
    assert "two models for saga name 'A'" in one_line_error(result)


def test_no_region_names_the_option_and_the_variable(tmp_path: Path) -> None:
    env = {
        "AWS_REGION": "",
        "AWS_DEFAULT_REGION": "",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
    }
    for command in (
        ["list", NAME, "--endpoint", "http://127.0.0.1:9"],
        ["schema", "--format", "iam"],
    ):
        line = one_line_error(run_cli(*command, env=env))
        assert "no region" in line
        assert "--region" in line
        assert "SAGA_STORE_REGION" in line
        assert "region=" not in line  # not the Python advice


def test_show_document_prints_a_value_the_model_cannot_read_as_stored() -> None:
    item = {
        "due": {"N": "5"},  # the model says UTCDateTimeAttribute
        "document": {"S": "not json"},
        "status": {"NULL": True},
        "legacy": {"B": base64.b64encode(b"\x01")},
    }
    assert cli.show_document(TypedSaga, item) == {
        "due": 5,
        "document": "not json",
        "status": None,
        "legacy": b64(b"\x01"),
    }
    assert cli.show_document(None, item)["legacy"] == b64(base64.b64encode(b"\x01"))


def test_launch_failure_is_one_line_with_the_last_log_line() -> None:
    message = (
        "DynamoDB Local exited with code 1 during startup (command: java ...). End of its log:"
    )
    line = _cli_local._launch_failure(f"{message}\nstarting\nException: bad flag\n")
    assert line == f"{message.rstrip(' .:')} (last log line: Exception: bad flag)"
    assert "\n" not in line
