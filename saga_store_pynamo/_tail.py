"""``saga-store tail NAME``: follow the saga change feed live, one line per change.

Wired into ``cli.build_parser()`` by ``add_parser(commands, common)``; ``schema --streams``
by ``add_schema_arguments(schema)``. Reads the table's stream with
``streams.iter_changes(follow=True)`` until Ctrl-C, which ends it with exit status 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from datetime import timezone
from typing import TYPE_CHECKING, Any, TextIO

from ._cli_local import stop_signals_interrupt
from ._cli_options import store_from_args
from ._plain import plain_value
from ._stream_records import SagaChange, StreamGap
from .errors import SagaStoreError
from .store import DynamoDBSagaStore

if TYPE_CHECKING:
    from ._stream_reader import ChangeStream

__all__ = ["add_parser", "add_schema_arguments", "cmd_tail", "format_change", "json_change"]

_STARTS = {"trim-horizon": "trim_horizon", "latest": "latest"}


def add_parser(commands: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``tail`` command to ``saga-store``'s subcommands."""
    tail: argparse.ArgumentParser = commands.add_parser(
        "tail",
        parents=[common],
        help="follow the changes of one saga name live from the table's stream (Ctrl-C stops)",
    )
    tail.add_argument("name", help="saga name, e.g. OrderSaga")
    tail.add_argument(
        "--from",
        dest="start",
        choices=sorted(_STARTS),
        default="latest",
        help="latest: changes from now on (default); trim-horizon: the oldest kept (24 hours)",
    )
    tail.add_argument("--json", action="store_true", help="one JSON object per change and line")
    tail.set_defaults(handler=cmd_tail)
    return tail


def add_schema_arguments(schema: argparse.ArgumentParser) -> None:
    """Add ``--streams`` to the ``schema`` command (read with ``--format iam``)."""
    schema.add_argument(
        "--streams",
        action="store_true",
        help="with --format iam: also allow reading the table's stream (iter_changes, tail)",
    )


def cmd_tail(args: argparse.Namespace, out: TextIO) -> int:
    """Print each change of ``args.name`` as it happens, until Ctrl-C (exit status 0)."""
    from .streams import iter_changes

    err = sys.stderr
    try:
        with stop_signals_interrupt():
            return _follow(args, out, err, store_from_args(args), iter_changes)
    except KeyboardInterrupt:
        err.write("saga-store: tail stopped\n")
        return 0


def _follow(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    store: DynamoDBSagaStore[Any],
    iter_changes: Callable[..., ChangeStream],
) -> int:
    """Print the changes of ``args.name`` until interrupted."""

    def gap(found: StreamGap) -> None:
        err.write(f"saga-store: gap: {found.message}\n")
        err.flush()

    def unreadable(record: Mapping[str, Any], exc: SagaStoreError) -> None:
        number = record.get("dynamodb", {}).get("SequenceNumber", "?")
        err.write(f"saga-store: record {number} skipped: {exc}\n")
        err.flush()

    changes = iter_changes(
        store,
        start=_STARTS[args.start],
        follow=True,
        saga_names=[args.name],
        on_gap=gap,
        on_error=unreadable,
    )
    err.write(
        f"saga-store: following {args.name} in table {store.table_name!r} "
        f"(stream {changes.stream_label}, from {args.start}); Ctrl-C stops\n"
    )
    err.flush()
    try:
        for change in changes:
            line = json.dumps(json_change(change), sort_keys=True) if args.json else None
            out.write((line or format_change(change)) + "\n")
            out.flush()
    finally:
        changes.close()
    return 0


def _time(change: SagaChange) -> str:
    if change.event_time is None:
        return "-"
    return change.event_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_change(change: SagaChange) -> str:
    """One change as a line: time, kind, saga id, version, then ``field=old->new`` pairs."""
    version = "-" if change.version is None else f"v{change.version}"
    parts = [_time(change), change.kind, change.saga_id, version]
    for name, (old, new) in change.changed_fields().items():
        before, after = _text(old), _text(new)
        if change.kind == "started":
            parts.append(f"{name}={after}")
        elif change.kind in ("deleted", "expired"):
            continue
        else:
            parts.append(f"{name}={before}->{after}")
    return " ".join(parts)


def json_change(change: SagaChange) -> dict[str, Any]:
    """One change as plain JSON data, its changed fields as ``{"old": ..., "new": ...}``."""
    fields = {
        name: {"old": _plain(old), "new": _plain(new)}
        for name, (old, new) in change.changed_fields().items()
    }
    return {
        "time": None if change.event_time is None else _time(change),
        "kind": change.kind,
        "saga_name": change.saga_name,
        "saga_id": change.saga_id,
        "correlation_id": change.correlation_id,
        "version": change.version,
        "sequence_number": change.sequence_number,
        "changes": fields,
    }


def _text(value: Mapping[str, Any] | None) -> str:
    return "-" if value is None else json.dumps(_plain(value), sort_keys=True)


def _plain(value: Mapping[str, Any] | None) -> Any:
    """A DynamoDB attribute value as plain JSON data, as ``saga-store show`` prints it."""
    if value is None:
        return None
    try:
        return plain_value(value)
    except ValueError:
        return str(value)
