"""From the command line's options to models and a store: ``--model`` specs imported as
``python -m`` would, ``--table``/``--region``/``--endpoint`` and their environment variables,
and the errors every command reports (one line; exit status 1, or 2 for usage)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ._connection import configured_region
from ._validation import MAX_PARTITION_KEY_BYTES, check_key
from .models import SagaModel
from .store import DynamoDBSagaStore

ENV = {
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


def model_specs(args: argparse.Namespace) -> list[str]:
    """The ``--model`` options, else ``SAGA_STORE_MODEL`` (specs separated by commas or
    spaces)."""
    if args.model:
        return list(args.model)
    text = os.environ.get(ENV["model"], "").strip()
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


def store_from_args(args: argparse.Namespace) -> DynamoDBSagaStore[Any]:
    """The store the table options name: ``--model`` (or ``SAGA_STORE_MODEL``), ``--table``,
    ``--region`` and ``--endpoint``, each defaulting to the models' ``Meta``."""
    models = parse_models(model_specs(args))
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
        raise CommandError(NO_REGION)
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


NO_REGION = (
    "no region: pass --region or set SAGA_STORE_REGION (AWS_REGION, AWS_DEFAULT_REGION and "
    "the AWS profile's region are read too)"
)


def schema_target(args: argparse.Namespace) -> Any:
    """The model whose schema ``schema`` prints."""
    return parse_models(model_specs(args)).for_meta()
