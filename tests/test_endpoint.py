"""``_endpoint.EndpointResolver`` resolves what botocore itself would send to, offline.

Each case builds a store as a user would, then compares the resolver's URL, signing region
and signing name with the request botocore's client really prepares for the same store and
credentials: a ``before-send`` handler captures it and answers with a canned response, so
nothing leaves the machine (the endpoint ruleset needs no network).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from botocore.awsrequest import AWSResponse
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError
from botocore.regions import EndpointRulesetResolver

from saga_store_pynamo import DynamoDBSagaStore, _endpoint
from saga_store_pynamo._endpoint import EndpointResolver, ResolvedEndpoint
from tests.conftest import CREDENTIALS, REGION
from tests.models import OrderSaga

ACCOUNT = "123456789012"
TABLE = "sagas"  # OrderSaga.Meta.table_name
KEY = {"sagaName": {"S": "OrderSaga"}, "sagaId": {"S": "id-1"}}
PARAMS: dict[str, dict[str, Any]] = {
    "GetItem": {"Key": KEY},
    "DeleteItem": {"Key": KEY},
    "UpdateItem": {"Key": KEY},
    "PutItem": {"Item": KEY},
    "Query": {
        "KeyConditionExpression": "sagaName = :n",
        "ExpressionAttributeValues": {":n": {"S": "OrderSaga"}},
    },
}
_ENVIRONMENT = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_ACCOUNT_ID",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_SIGV4A_SIGNING_REGION_SET",
    "AWS_AUTH_SCHEME_PREFERENCE",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Nothing of the machine's AWS setup leaks in; returns the (empty) AWS config file."""
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "aws-config"
    config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return config


def credentials(account_id: str | None = None) -> Credentials:
    """The test credentials, with ``account_id`` if given."""
    return Credentials(
        CREDENTIALS["aws_access_key_id"],
        CREDENTIALS["aws_secret_access_key"],
        account_id=account_id,
    )


def make_store(
    region: str = REGION, account_id: str | None = None, **options: Any
) -> DynamoDBSagaStore[Any]:
    options.setdefault("credentials", credentials(account_id))
    return DynamoDBSagaStore(OrderSaga, region=region, **options)


def frozen(store: DynamoDBSagaStore[Any]) -> Any:
    """The frozen credentials the store's session resolves, as the transport freezes them."""
    resolved = store.connection.session.get_credentials()
    assert resolved is not None
    return resolved.get_frozen_credentials()


class _CannedBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b"{}"


def botocore_request(
    store: DynamoDBSagaStore[Any], operation: str = "GetItem", table_name: str = TABLE
) -> tuple[str, str, str, dict[str, str]]:
    """(URL, signing region, signing name, headers) of the request botocore's client sends
    for ``operation``; answered in-process, never sent."""
    seen: list[Any] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        seen.append(request)
        return AWSResponse(request.url, 200, {}, _CannedBody())

    client = store.connection.client
    client.meta.events.register_first("before-send.dynamodb", capture)
    try:
        client._make_api_call(operation, {"TableName": table_name, **PARAMS[operation]})
    finally:
        client.meta.events.unregister("before-send.dynamodb", capture)
    (request,) = seen
    authorization = request.headers["Authorization"]
    if isinstance(authorization, bytes):
        authorization = authorization.decode()
    scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
    return request.url, scope[2], scope[3], headers


def request_url(endpoint_url: str) -> str:
    """The URL botocore's request has for ``endpoint_url``: its path, or ``/``."""
    parts = urlsplit(endpoint_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


def assert_same_as_botocore(
    store: DynamoDBSagaStore[Any], operation: str = "GetItem", table_name: str = TABLE
) -> ResolvedEndpoint:
    """The resolver's answer for ``store`` agrees with what botocore sends (or refuses)."""
    resolved = EndpointResolver(store.connection).resolve(frozen(store), operation, table_name)
    refusal: BotoCoreError | None = None
    try:
        url, region, service, _ = botocore_request(store, operation, table_name)
    except BotoCoreError as exc:
        refusal = exc
    if refusal is not None:  # botocore refuses to send it: so does the resolver, saying why
        assert not resolved.supported
        assert resolved.reason is not None
        assert str(refusal) in resolved.reason
        return resolved
    assert resolved.supported, resolved.reason
    assert resolved.url is not None
    assert (request_url(resolved.url), resolved.signing_region, resolved.signing_name) == (
        url,
        region,
        service,
    )
    return resolved


# -- regions, partitions, FIPS and dual-stack ---------------------------------------------

REGIONS = [
    "us-east-1",
    "eu-west-1",
    "cn-north-1",
    "us-gov-west-1",
    "us-iso-east-1",
    "us-isob-east-1",
    "eu-isoe-west-1",
]
VARIANTS = {
    "plain": {},
    "fips": {"AWS_USE_FIPS_ENDPOINT": "true"},
    "dualstack": {"AWS_USE_DUALSTACK_ENDPOINT": "true"},
    "fips+dualstack": {"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true"},
}


@pytest.mark.parametrize("account_id", [None, ACCOUNT], ids=["no-account", "account"])
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("region", REGIONS)
def test_regions_partitions_fips_and_dualstack_match_botocore(
    monkeypatch: pytest.MonkeyPatch, region: str, variant: str, account_id: str | None
) -> None:
    for name, value in VARIANTS[variant].items():
        monkeypatch.setenv(name, value)
    assert_same_as_botocore(make_store(region, account_id))


def test_the_expected_urls_for_a_few_well_known_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    # A few literal answers, so the comparison above is not only botocore against itself.
    def url(store: DynamoDBSagaStore[Any]) -> str | None:
        return EndpointResolver(store.connection).resolve(frozen(store), "GetItem", TABLE).url

    assert url(make_store("eu-west-1")) == "https://dynamodb.eu-west-1.amazonaws.com"
    assert url(make_store("us-east-1", ACCOUNT)) == f"https://{ACCOUNT}.ddb.us-east-1.amazonaws.com"
    assert url(make_store("cn-north-1")) == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    assert url(make_store("us-east-1", ACCOUNT)) == "https://dynamodb-fips.us-east-1.amazonaws.com"
    monkeypatch.delenv("AWS_USE_FIPS_ENDPOINT")
    monkeypatch.setenv("AWS_USE_DUALSTACK_ENDPOINT", "true")
    assert url(make_store("eu-west-1")) == "https://dynamodb.eu-west-1.api.aws"


@pytest.mark.parametrize(
    "setting",
    ["use_fips_endpoint = true", "use_dualstack_endpoint = true"],
)
@pytest.mark.parametrize("account_id", [None, ACCOUNT], ids=["no-account", "account"])
def test_fips_and_dualstack_from_the_profile_match_botocore(
    clean_environment: Path, setting: str, account_id: str | None
) -> None:
    clean_environment.write_text(f"[default]\n{setting}\n")
    resolved = assert_same_as_botocore(make_store("us-east-1", account_id))
    assert resolved.url is not None
    assert ("fips" in resolved.url) == ("fips" in setting)


def test_the_local_region_signs_for_the_region_the_ruleset_names() -> None:
    # The ruleset's "local" region carries an auth scheme: SigV4 for us-east-1.
    resolved = assert_same_as_botocore(make_store("local"))
    assert (resolved.url, resolved.signing_region) == ("http://localhost:8000", "us-east-1")


# -- configured and custom endpoints -------------------------------------------------------


@pytest.mark.parametrize("account_id", [None, ACCOUNT], ids=["no-account", "account"])
@pytest.mark.parametrize(
    ("environment", "profile", "expected"),
    [
        ({"AWS_ENDPOINT_URL": "http://localhost:4566"}, "", "http://localhost:4566"),
        (
            {
                "AWS_ENDPOINT_URL": "http://localhost:4566",
                "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:4567",
            },
            "",
            "http://localhost:4567",
        ),
        (
            {"AWS_ENDPOINT_URL": "http://localhost:4566", "AWS_USE_FIPS_ENDPOINT": "true"},
            "",
            "http://localhost:4566",
        ),
        ({}, "endpoint_url = http://localhost:4568\n", "http://localhost:4568"),
        (
            {},
            "services = local\n[services local]\ndynamodb =\n  endpoint_url = http://127.0.0.1:4569\n",
            "http://127.0.0.1:4569",
        ),
        (
            {
                "AWS_ENDPOINT_URL": "http://localhost:4566",
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
            },
            "endpoint_url = http://localhost:4568\n",
            None,
        ),
        (
            {},
            "endpoint_url = http://localhost:4568\nignore_configured_endpoint_urls = true\n",
            None,
        ),
    ],
    ids=[
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB-wins",
        "configured-endpoint-ignores-fips",
        "profile-endpoint_url",
        "profile-services-section",
        "ignored-by-env",
        "ignored-by-profile",
    ],
)
def test_configured_endpoint_urls_match_botocore(
    monkeypatch: pytest.MonkeyPatch,
    clean_environment: Path,
    environment: dict[str, str],
    profile: str,
    expected: str | None,
    account_id: str | None,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if profile:
        head, _, sections = profile.partition("[")
        clean_environment.write_text(f"[default]\n{head}" + (f"[{sections}" if sections else ""))
    resolved = assert_same_as_botocore(make_store("us-east-1", account_id))
    if expected is not None:
        assert resolved.url == expected
    else:
        assert resolved.url is not None
        assert resolved.url.endswith(".us-east-1.amazonaws.com")


@pytest.mark.parametrize(
    "endpoint", ["http://localhost:8000", "http://127.0.0.1:8123/ddb", "https://ddb.example.test"]
)
@pytest.mark.parametrize("account_id", [None, ACCOUNT], ids=["no-account", "account"])
def test_the_store_endpoint_option_is_the_endpoint_exactly(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, account_id: str | None
) -> None:
    # It wins over the environment's endpoint and FIPS/dual-stack settings, as in botocore.
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:4567")
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "required")
    resolved = assert_same_as_botocore(make_store("eu-west-1", account_id, endpoint=endpoint))
    assert resolved.url == endpoint
    assert resolved.signing_region == "eu-west-1"


# -- account-id endpoints -------------------------------------------------------------------

MODES = [None, "preferred", "required", "disabled"]


@pytest.mark.parametrize("source", ["env", "profile"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("account_id", [None, ACCOUNT], ids=["no-account", "account"])
def test_account_id_endpoint_modes_match_botocore(
    monkeypatch: pytest.MonkeyPatch,
    clean_environment: Path,
    source: str,
    mode: str | None,
    account_id: str | None,
) -> None:
    if mode is not None and source == "env":
        monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", mode)
    elif mode is not None:
        clean_environment.write_text(f"[default]\naccount_id_endpoint_mode = {mode}\n")
    resolved = assert_same_as_botocore(make_store("us-east-1", account_id))
    uses_account = account_id is not None and mode != "disabled"
    if mode == "required" and account_id is None:
        assert not resolved.supported
        assert "AccountIdEndpointMode is required" in (resolved.reason or "")
    else:
        assert resolved.url == (
            f"https://{ACCOUNT}.ddb.us-east-1.amazonaws.com"
            if uses_account
            else "https://dynamodb.us-east-1.amazonaws.com"
        )


def test_required_mode_with_fips_is_refused_as_botocore_refuses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "required")
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    resolved = assert_same_as_botocore(make_store("us-east-1", ACCOUNT))
    assert not resolved.supported
    assert resolved.url is None


def test_the_account_id_from_the_environment_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    # No credentials option: botocore's chain reads AWS_ACCOUNT_ID with the keys.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_ACCOUNT_ID", "210987654321")
    store = DynamoDBSagaStore(OrderSaga, region="us-east-1")
    assert frozen(store).account_id == "210987654321"
    resolved = assert_same_as_botocore(store)
    assert resolved.url == "https://210987654321.ddb.us-east-1.amazonaws.com"


def test_the_account_id_from_the_profile(clean_environment: Path) -> None:
    clean_environment.write_text(
        "[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = secret\n"
        "aws_account_id = 333344445555\n"
    )
    store = DynamoDBSagaStore(OrderSaga, region="us-east-1")
    resolved = assert_same_as_botocore(store)
    assert resolved.url == "https://333344445555.ddb.us-east-1.amazonaws.com"


def test_the_account_id_is_the_requests_not_the_clients() -> None:
    # The resolver reads the account id of the credentials it is given (one frozen set per
    # attempt), not the client's credentials object at some other moment.
    store = make_store("us-east-1", ACCOUNT)
    resolver = EndpointResolver(store.connection)
    other = credentials("999988887777").get_frozen_credentials()
    assert resolver.resolve(other, "GetItem", TABLE).url == (
        "https://999988887777.ddb.us-east-1.amazonaws.com"
    )
    assert resolver.resolve(frozen(store), "GetItem", TABLE).url == (
        f"https://{ACCOUNT}.ddb.us-east-1.amazonaws.com"
    )


def test_a_table_arn_routes_to_its_account_as_in_botocore() -> None:
    # The item operations bind the ruleset's ResourceArn to TableName.
    store = make_store("us-east-1", ACCOUNT)
    arn = "arn:aws:dynamodb:us-east-1:111122223333:table/sagas"
    resolved = assert_same_as_botocore(store, table_name=arn)
    assert resolved.url == "https://111122223333.ddb.us-east-1.amazonaws.com"
    by_name = EndpointResolver(store.connection).resolve(frozen(store), "GetItem", TABLE)
    assert by_name.url == f"https://{ACCOUNT}.ddb.us-east-1.amazonaws.com"


@pytest.mark.parametrize("operation", ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"])
def test_every_item_operation_matches_botocore(operation: str) -> None:
    assert_same_as_botocore(make_store("eu-west-1", ACCOUNT), operation)


# -- what the store's transport cannot honour ------------------------------------------------


def test_another_signature_version_is_left_to_botocore() -> None:
    store = make_store("us-east-1")
    store.connection.client.meta.events.register(
        "choose-signer.dynamodb", lambda **_: "v4a", unique_id="test-v4a"
    )
    resolved = EndpointResolver(store.connection).resolve(frozen(store), "GetItem", TABLE)
    assert not resolved.supported
    assert resolved.reason == "botocore would sign with 'v4a', not 'v4'"
    assert resolved.url == "https://dynamodb.us-east-1.amazonaws.com"


def _ruleset_answers(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    """botocore's ruleset resolver answers with ``changes`` applied (a future ruleset)."""
    original = EndpointRulesetResolver.construct_endpoint

    def construct_endpoint(self: Any, *args: Any, **kwargs: Any) -> Any:
        return original(self, *args, **kwargs)._replace(**changes)

    monkeypatch.setattr(EndpointRulesetResolver, "construct_endpoint", construct_endpoint)


def test_endpoint_headers_are_left_to_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    _ruleset_answers(monkeypatch, headers={"x-amz-routing": "blue"})
    store = make_store("us-east-1")
    resolved = EndpointResolver(store.connection).resolve(frozen(store), "GetItem", TABLE)
    assert not resolved.supported
    assert resolved.reason == "the endpoint adds headers ['x-amz-routing']"
    assert botocore_request(store)[3]["x-amz-routing"] == "blue"  # botocore does send it


def test_a_sigv4a_auth_scheme_is_left_to_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    scheme = {"name": "sigv4a", "signingName": "dynamodb", "signingRegionSet": ["*"]}
    _ruleset_answers(monkeypatch, properties={"authSchemes": [scheme]})
    store = make_store("us-east-1")
    resolved = EndpointResolver(store.connection).resolve(frozen(store), "GetItem", TABLE)
    assert not resolved.supported
    assert resolved.reason is not None


def test_another_signing_name_is_left_to_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    scheme = {"name": "sigv4", "signingName": "dynamodb-next", "signingRegion": "us-east-1"}
    _ruleset_answers(monkeypatch, properties={"authSchemes": [scheme]})
    store = make_store("us-east-1")
    resolved = EndpointResolver(store.connection).resolve(frozen(store), "GetItem", TABLE)
    assert not resolved.supported
    assert resolved.reason == "botocore would sign for 'dynamodb-next'"
    assert botocore_request(store)[2] == "dynamodb-next"


def test_a_sigv4_auth_scheme_with_its_own_region_is_honoured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scheme = {"name": "sigv4", "signingName": "dynamodb", "signingRegion": "us-west-2"}
    _ruleset_answers(monkeypatch, properties={"authSchemes": [scheme]})
    resolved = assert_same_as_botocore(make_store("us-east-1"))
    assert resolved.signing_region == "us-west-2"


# -- laziness and the cache ------------------------------------------------------------------


def test_nothing_is_resolved_at_construction() -> None:
    store = make_store("us-east-1", ACCOUNT)
    resolver = EndpointResolver(store.connection)
    assert resolver.resolutions == 0
    assert store.connection._client is None
    assert resolver.lookup(credentials(ACCOUNT).get_frozen_credentials(), "GetItem", TABLE) is None
    assert store.connection._client is None


def test_one_resolution_per_distinct_input_then_the_same_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = make_store("us-east-1", ACCOUNT)
    resolver = EndpointResolver(store.connection)
    with_account = credentials(ACCOUNT).get_frozen_credentials()
    without = credentials().get_frozen_credentials()

    first = resolver.resolve(with_account, "GetItem", TABLE)
    assert resolver.resolutions == 1
    assert (
        resolver.resolve(credentials(ACCOUNT).get_frozen_credentials(), "GetItem", TABLE) is first
    )
    assert resolver.lookup(with_account, "GetItem", TABLE) is first
    assert resolver.resolutions == 1

    plain = resolver.resolve(without, "GetItem", TABLE)
    assert resolver.resolutions == 2
    assert plain.url == "https://dynamodb.us-east-1.amazonaws.com"
    assert resolver.resolve(without, "GetItem", TABLE) is plain
    resolver.resolve(with_account, "PutItem", TABLE)
    resolver.resolve(with_account, "GetItem", "other-table")
    assert resolver.resolutions == 4

    # Cached answers never reach botocore again.
    def no_more(*_: Any) -> ResolvedEndpoint:
        raise AssertionError("resolved again")

    monkeypatch.setattr(resolver, "_compute", no_more)
    assert resolver.resolve(with_account, "GetItem", TABLE) is first
    assert resolver.resolve(without, "GetItem", TABLE) is plain


def test_the_result_is_immutable() -> None:
    store = make_store("us-east-1")
    resolved = EndpointResolver(store.connection).resolve(frozen(store), "GetItem", TABLE)
    with pytest.raises(AttributeError):
        resolved.url = "https://elsewhere.test"  # type: ignore[misc]


def test_threads_missing_at_once_resolve_once() -> None:
    store = make_store("us-east-1", ACCOUNT)
    resolver = EndpointResolver(store.connection)
    start = threading.Barrier(8)
    results: list[ResolvedEndpoint] = []

    def first_request() -> None:
        start.wait()
        results.append(resolver.resolve(frozen(store), "GetItem", TABLE))

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert resolver.resolutions == 1
    assert len({id(result) for result in results}) == 1


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_endpoint, "MAX_CACHED", 3)
    store = make_store("us-east-1")
    resolver = EndpointResolver(store.connection)
    creds = frozen(store)
    for table in ("t-1", "t-2", "t-3", "t-4"):
        resolver.resolve(creds, "GetItem", table)
    assert resolver.lookup(creds, "GetItem", "t-4") is not None
    assert resolver.lookup(creds, "GetItem", "t-1") is None


def test_a_failed_resolution_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store("us-east-1")
    resolver = EndpointResolver(store.connection)

    def broken(*_: Any) -> ResolvedEndpoint:
        raise RuntimeError("ruleset exploded")

    monkeypatch.setattr(resolver, "_resolve_with_botocore", broken)
    resolved = resolver.resolve(frozen(store), "GetItem", TABLE)
    assert not resolved.supported
    assert resolved.reason == "botocore's endpoint resolution failed: ruleset exploded"
