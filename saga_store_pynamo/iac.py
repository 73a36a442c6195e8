"""CloudFormation, Terraform and the IAM policy, generated from the model's own schema.

Each generator calls ``table_definition()``, the same
``CreateTable`` request that ``create_table()`` sends, so the
templates, the policy and the table the store makes cannot drift apart. The text is written
by a small emitter for these fixed shapes: no YAML or HCL library is needed at run time.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, TypeAlias

from ._connection import check_table_name
from .errors import SagaValidationError
from .models import SagaModel
from .store import DynamoDBSagaStore
from .table import StreamViewType, table_definition

__all__ = [
    "CONTROL_PLANE_ACTIONS",
    "DATA_PLANE_ACTIONS",
    "STREAM_ACTIONS",
    "cloudformation",
    "iam_policy",
    "iam_policy_json",
    "terraform",
]

#: The actions the store's calls send (the seed's policy). A store that declares
#: ``iam_actions`` (for options that need more, such as transactions) is granted those instead.
DATA_PLANE_ACTIONS: tuple[str, ...] = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
)

#: The actions ``create_table()`` sends (``UpdateContinuousBackups``
#: only with ``point_in_time_recovery``); granted by ``iam_policy(include_create_table=True)``.
CONTROL_PLANE_ACTIONS: tuple[str, ...] = (
    "dynamodb:DescribeTable",
    "dynamodb:CreateTable",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:UpdateContinuousBackups",
)

#: The actions ``saga_store_pynamo.streams.iter_changes`` sends: ``DescribeTable`` on the
#: table (to find its stream; the data path never sends it) and the Streams API reads on the
#: stream. Granted by ``iam_policy(streams=True)``.
STREAM_ACTIONS: tuple[str, ...] = (
    "dynamodb:DescribeTable",
    "dynamodb:DescribeStream",
    "dynamodb:GetShardIterator",
    "dynamodb:GetRecords",
)

_BillingMode: TypeAlias = Literal["PAY_PER_REQUEST", "PROVISIONED"]
#: What the generators take: a store, or a ``SagaModel`` subclass.
_Target: TypeAlias = "DynamoDBSagaStore[Any] | type[SagaModel]"

# The CreateTable keys translated below; any other key table_definition() starts to produce
# must be translated here too, or the templates would silently lack it.
_TRANSLATED = frozenset(
    {
        "TableName",
        "AttributeDefinitions",
        "KeySchema",
        "BillingMode",
        "ProvisionedThroughput",
        "GlobalSecondaryIndexes",
        "StreamSpecification",
    }
)
_LOGICAL_ID = re.compile(r"[A-Za-z0-9]{1,255}")
_TERRAFORM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z0-9]+)+")
_ACTION = re.compile(r"[A-Za-z]+")
# Region prefix -> ARN partition, for the partitions other than "aws".
_PARTITIONS = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
)


# -- public generators ----------------------------------------------------------------------


def cloudformation(
    target: _Target,
    *,
    table_name: str | None = None,
    billing_mode: _BillingMode = "PAY_PER_REQUEST",
    read_capacity_units: int | None = None,
    write_capacity_units: int | None = None,
    stream_view_type: StreamViewType | None = None,
    point_in_time_recovery: bool = False,
    ttl: bool = True,
    logical_id: str = "SagasTable",
) -> str:
    """A CloudFormation template (YAML) with the ``AWS::DynamoDB::Table`` the store needs.

    The table has the model's keys, attribute definitions and GSIs (as ``create_table``
    makes them) and, with ``ttl``, a ``TimeToLiveSpecification`` on the model's
    ``TTLAttribute``. Only long-form intrinsics are used, so any YAML parser reads it.

    :param target: a store (its model and table name) or a ``SagaModel`` subclass (its
        ``Meta.table_name``).
    :param table_name: overrides the target's table name.
    :param point_in_time_recovery: add ``PointInTimeRecoverySpecification``.
    :param ttl: add ``TimeToLiveSpecification``.
    :param logical_id: the resource's logical id in the template.
    :raises SagaValidationError: on an invalid option; ``field`` names it.
    """
    if not isinstance(logical_id, str) or not _LOGICAL_ID.fullmatch(logical_id):
        raise SagaValidationError(
            "logical_id", f"must be 1 to 255 letters and digits, got {logical_id!r}"
        )
    table = _Table(
        target,
        table_name,
        billing_mode,
        read_capacity_units,
        write_capacity_units,
        stream_view_type,
        point_in_time_recovery,
        ttl,
    )
    request = table.request
    properties: dict[str, Any] = {
        "TableName": request["TableName"],
        "BillingMode": request["BillingMode"],
    }
    if "ProvisionedThroughput" in request:
        properties["ProvisionedThroughput"] = request["ProvisionedThroughput"]
    properties["AttributeDefinitions"] = table.attribute_definitions()
    properties["KeySchema"] = _key_schema(request["KeySchema"])
    if "GlobalSecondaryIndexes" in request:
        properties["GlobalSecondaryIndexes"] = [
            {**index, "KeySchema": _key_schema(index["KeySchema"])}
            for index in request["GlobalSecondaryIndexes"]
        ]
    if "StreamSpecification" in request:
        # CloudFormation has no StreamEnabled: a StreamSpecification enables the stream.
        view_type = request["StreamSpecification"]["StreamViewType"]
        properties["StreamSpecification"] = {"StreamViewType": view_type}
    if point_in_time_recovery:
        properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    if table.ttl_attribute is not None:
        properties["TimeToLiveSpecification"] = {
            "AttributeName": table.ttl_attribute,
            "Enabled": True,
        }
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Saga state table of saga-store-pynamo ({table.model.__name__})",
        "Resources": {
            logical_id: {"Type": "AWS::DynamoDB::Table", "Properties": properties},
        },
    }
    header = (
        f"# Generated by saga_store_pynamo.iac.cloudformation from {table.model.__name__};\n"
        "# regenerate it rather than edit it, so it keeps matching create_table().\n"
    )
    return header + "\n".join(_yaml_lines(template, 0)) + "\n"


def terraform(
    target: _Target,
    *,
    resource_name: str = "sagas",
    table_name: str | None = None,
    billing_mode: _BillingMode = "PAY_PER_REQUEST",
    read_capacity_units: int | None = None,
    write_capacity_units: int | None = None,
    stream_view_type: StreamViewType | None = None,
    point_in_time_recovery: bool = False,
    ttl: bool = True,
) -> str:
    """A Terraform ``aws_dynamodb_table`` resource (HCL) for the table the store needs.

    The same table as ``cloudformation()`` makes, in the AWS provider's terms: ``hash_key``,
    ``range_key``, ``attribute`` and ``global_secondary_index`` blocks, a ``ttl`` block
    (with ``ttl``), ``point_in_time_recovery`` (when chosen), ``stream_enabled`` and
    ``stream_view_type`` (with a stream), and capacities when ``PROVISIONED``.

    :param resource_name: the resource's name (``aws_dynamodb_table.<resource_name>``).
    :raises SagaValidationError: on an invalid option; ``field`` names it.
    """
    if not isinstance(resource_name, str) or not _TERRAFORM_NAME.fullmatch(resource_name):
        raise SagaValidationError(
            "resource_name",
            "must start with a letter or '_' and hold only letters, digits, '_' and '-', "
            f"got {resource_name!r}",
        )
    table = _Table(
        target,
        table_name,
        billing_mode,
        read_capacity_units,
        write_capacity_units,
        stream_view_type,
        point_in_time_recovery,
        ttl,
    )
    request = table.request
    keys = _keys_by_type(request["KeySchema"])
    settings: list[tuple[str, Any]] = [
        ("name", request["TableName"]),
        ("billing_mode", request["BillingMode"]),
        ("hash_key", keys["HASH"]),
    ]
    if "RANGE" in keys:
        settings.append(("range_key", keys["RANGE"]))
    settings += _capacity(request)
    if "StreamSpecification" in request:
        settings.append(("stream_enabled", True))
        settings.append(("stream_view_type", request["StreamSpecification"]["StreamViewType"]))
    blocks: list[tuple[str, list[tuple[str, Any]]]] = [
        ("attribute", [("name", a["AttributeName"]), ("type", a["AttributeType"])])
        for a in table.attribute_definitions()
    ]
    for index in request.get("GlobalSecondaryIndexes", []):
        index_keys = _keys_by_type(index["KeySchema"])
        body: list[tuple[str, Any]] = [
            ("name", index["IndexName"]),
            ("hash_key", index_keys["HASH"]),
        ]
        if "RANGE" in index_keys:
            body.append(("range_key", index_keys["RANGE"]))
        body.append(("projection_type", index["Projection"]["ProjectionType"]))
        if "NonKeyAttributes" in index["Projection"]:
            body.append(("non_key_attributes", list(index["Projection"]["NonKeyAttributes"])))
        body += _capacity(index)
        blocks.append(("global_secondary_index", body))
    if table.ttl_attribute is not None:
        blocks.append(("ttl", [("attribute_name", table.ttl_attribute), ("enabled", True)]))
    if point_in_time_recovery:
        blocks.append(("point_in_time_recovery", [("enabled", True)]))

    lines = [
        f"# Generated by saga_store_pynamo.iac.terraform from {table.model.__name__};",
        "# regenerate it rather than edit it, so it keeps matching create_table().",
        f"resource {_hcl_string('aws_dynamodb_table')} {_hcl_string(resource_name)} {{",
        *_hcl_attributes(settings, "  "),
    ]
    previous = None
    for block_type, block_body in blocks:
        if block_type != previous:  # blocks of one type stay together, as in the seed
            lines.append("")
        lines += [f"  {block_type} {{", *_hcl_attributes(block_body, "    "), "  }"]
        previous = block_type
    lines.append("}")
    return "\n".join(lines) + "\n"


def iam_policy(
    target: _Target,
    *,
    account_id: str = "123456789012",
    region: str | None = None,
    table_name: str | None = None,
    include_create_table: bool = False,
    streams: bool = False,
) -> dict[str, Any]:
    """The IAM policy document the store needs: the seed's, for this table.

    One statement allows the data-plane actions (``DATA_PLANE_ACTIONS``, or the store's
    ``iam_actions`` when it declares them) on the table and its indexes. With
    ``include_create_table``, a second statement allows ``CONTROL_PLANE_ACTIONS`` on the
    table, for a process that also runs ``create_table``. With ``streams``, one more allows
    ``STREAM_ACTIONS`` on the table and its streams (``.../table/NAME/stream/*``), for a
    process that reads the change feed (``streams.iter_changes``, ``saga-store tail``).

    :param account_id: the 12-digit AWS account id of the table.
    :param region: overrides the store's region (or the model's ``Meta.region``).
    :param table_name: overrides the target's table name.
    :raises SagaValidationError: on an invalid option, or when no region is known.
    """
    _, name, target_region = _resolve(target, table_name)
    region = target_region if region is None else region
    if region is None:
        raise SagaValidationError(
            "region", "the target has no region; pass one, such as 'us-east-1'"
        )
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise SagaValidationError("region", f"is not an AWS region name: {region!r}")
    if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id):
        raise SagaValidationError("account_id", f"must be 12 digits, got {account_id!r}")
    _check_bool("include_create_table", include_create_table)
    _check_bool("streams", streams)
    partition = next((p for prefix, p in _PARTITIONS if region.startswith(prefix)), "aws")
    table_arn = f"arn:{partition}:dynamodb:{region}:{account_id}:table/{name}"
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": list(_data_plane_actions(target)),
            "Resource": [table_arn, f"{table_arn}/index/*"],
        }
    ]
    if include_create_table:
        statements.append(
            {"Effect": "Allow", "Action": list(CONTROL_PLANE_ACTIONS), "Resource": [table_arn]}
        )
    if streams:
        statements.append(
            {
                "Effect": "Allow",
                "Action": list(STREAM_ACTIONS),
                "Resource": [table_arn, f"{table_arn}/stream/*"],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def iam_policy_json(
    target: _Target,
    *,
    account_id: str = "123456789012",
    region: str | None = None,
    table_name: str | None = None,
    include_create_table: bool = False,
    streams: bool = False,
) -> str:
    """``iam_policy()`` as JSON text, indented as in the seed's documentation.

    Like ``json.dumps``, the text has no trailing newline.
    """
    policy = iam_policy(
        target,
        account_id=account_id,
        region=region,
        table_name=table_name,
        include_create_table=include_create_table,
        streams=streams,
    )
    return json.dumps(policy, indent=2)


# -- the table, from table_definition() -----------------------------------------------------


class _Table:
    """The ``CreateTable`` request for a target, plus the settings made by other calls."""

    def __init__(
        self,
        target: _Target,
        table_name: str | None,
        billing_mode: _BillingMode,
        read_capacity_units: int | None,
        write_capacity_units: int | None,
        stream_view_type: StreamViewType | None,
        point_in_time_recovery: bool,
        ttl: bool,
    ) -> None:
        self.model, name, _ = _resolve(target, table_name)
        _check_bool("point_in_time_recovery", point_in_time_recovery)
        _check_bool("ttl", ttl)
        for field, units in (
            ("read_capacity_units", read_capacity_units),
            ("write_capacity_units", write_capacity_units),
        ):
            # table_definition() checks presence; this adds the type, as the value lands in text.
            if units is not None and (
                isinstance(units, bool) or not isinstance(units, int) or units < 1
            ):
                raise SagaValidationError(field, f"must be an int >= 1, got {units!r}")
        self.request = table_definition(
            self.model,
            table_name=name,
            billing_mode=billing_mode,
            read_capacity_units=read_capacity_units,
            write_capacity_units=write_capacity_units,
            stream_view_type=stream_view_type,
        )
        untranslated = sorted(set(self.request) - _TRANSLATED)
        if untranslated:
            raise NotImplementedError(
                f"table_definition() produced {untranslated}, which saga_store_pynamo.iac "
                "does not translate yet"
            )
        self.ttl_attribute: str | None = None
        if ttl:
            attribute = self.model._ttl_attribute()  # type: ignore[no-untyped-call]
            if attribute is None:
                raise SagaValidationError(
                    "ttl", f"{self.model.__name__} declares no TTLAttribute; pass ttl=False"
                )
            self.ttl_attribute = str(attribute.attr_name)

    def attribute_definitions(self) -> list[dict[str, str]]:
        """The attribute definitions in the order the keys use them (table, then indexes)."""
        types = {
            a["AttributeName"]: a["AttributeType"] for a in self.request["AttributeDefinitions"]
        }
        key_schemas = [self.request["KeySchema"]] + [
            index["KeySchema"] for index in self.request.get("GlobalSecondaryIndexes", [])
        ]
        order: list[str] = []
        for keys in key_schemas:
            for key in _key_schema(keys):
                if key["AttributeName"] not in order:
                    order.append(key["AttributeName"])
        order += [name for name in types if name not in order]
        return [{"AttributeName": name, "AttributeType": types[name]} for name in order]


def _resolve(target: Any, table_name: str | None) -> tuple[type[SagaModel], str, str | None]:
    """The model, table name and region of a store or a model class."""
    if isinstance(target, DynamoDBSagaStore):
        model: type[SagaModel] = target.model
        name: Any = target.table_name
        region: Any = target.region
    elif isinstance(target, type) and issubclass(target, SagaModel):
        model = target
        name = getattr(target.Meta, "table_name", None)
        region = getattr(target.Meta, "region", None)
    else:
        raise SagaValidationError(
            "target", f"must be a DynamoDBSagaStore or a SagaModel class, got {target!r}"
        )
    name = check_table_name(name if table_name is None else table_name)
    return model, name, region


def _data_plane_actions(target: _Target) -> tuple[str, ...]:
    declared = (
        getattr(target, "iam_actions", None) if isinstance(target, DynamoDBSagaStore) else None
    )
    if declared is None:
        return DATA_PLANE_ACTIONS
    if (
        not isinstance(declared, (tuple, list))
        or not declared
        or not all(isinstance(a, str) for a in declared)
    ):
        raise SagaValidationError(
            "iam_actions", f"must be a non-empty tuple of str, got {declared!r}"
        )
    actions: list[str] = []
    for action in declared:
        bare = action.removeprefix("dynamodb:")
        if not _ACTION.fullmatch(bare):
            raise SagaValidationError("iam_actions", f"{action!r} is not a DynamoDB action")
        if f"dynamodb:{bare}" not in actions:
            actions.append(f"dynamodb:{bare}")
    return tuple(actions)


def _check_bool(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise SagaValidationError(field, f"must be True or False, got {value!r}")


def _key_schema(keys: list[dict[str, str]]) -> list[dict[str, str]]:
    """Key schema elements with HASH first, each as ``AttributeName`` then ``KeyType``."""
    ordered = sorted(keys, key=lambda k: k["KeyType"])  # HASH < RANGE
    return [{"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in ordered]


def _keys_by_type(keys: list[dict[str, str]]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in keys}


def _capacity(definition: dict[str, Any]) -> list[tuple[str, Any]]:
    throughput = definition.get("ProvisionedThroughput")
    if throughput is None:
        return []
    return [
        ("read_capacity", throughput["ReadCapacityUnits"]),
        ("write_capacity", throughput["WriteCapacityUnits"]),
    ]


# -- text emitters --------------------------------------------------------------------------

_PLAIN_YAML = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/-]*")
# Words some YAML parsers (1.1) read as booleans or null when unquoted.
_YAML_WORDS = frozenset(
    {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "none", "nan", "inf"}
)


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"no YAML form for {type(value).__name__}")
    if (
        _PLAIN_YAML.fullmatch(value)
        and not value.endswith(":")
        and value.lower() not in _YAML_WORDS
    ):
        return value
    return '"' + "".join(_yaml_char(c) for c in value) + '"'


def _yaml_char(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF):
        return f"\\u{code:04x}"
    return char


def _yaml_lines(value: Any, indent: int) -> list[str]:
    """Block-style YAML lines for a mapping or a list (of mappings or scalars)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            prefix = f"{pad}{_yaml_scalar(key)}:"
            if isinstance(item, (dict, list)) and item:
                lines.append(prefix)
                lines += _yaml_lines(item, indent + 2)
            else:
                lines.append(f"{prefix} {_yaml_empty(item)}")
        return lines
    for item in value:
        if isinstance(item, (dict, list)) and item:
            # The first line of the nested block goes after the dash, the rest under it.
            nested = _yaml_lines(item, indent + 2)
            lines.append(f"{pad}- {nested[0][indent + 2 :]}")
            lines += nested[1:]
        else:
            lines.append(f"{pad}- {_yaml_empty(item)}")
    return lines


def _yaml_empty(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _yaml_scalar(value)


def _hcl_string(value: str) -> str:
    out = []
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    # Template sequences would be interpolated; doubled they stand for themselves.
    return '"' + "".join(out).replace("${", "$${").replace("%{", "%%{") + '"'


def _hcl_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _hcl_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_hcl_value(v) for v in value) + "]"
    raise TypeError(f"no HCL form for {type(value).__name__}")


def _hcl_attributes(pairs: list[tuple[str, Any]], pad: str) -> list[str]:
    """``key = value`` lines with the equals signs aligned, as ``terraform fmt`` does."""
    width = max((len(key) for key, _ in pairs), default=0)
    return [f"{pad}{key.ljust(width)} = {_hcl_value(value)}" for key, value in pairs]
