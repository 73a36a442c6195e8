"""The ``saga-store`` command: table set-up, schema export, listing, inspection and purging.

Every command takes ``--table``, ``--region``, ``--endpoint`` and ``--model module:Class``,
each also read from an environment variable (``SAGA_STORE_TABLE``, ``SAGA_STORE_REGION``,
``SAGA_STORE_ENDPOINT``, ``SAGA_STORE_MODEL``). Credentials come from botocore's usual chain
(environment, profile, instance role). Expected failures print one line on stderr and exit 1;
usage errors exit 2 (among them ``purge`` without ``--yes`` when there is no terminal to
confirm on).
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NoReturn, TextIO

from botocore.exceptions import BotoCoreError

from ._connection import configured_region
from ._telemetry import LOGGER_NAME
from ._validation import MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, check_key
from .errors import SagaStoreError, SagaStoreRequestError, TableNotFoundError
from .models import SagaModel
from .store import DynamoDBSagaStore

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
    """Import ``module:Class`` and check that it is a ``SagaModel`` subclass."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise CommandError(f"--model must look like 'package.module:ClassName', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"cannot import model module {module_name!r}: {exc}") from exc
    model = getattr(module, class_name, None)
    if not (isinstance(model, type) and issubclass(model, SagaModel)):
        raise CommandError(f"{path!r} is not a SagaModel subclass")
    return model


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
    model = load_model(args.model) if args.model else SagaModel
    store: DynamoDBSagaStore[Any] = DynamoDBSagaStore(
        model, table_name=args.table, region=args.region, endpoint=args.endpoint
    )
    args.connected_store = store  # for the error messages, which name its table and region
    return store


def _schema_target(args: argparse.Namespace) -> Any:
    model = load_model(args.model) if args.model else SagaModel
    return model


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
        options = {} if args.account_id is None else {"account_id": args.account_id}
        text = iac.iam_policy_json(model, table_name=table_name, region=region, **options) + "\n"
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
    value = getattr(state, name)
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc_text(value)
    attribute = state.get_attributes()[name]
    return plain_value({attribute.attr_type: attribute.serialize(value)})


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, bool)):
        return str(value)  # booleans as True/False, as the completed column always printed
    return json.dumps(value, sort_keys=True)


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    store = _store(args)
    item = _read_item(store, args.name, args.saga_id)
    if item is None:
        raise CommandError(
            f"saga {args.name!r} id {args.saga_id!r} not found in {store.table_name!r}"
        )
    document = {name: plain_value(value) for name, value in item.items()}
    out.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return 0


def _read_item(
    store: DynamoDBSagaStore[Any], saga_name: str, saga_id: str
) -> dict[str, Any] | None:
    """The stored item as DynamoDB holds it (every attribute, declared or not), or None.

    One strongly consistent GetItem, as ``get_by_id`` sends; the model would drop the
    attributes it does not declare.
    """
    check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
    check_key("saga_id", saga_id, MAX_SORT_KEY_BYTES)
    attributes = store.model_for(saga_name).get_attributes()
    key = {
        attributes["saga_name"].attr_name: {"S": saga_name},
        attributes["saga_id"].attr_name: {"S": saga_id},
    }
    request = {"TableName": store.table_name, "Key": key, "ConsistentRead": True}
    response = store._dispatch("GetItem", request)
    item: dict[str, Any] | None = response.get("Item")
    return item


def plain_value(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value (``{"S": ...}``, ...) as plain JSON data.

    As PynamoDB's ``to_simple_dict`` for what it supports: S, BOOL, NULL, L and M as
    themselves, N as a JSON number (an integer exactly, any other as the nearest double).
    Binary (B) is base64 text; sets are lists, sorted since DynamoDB keeps no order: SS by
    code point, NS by value, BS by bytes.
    """
    ((kind, data),) = value.items()
    if kind in ("S", "BOOL"):
        return data
    if kind == "NULL":
        return None
    if kind == "N":
        return _number(data)
    if kind == "B":
        return _base64(data)
    if kind == "SS":
        return sorted(data)
    if kind == "NS":
        return [_number(number) for number in sorted(data, key=Decimal)]
    if kind == "BS":
        return [_base64(blob) for blob in sorted(data)]
    if kind == "L":
        return [plain_value(element) for element in data]
    if kind == "M":
        return {name: plain_value(element) for name, element in data.items()}
    raise CommandError(f"cannot print a DynamoDB value of type {kind!r}")


def _number(text: str) -> int | float:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


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
        default=os.environ.get(_ENV["model"]),
        help="your SagaModel subclass as module:Class (default: SagaModel) [SAGA_STORE_MODEL]",
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

    show = commands.add_parser("show", parents=[common], help="print one saga as JSON")
    show.add_argument("name", help="saga name")
    show.add_argument("saga_id", metavar="ID", help="saga id")
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

    demo = commands.add_parser(
        "demo", parents=[common], help="run an order saga end to end (embedded moto by default)"
    )
    demo.add_argument("--workers", type=int, default=4, help="concurrent workers (default 4)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def _fail(message: str) -> NoReturn:
    lines = message.strip().splitlines() or ["failed"]
    sys.stderr.write(f"saga-store: error: {lines[0]}\n")
    raise SystemExit(1)


def explain(exc: Exception, args: argparse.Namespace) -> str:
    """What an operator can do about ``exc``, in one line."""
    store: DynamoDBSagaStore[Any] | None = getattr(args, "connected_store", None)
    endpoint = store.endpoint if store is not None else args.endpoint
    where = f"endpoint {endpoint}" if endpoint else "AWS's own endpoint"
    if isinstance(exc, TableNotFoundError) and store is not None:
        command = ["saga-store create-table", f"--table {store.table_name}"]
        if store.region:
            command.append(f"--region {store.region}")
        if endpoint:
            command.append(f"--endpoint {endpoint}")
        if args.model:
            command.append(f"--model {args.model}")
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
