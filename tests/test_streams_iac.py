"""``iam_policy(..., streams=True)``: what a change-feed reader needs, and nothing by default."""

from __future__ import annotations

import json

import pytest

from saga_store_pynamo import SagaValidationError
from saga_store_pynamo.iac import STREAM_ACTIONS, iam_policy, iam_policy_json
from tests.models import OrderSaga

TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/sagas"


def test_streams_adds_one_statement_on_the_table_and_its_streams() -> None:
    plain = iam_policy(OrderSaga, region="eu-west-1")
    policy = iam_policy(OrderSaga, region="eu-west-1", streams=True)
    assert policy["Statement"][:-1] == plain["Statement"]
    assert policy["Statement"][-1] == {
        "Effect": "Allow",
        "Action": list(STREAM_ACTIONS),
        "Resource": [TABLE, f"{TABLE}/stream/*"],
    }
    # The reader finds the stream with DescribeTable; the data path never sends it.
    assert "dynamodb:DescribeTable" not in plain["Statement"][0]["Action"]
    assert set(STREAM_ACTIONS) == {
        "dynamodb:DescribeTable",
        "dynamodb:DescribeStream",
        "dynamodb:GetShardIterator",
        "dynamodb:GetRecords",
    }


def test_streams_goes_with_create_table_and_the_partition() -> None:
    policy = iam_policy(OrderSaga, region="cn-north-1", include_create_table=True, streams=True)
    assert len(policy["Statement"]) == 3
    assert policy["Statement"][2]["Resource"][1].startswith("arn:aws-cn:dynamodb:cn-north-1:")
    text = iam_policy_json(OrderSaga, region="eu-west-1", streams=True)
    assert json.loads(text)["Statement"][-1]["Action"] == list(STREAM_ACTIONS)


def test_streams_must_be_a_bool() -> None:
    with pytest.raises(SagaValidationError) as raised:
        iam_policy(OrderSaga, region="eu-west-1", streams="yes")  # type: ignore[arg-type]
    assert raised.value.field == "streams"
