"""The store's SigV4 signer signs exactly as botocore does, and derives each key once.

botocore reads the time through ``botocore.auth.get_current_datetime``; the tests replace it
so that both signers sign the same instant.
"""

from __future__ import annotations

import calendar
import datetime
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import botocore.auth
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import ReadOnlyCredentials
from hypothesis import example, given, settings
from hypothesis import strategies as st

from saga_store_pynamo import _sigv4
from saga_store_pynamo._sigv4 import (
    CONTENT_TYPE,
    MAX_CACHED_KEYS,
    SigV4Signer,
    format_amz_date,
    signing_host,
    signing_key,
)


def _utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float:
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


#: Deterministic (CI runs the same examples) and no example database in the repository.
PROPERTY = settings(deadline=None, derandomize=True, database=None, print_blob=False)


# Instants where the date stamp (and so the key) changes: midnight, month, year, leap day.
BOUNDARIES = [
    _utc(2026, 11, 30, 0, 0, 0),
    _utc(2026, 12, 1, 0, 0, 0),
    _utc(2027, 1, 1, 0, 0, 0),
    _utc(2028, 2, 29, 0, 0, 0),
    _utc(2028, 3, 1, 0, 0, 0),
    _utc(2099, 12, 31, 23, 59, 59),
]
TARGETS = [
    f"DynamoDB_20120810.{op}"
    for op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan")
]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1", "local"]
HOSTS = [
    "dynamodb.us-east-1.amazonaws.com",
    "localhost",
    "127.0.0.1",
    "[::1]",
    "DynamoDB.Example.COM",
    "012345678901.ddb.eu-west-1.amazonaws.com",
]

ascii_text = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
# Spaces are drawn often: SigV4 trims and collapses them in signed values, not in sent ones.
header_text = st.text(
    st.one_of(st.just(" "), st.characters(min_codepoint=32, max_codepoint=126)),
    min_size=1,
    max_size=60,
)
# Clock readings at microsecond resolution, as datetime holds them (a float a fraction of a
# microsecond below a whole second is rounded up by datetime.fromtimestamp).
MICROS = 1_000_000
times = st.one_of(
    st.integers(min_value=0, max_value=int(_utc(2100, 1, 1, 0, 0, 0)) * MICROS),
    st.sampled_from(BOUNDARIES).flatmap(
        lambda b: st.integers(min_value=int(b - 2.5) * MICROS, max_value=int(b + 2.5) * MICROS)
    ),
).map(lambda micros: micros / MICROS)
urls = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}{'' if port is None else f':{port}'}/",
    st.sampled_from(["http", "https"]),
    st.sampled_from(HOSTS),
    st.one_of(st.none(), st.sampled_from([80, 443, 8000, 4566]), st.integers(1, 65535)),
)
bodies = st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(lambda t: t.encode()))
credentials = st.builds(
    ReadOnlyCredentials,
    ascii_text,
    st.text(min_size=1, max_size=60),  # secrets are ASCII in practice; UTF-8 is what is hashed
    st.one_of(st.none(), st.just(""), header_text, st.sampled_from(["IQoJb3JpZ2luX2VjE/a+b=="])),
)


def _at(timestamp: float) -> Any:
    """Make botocore's clock read ``timestamp``, as its own tests freeze it."""
    now = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).replace(tzinfo=None)
    return mock.patch.object(botocore.auth, "get_current_datetime", return_value=now)


def botocore_sign(
    creds: ReadOnlyCredentials, region: str, url: str, target: str, body: bytes, timestamp: float
) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"X-Amz-Target": target, "Content-Type": CONTENT_TYPE},
    )
    with _at(timestamp):
        SigV4Auth(creds, "dynamodb", region).add_auth(request)
    return dict(request.headers.items())


@settings(PROPERTY, max_examples=400)
@given(
    creds=credentials,
    region=st.one_of(
        st.sampled_from(REGIONS), st.from_regex(r"[a-z]{2}-[a-z]{2,9}-[0-9]", fullmatch=True)
    ),
    url=urls,
    target=st.one_of(st.sampled_from(TARGETS), header_text),
    body=bodies,
    timestamp=times,
)
@example(  # one second either side of midnight at a year's end, with a token
    creds=ReadOnlyCredentials("AKIDEXAMPLE", "secret", "token"),
    region="us-east-1",
    url="https://dynamodb.us-east-1.amazonaws.com/",
    target=TARGETS[0],
    body=b"{}",
    timestamp=_utc(2026, 12, 31, 23, 59, 59) + 0.999,
)
@example(
    creds=ReadOnlyCredentials("AKIDEXAMPLE", "secret", "token"),
    region="us-east-1",
    url="https://dynamodb.us-east-1.amazonaws.com/",
    target=TARGETS[0],
    body=b"{}",
    timestamp=_utc(2027, 1, 1, 0, 0, 0),
)
@example(  # spaces to trim and collapse in the signed token and target
    creds=ReadOnlyCredentials("AKIDEXAMPLE", "secret", "  tok  en "),
    region="eu-west-1",
    url="http://localhost:8000/",
    target=" DynamoDB_20120810.GetItem   x ",
    body=b"{}",
    timestamp=BOUNDARIES[0],
)
def test_headers_equal_botocore(
    creds: ReadOnlyCredentials, region: str, url: str, target: str, body: bytes, timestamp: float
) -> None:
    expected = botocore_sign(creds, region, url, target, body, timestamp)
    signer = SigV4Signer(region, signing_host(url))
    headers = signer.sign(creds, target, body, timestamp)
    # Every header botocore set, with the same value; plus the Host it signed.
    assert {k: v for k, v in headers.items() if k != "Host"} == expected
    assert headers["Host"] == botocore.auth._host_from_url(url)
    assert ("X-Amz-Security-Token" in headers) == bool(creds.token)


@pytest.mark.parametrize(
    "url",
    [
        "https://dynamodb.us-east-1.amazonaws.com",
        "https://dynamodb.us-east-1.amazonaws.com:443/",
        "http://localhost:80/",
        "http://localhost:443/",
        "https://localhost:80/",
        "http://LOCALHOST:8000/",
        "http://user:pw@localhost:8000/",
        "http://[::1]:8000/",
        "https://[2001:db8::1]/",
    ],
)
def test_signing_host_equals_botocore(url: str) -> None:
    assert signing_host(url) == botocore.auth._host_from_url(url)


@pytest.mark.parametrize("path", ["/", "", "/prefix", "/a//b/../c/", "/sp ace/~x"])
def test_path_is_normalised_as_botocore(path: str) -> None:
    creds = ReadOnlyCredentials("AKID", "secret", None)
    url = "http://localhost:8000" + path
    expected = botocore_sign(creds, "us-east-1", url, TARGETS[0], b"{}", BOUNDARIES[0])
    headers = SigV4Signer("us-east-1", "localhost:8000", path=path).sign(
        creds, TARGETS[0], b"{}", BOUNDARIES[0]
    )
    assert headers["Authorization"] == expected["Authorization"]


@settings(PROPERTY, max_examples=200)
@given(timestamp=times)
def test_amz_date_as_botocore_formats_it(timestamp: float) -> None:
    now = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    assert format_amz_date(timestamp) == now.strftime(botocore.auth.SIGV4_TIMESTAMP)


def test_signs_now_without_a_timestamp() -> None:
    creds = ReadOnlyCredentials("AKID", "secret", None)
    before = datetime.datetime.now(datetime.timezone.utc).strftime(botocore.auth.SIGV4_TIMESTAMP)
    headers = SigV4Signer("us-east-1", "localhost").sign(creds, TARGETS[0], b"{}")
    after = datetime.datetime.now(datetime.timezone.utc).strftime(botocore.auth.SIGV4_TIMESTAMP)
    assert before <= headers["X-Amz-Date"] <= after


# --- what botocore's client really sends ---------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@pytest.mark.parametrize(
    ("endpoint", "token"),
    [
        (None, None),
        (None, "FwoGZXIvYXdzEBYaDH"),
        ("http://localhost:8000", None),
        ("http://127.0.0.1:4566", "tok"),
        ("https://dynamodb.eu-west-1.amazonaws.com:443", None),
    ],
)
def test_a_botocore_client_signs_the_same_headers(endpoint: str | None, token: str | None) -> None:
    """A real client's request: the signer covers every header it signs, and nothing else."""
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name="eu-west-1",
        endpoint_url=endpoint,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
    )
    sent: list[Any] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {}, _Raw(b"{}"))

    client.meta.events.register("before-send.dynamodb", capture)
    with _at(BOUNDARIES[1] + 0.5):
        client.get_item(TableName="t", Key={"pk": {"S": "a"}})
    (request,) = sent
    creds = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    headers = SigV4Signer("eu-west-1", signing_host(request.url)).sign(
        creds, "DynamoDB_20120810.GetItem", request.body, BOUNDARIES[1] + 0.5
    )
    sent_headers = {
        k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
    }
    assert headers["Authorization"] == sent_headers["Authorization"]
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert signed == (
        ["content-type", "host", "x-amz-date", "x-amz-security-token", "x-amz-target"]
        if token
        else ["content-type", "host", "x-amz-date", "x-amz-target"]
    )
    for name, value in headers.items():
        if name != "Host":  # urllib3 adds it from the URL
            assert sent_headers[name] == value
    assert "X-Amz-Content-SHA256" not in sent_headers


# --- the key cache -------------------------------------------------------------------------


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str, str]]:
    """An empty key cache, and the list of key derivations made from now on."""
    calls: list[tuple[str, str, str, str]] = []
    derive = _sigv4._derive_signing_key

    def counting(secret: str, date: str, region: str, service: str) -> bytes:
        calls.append((secret, date, region, service))
        return derive(secret, date, region, service)

    monkeypatch.setattr(_sigv4, "_keys", {})
    monkeypatch.setattr(_sigv4, "_derive_signing_key", counting)
    return calls


def _reference_key(secret: str, date: str, region: str, service: str) -> bytes:
    auth = SigV4Auth(ReadOnlyCredentials("AKID", secret, None), service, region)
    k = auth._sign(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        k = auth._sign(k, part)
    return bytes(k)


def test_key_is_derived_once_per_day_and_secret(derivations: list[Any]) -> None:
    signer = SigV4Signer("eu-west-1", "localhost:8000")
    old, new = ReadOnlyCredentials("AKID", "old", None), ReadOnlyCredentials("AKID", "new", "t")
    day = BOUNDARIES[1]
    for i in range(50):
        signer.sign(old, TARGETS[0], b"{}", day - 3600 + i)
    assert derivations == [("old", "20261130", "eu-west-1", "dynamodb")]
    signer.sign(old, TARGETS[0], b"{}", day)  # midnight: a new date stamp
    assert len(derivations) == 2
    assert derivations[1][1] == "20261201"
    signer.sign(new, TARGETS[0], b"{}", day + 1)  # refreshed credentials, same day
    assert derivations[2][0] == "new"
    for _ in range(10):
        signer.sign(new, TARGETS[0], b"{}", day + 2)
        signer.sign(old, TARGETS[0], b"{}", day + 2)  # both secrets stay cached
    assert len(derivations) == 3
    SigV4Signer("us-east-1", "localhost:8000").sign(old, TARGETS[0], b"{}", day)
    assert len(derivations) == 4  # another region is another key


def test_cached_key_is_the_right_one(derivations: list[Any]) -> None:
    first = signing_key("secret", "20261130", "eu-west-1", "dynamodb")
    assert first == signing_key("secret", "20261130", "eu-west-1", "dynamodb")
    assert first == _reference_key("secret", "20261130", "eu-west-1", "dynamodb")
    assert len(derivations) == 1
    other_day = signing_key("secret", "20261201", "eu-west-1", "dynamodb")
    other_secret = signing_key("secret2", "20261130", "eu-west-1", "dynamodb")
    assert len({first, other_day, other_secret}) == 3
    assert other_day == _reference_key("secret", "20261201", "eu-west-1", "dynamodb")
    assert other_secret == _reference_key("secret2", "20261130", "eu-west-1", "dynamodb")


def test_cache_is_bounded(derivations: list[Any]) -> None:
    for i in range(MAX_CACHED_KEYS * 3):
        key = signing_key(f"secret{i}", "20261130", "eu-west-1", "dynamodb")
        assert key == _reference_key(f"secret{i}", "20261130", "eu-west-1", "dynamodb")
        assert len(_sigv4._keys) <= MAX_CACHED_KEYS
    assert len(derivations) == MAX_CACHED_KEYS * 3


def test_threads_sharing_the_cache_get_the_right_keys(derivations: list[Any]) -> None:
    # More secrets than the cache holds, so threads replace the dict under each other.
    secrets = [f"secret{i}" for i in range(MAX_CACHED_KEYS * 2)]
    expected = {s: _reference_key(s, "20261130", "eu-west-1", "dynamodb") for s in secrets}
    wrong: list[str] = []
    start = threading.Barrier(8)

    def work(offset: int) -> None:
        start.wait()
        for i in range(2000):
            secret = secrets[(offset * 7 + i) % len(secrets)]
            if signing_key(secret, "20261130", "eu-west-1", "dynamodb") != expected[secret]:
                wrong.append(secret)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert len(_sigv4._keys) <= MAX_CACHED_KEYS
