"""CloudFormation, Terraform and IAM generated from the model: the seed's, and the real table's."""

from __future__ import annotations

import fnmatch
import json
import uuid
from pathlib import Path
from typing import Any

import cfnlint.api
import hcl2
import pytest
import yaml
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection

from saga_store_pynamo import (
    ConcurrencyError,
    DynamoDBSagaStore,
    SagaModel,
    SagaValidationError,
    create_table,
)
from saga_store_pynamo.iac import (
    CONTROL_PLANE_ACTIONS,
    DATA_PLANE_ACTIONS,
    cloudformation,
    iam_policy,
    iam_policy_json,
    terraform,
)
from saga_store_pynamo.table import table_definition
from tests.conftest import REGION, Backend, RequestRecorder
from tests.models import OrderSaga
from tests.test_table import SEED_CLOUDFORMATION as SEED_CREATE_TABLE
from tests.test_table import LsiSaga, assert_lsi_refused

# -- the seed, copied from its documentation page -------------------------------------------

# The seed's CloudFormation "Properties" of SagasTable, verbatim (tests/test_table.py keeps
# the API part; CloudFormation adds the table name and the TTL specification).
SEED_CLOUDFORMATION: dict[str, Any] = {
    "TableName": "sagas",
    **SEED_CREATE_TABLE,
    "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
}

# The seed's Terraform, verbatim (re-indented: the page lost its indentation).
SEED_TERRAFORM = """
resource "aws_dynamodb_table" "sagas" {
  name         = "sagas"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "sagaName"
  range_key    = "sagaId"

  attribute {
    name = "sagaName"
    type = "S"
  }
  attribute {
    name = "sagaId"
    type = "S"
  }
  attribute {
    name = "correlationId"
    type = "S"
  }

  global_secondary_index {
    name            = "correlationIndex"
    hash_key        = "sagaName"
    range_key       = "correlationId"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
}
"""

# The seed's IAM policy, verbatim.
SEED_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
            ],
            "Resource": [
                "arn:aws:dynamodb:us-east-1:123456789012:table/sagas",
                "arn:aws:dynamodb:us-east-1:123456789012:table/sagas/index/*",
            ],
        }
    ],
}

# Everything optional at once; PITR is left out where a backend must build the table, since
# DynamoDB Local has no backups.
FULL_OPTIONS: dict[str, Any] = {
    "billing_mode": "PROVISIONED",
    "read_capacity_units": 7,
    "write_capacity_units": 3,
    "stream_view_type": "NEW_AND_OLD_IMAGES",
    "point_in_time_recovery": True,
}
TABLE_VARIANTS: dict[str, dict[str, Any]] = {
    "on-demand": {},
    "provisioned-with-stream": {
        "billing_mode": "PROVISIONED",
        "read_capacity_units": 7,
        "write_capacity_units": 3,
        "stream_view_type": "NEW_AND_OLD_IMAGES",
    },
}


def table_properties(template: str, logical_id: str = "SagasTable") -> dict[str, Any]:
    """The Properties of the one table resource in a generated template."""
    parsed = yaml.safe_load(template)
    assert parsed["AWSTemplateFormatVersion"] == "2010-09-09"
    assert list(parsed["Resources"]) == [logical_id]
    resource = parsed["Resources"][logical_id]
    assert resource["Type"] == "AWS::DynamoDB::Table"
    properties: dict[str, Any] = resource["Properties"]
    return properties


def by_name(attributes: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(attributes, key=lambda a: a["AttributeName"])


def parse_hcl(text: str) -> dict[str, Any]:
    """Terraform text as python-hcl2 reads it: strings unquoted and unescaped, no comments."""
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    parsed = hcl2.loads(text, serialization_options=options)
    return {key: value for key, value in parsed.items() if not key.startswith("__")}


def the_table(parsed: Any, resource_name: str = "sagas") -> dict[str, Any]:
    (resource,) = parsed["resource"]
    table: dict[str, Any] = resource["aws_dynamodb_table"][resource_name]
    return table


# -- CloudFormation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, FULL_OPTIONS, {"ttl": False, "logical_id": "Orders2", "table_name": "orders.v2"}],
    ids=["default", "provisioned-stream-pitr", "no-ttl-renamed"],
)
def test_cloudformation_passes_cfn_lint(tmp_path: Path, options: dict[str, Any]) -> None:
    path = tmp_path / "sagas.yaml"
    path.write_text(cloudformation(OrderSaga, **options), encoding="utf-8")
    matches = cfnlint.api.lint_file(path)
    assert [str(m) for m in matches] == []


def test_cloudformation_is_the_seed() -> None:
    properties = table_properties(cloudformation(OrderSaga))
    seed = dict(SEED_CLOUDFORMATION)
    assert by_name(properties.pop("AttributeDefinitions")) == by_name(
        seed.pop("AttributeDefinitions")
    )
    assert properties == seed
    # The base model and a store on the seed's table give the same.
    assert cloudformation(SagaModel) == cloudformation(OrderSaga).replace("OrderSaga", "SagaModel")
    store = DynamoDBSagaStore(OrderSaga, table_name="sagas", region="eu-west-1")
    assert cloudformation(store) == cloudformation(OrderSaga)


def test_cloudformation_is_table_definition_plus_ttl() -> None:
    """The template holds exactly what create_table() sends, in CloudFormation's terms."""
    for options in TABLE_VARIANTS.values():
        properties = table_properties(cloudformation(OrderSaga, **options))
        assert properties.pop("TimeToLiveSpecification") == {
            "AttributeName": "ttl",
            "Enabled": True,
        }
        if "StreamSpecification" in properties:
            properties["StreamSpecification"]["StreamEnabled"] = True
        definition = table_definition(OrderSaga, **options)
        assert by_name(properties.pop("AttributeDefinitions")) == by_name(
            definition.pop("AttributeDefinitions")
        )
        assert properties == definition


def test_cloudformation_options() -> None:
    properties = table_properties(cloudformation(OrderSaga, **FULL_OPTIONS))
    throughput = {"ReadCapacityUnits": 7, "WriteCapacityUnits": 3}
    assert properties["BillingMode"] == "PROVISIONED"
    assert properties["ProvisionedThroughput"] == throughput
    assert properties["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] == throughput
    # CloudFormation has no StreamEnabled: the specification itself turns the stream on.
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}

    bare = table_properties(
        cloudformation(OrderSaga, ttl=False, table_name="orders", logical_id="Orders"), "Orders"
    )
    assert bare["TableName"] == "orders"
    assert "TimeToLiveSpecification" not in bare
    for absent in (
        "ProvisionedThroughput",
        "StreamSpecification",
        "PointInTimeRecoverySpecification",
    ):
        assert absent not in bare


def test_a_store_target_uses_its_table_name() -> None:
    store = DynamoDBSagaStore(OrderSaga, table_name="orders-prod", region=REGION)
    assert table_properties(cloudformation(store))["TableName"] == "orders-prod"
    assert the_table(parse_hcl(terraform(store)))["name"] == "orders-prod"
    overridden = cloudformation(store, table_name="orders-test")
    assert table_properties(overridden)["TableName"] == "orders-test"


# -- Terraform ------------------------------------------------------------------------------


def test_terraform_is_the_seed() -> None:
    generated = parse_hcl(terraform(OrderSaga))
    assert generated == parse_hcl(SEED_TERRAFORM)
    table = the_table(generated)
    assert table["hash_key"] == "sagaName"
    assert table["range_key"] == "sagaId"
    assert table["ttl"] == [{"attribute_name": "ttl", "enabled": True}]
    assert table["global_secondary_index"] == [
        {
            "name": "correlationIndex",
            "hash_key": "sagaName",
            "range_key": "correlationId",
            "projection_type": "ALL",
        }
    ]


def test_terraform_options() -> None:
    table = the_table(
        parse_hcl(terraform(OrderSaga, resource_name="orders", **FULL_OPTIONS)), "orders"
    )
    assert table["billing_mode"] == "PROVISIONED"
    assert (table["read_capacity"], table["write_capacity"]) == (7, 3)
    (index,) = table["global_secondary_index"]
    assert (index["read_capacity"], index["write_capacity"]) == (7, 3)
    assert table["stream_enabled"] is True
    assert table["stream_view_type"] == "NEW_AND_OLD_IMAGES"
    assert table["point_in_time_recovery"] == [{"enabled": True}]

    bare = the_table(parse_hcl(terraform(OrderSaga, ttl=False, table_name="orders")))
    assert bare["name"] == "orders"
    for absent in (
        "ttl",
        "read_capacity",
        "write_capacity",
        "stream_enabled",
        "stream_view_type",
        "point_in_time_recovery",
    ):
        assert absent not in bare


# -- odd names survive both emitters ---------------------------------------------------------

ODD_HASH = "true"  # a YAML 1.1 boolean when unquoted
ODD_RANGE = 'a: b # c "q" \\ ${var.x} %{if} tab\tnew\nline ü'


class OddIndex(GlobalSecondaryIndex["OddSaga"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "odd-index"
        projection = IncludeProjection(["2010-09-09", "null", "ü", "N"])

    odd_hash = UnicodeAttribute(hash_key=True, attr_name=ODD_HASH)
    odd_range = NumberAttribute(range_key=True, attr_name=ODD_RANGE)


class OddSaga(SagaModel):
    """Attribute names (legal in DynamoDB) that a naive YAML or HCL writer would mangle."""

    class Meta:
        table_name = "odd"

    odd_hash = UnicodeAttribute(attr_name=ODD_HASH, null=True)
    odd_range = NumberAttribute(attr_name=ODD_RANGE, null=True)
    odd_index = OddIndex()


def test_odd_attribute_names_round_trip() -> None:
    properties = table_properties(cloudformation(OddSaga))
    definition = table_definition(OddSaga)
    assert by_name(properties["AttributeDefinitions"]) == by_name(
        definition["AttributeDefinitions"]
    )
    odd = properties["GlobalSecondaryIndexes"][1]
    assert odd == {
        "IndexName": "odd-index",
        "KeySchema": [
            {"AttributeName": ODD_HASH, "KeyType": "HASH"},
            {"AttributeName": ODD_RANGE, "KeyType": "RANGE"},
        ],
        "Projection": {
            "ProjectionType": "INCLUDE",
            "NonKeyAttributes": ["2010-09-09", "null", "ü", "N"],
        },
    }

    text = terraform(OddSaga)
    assert "${var" not in text.replace("$${", "")  # no interpolation left for Terraform
    index = the_table(parse_hcl(text))["global_secondary_index"][1]
    # python-hcl2 leaves template escapes as they are ($${ and %%{ stand for ${ and %{).
    range_key = index["range_key"].replace("$${", "${").replace("%%{", "%{")
    assert (index["hash_key"], range_key) == (ODD_HASH, ODD_RANGE)
    assert index["non_key_attributes"] == ["2010-09-09", "null", "ü", "N"]


# -- the tables they describe are the tables create_table() makes ----------------------------


def schema_of(client: Any, name: str) -> dict[str, Any]:
    """What DescribeTable and DescribeTimeToLive say about a table's layout."""
    table = client.describe_table(TableName=name)["Table"]
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]

    def throughput(description: dict[str, Any]) -> tuple[int, int]:
        units = description.get("ProvisionedThroughput", {})
        return units.get("ReadCapacityUnits", 0), units.get("WriteCapacityUnits", 0)

    return {
        "keys": sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]),
        "attributes": sorted(
            (a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]
        ),
        "indexes": sorted(
            (
                i["IndexName"],
                tuple(sorted((k["AttributeName"], k["KeyType"]) for k in i["KeySchema"])),
                i["Projection"]["ProjectionType"],
                throughput(i),
            )
            for i in table.get("GlobalSecondaryIndexes", [])
        ),
        "billing": table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
        "throughput": throughput(table),
        "stream": table.get("StreamSpecification"),
        "ttl": (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")),
    }


@pytest.mark.parametrize("source", ["table_definition", "cloudformation"])
@pytest.mark.parametrize("options", TABLE_VARIANTS.values(), ids=TABLE_VARIANTS.keys())
def test_generated_table_is_the_one_create_table_makes(
    make_store: Any, backend: Backend, source: str, options: dict[str, Any]
) -> None:
    store = make_store(create=False)
    create_table(store, **options)
    client = backend.client()
    name = f"sagas-{uuid.uuid4().hex[:12]}"
    if source == "table_definition":
        request = table_definition(store.model, table_name=name, **options)
        ttl_specification = {"AttributeName": "ttl", "Enabled": True}
    else:
        # What CloudFormation does with the template: CreateTable from the properties it
        # shares with the API, then UpdateTimeToLive from TimeToLiveSpecification.
        request = table_properties(cloudformation(store, table_name=name, **options))
        ttl_specification = request.pop("TimeToLiveSpecification")
        if "StreamSpecification" in request:
            request["StreamSpecification"]["StreamEnabled"] = True
    client.create_table(**request)
    try:
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
        client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl_specification)
        made = schema_of(client, name)
        assert made == schema_of(client, store.table_name)
        assert made["ttl"] == ("ENABLED", "ttl")
    finally:
        client.delete_table(TableName=name)


# -- IAM ------------------------------------------------------------------------------------


def test_iam_policy_is_the_seed() -> None:
    assert iam_policy(OrderSaga) == SEED_POLICY
    assert iam_policy_json(OrderSaga) == json.dumps(SEED_POLICY, indent=2)  # the seed's layout
    assert list(DATA_PLANE_ACTIONS) == SEED_POLICY["Statement"][0]["Action"]
    store = DynamoDBSagaStore(OrderSaga, region="us-east-1")
    assert iam_policy(store) == SEED_POLICY


def test_iam_policy_for_a_store_names_its_table_region_and_account() -> None:
    store = DynamoDBSagaStore(OrderSaga, table_name="orders", region="eu-west-1")
    (statement,) = iam_policy(store, account_id="210987654321")["Statement"]
    assert statement["Resource"] == [
        "arn:aws:dynamodb:eu-west-1:210987654321:table/orders",
        "arn:aws:dynamodb:eu-west-1:210987654321:table/orders/index/*",
    ]
    (statement,) = iam_policy(store, region="cn-north-1", table_name="other")["Statement"]
    assert statement["Resource"][0] == "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/other"
    (statement,) = iam_policy(SagaModel, region="us-gov-west-1")["Statement"]
    assert statement["Resource"][0].startswith("arn:aws-us-gov:dynamodb:us-gov-west-1:")


def test_iam_policy_with_the_create_table_statement() -> None:
    policy = iam_policy(OrderSaga, include_create_table=True)
    data, control = policy["Statement"]
    assert data == SEED_POLICY["Statement"][0]
    assert control == {
        "Effect": "Allow",
        "Action": [
            "dynamodb:DescribeTable",
            "dynamodb:CreateTable",
            "dynamodb:DescribeTimeToLive",
            "dynamodb:UpdateTimeToLive",
            "dynamodb:UpdateContinuousBackups",
        ],
        "Resource": ["arn:aws:dynamodb:us-east-1:123456789012:table/sagas"],
    }
    assert json.loads(iam_policy_json(OrderSaga, include_create_table=True)) == policy


def test_a_store_that_declares_iam_actions_is_granted_those() -> None:
    class TransactionalStore(DynamoDBSagaStore[OrderSaga]):
        iam_actions = ("GetItem", "dynamodb:Query", "TransactWriteItems", "GetItem")

    store = TransactionalStore(OrderSaga, region=REGION)
    (statement,) = iam_policy(store)["Statement"]
    assert statement["Action"] == [
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:TransactWriteItems",
    ]


def arn_matches(policy: dict[str, Any], action: str, arn: str) -> bool:
    return any(
        f"dynamodb:{action}" in statement["Action"]
        and any(fnmatch.fnmatchcase(arn, pattern) for pattern in statement["Resource"])
        for statement in policy["Statement"]
    )


def resource_arn(request: dict[str, Any]) -> str:
    arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/{request['TableName']}"
    return f"{arn}/index/{request['IndexName']}" if "IndexName" in request else arn


def test_iam_policy_grants_exactly_what_the_store_sends(
    make_store: Any, recorder: RequestRecorder
) -> None:
    store = make_store(ttl_days=1)
    recorder.take()
    state = OrderSaga(total_cents=100)
    store.insert("OrderSaga", "order-1", state)
    loaded = store.get_by_id("OrderSaga", state.saga_id)
    assert loaded == state
    assert store.get_by_correlation_id("OrderSaga", "order-1") == state
    loaded.status = "paid"
    store.update("OrderSaga", loaded, expected_version=0)
    with pytest.raises(ConcurrencyError):
        store.update("OrderSaga", state, expected_version=0)
    store.delete("OrderSaga", state.saga_id)
    assert store.get_by_id("OrderSaga", state.saga_id) is None

    policy = iam_policy(store)
    granted = {a.removeprefix("dynamodb:") for s in policy["Statement"] for a in s["Action"]}
    sent = {operation for operation, _ in recorder.requests}
    assert sent == granted
    for operation, request in recorder.requests:
        assert arn_matches(policy, operation, resource_arn(request)), (operation, request)


def test_the_create_table_statement_covers_what_create_table_sends(
    make_store: Any, backend: Backend, recorder: RequestRecorder
) -> None:
    store = make_store(create=False)
    # DynamoDB Local has no backups, so UpdateContinuousBackups is seen on moto only.
    create_table(store, point_in_time_recovery=backend.name == "moto")
    create_table(store)  # the no-op path on an existing table
    policy = iam_policy(store, include_create_table=True)
    sent = {operation for operation, _ in recorder.requests}
    assert sent <= {a.removeprefix("dynamodb:") for a in CONTROL_PLANE_ACTIONS}
    assert {"DescribeTable", "CreateTable", "DescribeTimeToLive", "UpdateTimeToLive"} <= sent
    for operation, request in recorder.requests:
        assert arn_matches(policy, operation, resource_arn(request)), (operation, request)


# -- invalid options ------------------------------------------------------------------------


class NoTtlSaga(SagaModel):
    """A model whose ``ttl`` is a plain number, so there is no TTL to switch on."""

    ttl = NumberAttribute(attr_name="ttl", null=True)  # type: ignore[assignment]


INVALID: dict[str, tuple[Any, Any, dict[str, Any], str]] = {
    "billing mode": (cloudformation, OrderSaga, {"billing_mode": "FREE"}, "billing_mode"),
    "provisioned without capacity": (
        terraform,
        OrderSaga,
        {"billing_mode": "PROVISIONED"},
        "read_capacity_units",
    ),
    "capacity on demand": (cloudformation, OrderSaga, {"write_capacity_units": 5}, "billing_mode"),
    "capacity not an int": (
        terraform,
        OrderSaga,
        {"billing_mode": "PROVISIONED", "read_capacity_units": "5", "write_capacity_units": 5},
        "read_capacity_units",
    ),
    "capacity negative": (
        cloudformation,
        OrderSaga,
        {"billing_mode": "PROVISIONED", "read_capacity_units": 5, "write_capacity_units": -1},
        "write_capacity_units",
    ),
    "stream view type": (terraform, OrderSaga, {"stream_view_type": "ALL"}, "stream_view_type"),
    "pitr not a bool": (
        cloudformation,
        OrderSaga,
        {"point_in_time_recovery": "yes"},
        "point_in_time_recovery",
    ),
    "ttl not a bool": (terraform, OrderSaga, {"ttl": 1}, "ttl"),
    "ttl without a TTLAttribute": (cloudformation, NoTtlSaga, {}, "ttl"),
    "table name": (cloudformation, OrderSaga, {"table_name": "my sagas"}, "table_name"),
    "logical id": (cloudformation, OrderSaga, {"logical_id": "Sagas-Table"}, "logical_id"),
    "resource name": (terraform, OrderSaga, {"resource_name": "1sagas"}, "resource_name"),
    "target": (cloudformation, "sagas", {}, "target"),
    "iam target": (iam_policy, object(), {}, "target"),
    "no region": (iam_policy, SagaModel, {}, "region"),
    "bad region": (iam_policy, OrderSaga, {"region": "US East"}, "region"),
    "account id": (iam_policy_json, OrderSaga, {"account_id": "1234"}, "account_id"),
    "include_create_table": (
        iam_policy,
        OrderSaga,
        {"include_create_table": None},
        "include_create_table",
    ),
}


@pytest.mark.parametrize(
    ("generate", "target", "options", "field"), INVALID.values(), ids=INVALID.keys()
)
def test_invalid_options_name_the_field(
    generate: Any, target: Any, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(SagaValidationError) as caught:
        generate(target, **options)
    assert caught.value.field == field


@pytest.mark.parametrize("generate", [cloudformation, terraform])
def test_a_local_secondary_index_is_refused(generate: Any) -> None:
    """As by create_table(): the template would make a table the store cannot use well."""
    with pytest.raises(SagaValidationError) as caught:
        generate(LsiSaga)
    assert_lsi_refused(caught)


@pytest.mark.parametrize("declared", [("GetItem", "dynamodb:*"), (), "GetItem", 5])
def test_bad_declared_iam_actions_name_the_field(declared: Any) -> None:
    class BadStore(DynamoDBSagaStore[OrderSaga]):
        iam_actions = declared

    with pytest.raises(SagaValidationError) as caught:
        iam_policy(BadStore(OrderSaga, region=REGION))
    assert caught.value.field == "iam_actions"


def test_the_docs_show_what_the_generators_write() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "iac.md").read_text(encoding="utf-8")
    assert f"```yaml\n{cloudformation(SagaModel)}```" in docs
    assert f"```hcl\n{terraform(SagaModel)}```" in docs
    assert f"```json\n{iam_policy_json(SagaModel, region='us-east-1')}\n```" in docs
