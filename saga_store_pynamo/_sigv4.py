"""SigV4 signing of DynamoDB JSON requests, equal to botocore's ``SigV4Auth``, for less CPU.

Sans-I/O: it turns (credentials, target, body, time) into the headers to send and touches
nothing else. botocore's ``SigV4Auth.add_auth`` costs ~100 us per request, most of it spent
rebuilding the canonical request through generic header maps and deriving the signing key
with four HMACs; for one endpoint nearly all of that is constant. This signer fixes the
constant parts per endpoint and caches the derived key per (date, secret, region, service),
so a request costs two SHA-256 digests and one HMAC.

What botocore signs for DynamoDB (checked against a real client's request): every header it
has set before signing except its blacklist (``User-Agent`` ...), which for a JSON request is
``content-type;host;x-amz-date;x-amz-target`` plus ``x-amz-security-token`` when the
credentials carry a token. The payload is always hashed into the canonical request (DynamoDB
never gets ``UNSIGNED-PAYLOAD``) and no ``X-Amz-Content-SHA256`` header is sent. The
``amz-sdk-invocation-id``, ``amz-sdk-request`` and ``Content-Length`` headers are added after
signing and are not signed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Protocol
from urllib.parse import quote, urlsplit

from botocore.utils import normalize_url_path

__all__ = [
    "CONTENT_TYPE",
    "Credentials",
    "SigV4Signer",
    "format_amz_date",
    "signing_host",
    "signing_key",
]

#: The content type of DynamoDB's JSON protocol (``jsonVersion`` 1.0).
CONTENT_TYPE = "application/x-amz-json-1.0"

_ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHA256 = hashlib.sha256
_HMAC = hmac.digest

#: How many derived keys are kept. A key lives for a UTC day per secret: a process sees a
#: handful (date changes, refreshed credentials, a few regions); past the bound the cache
#: starts again, which costs four HMACs per distinct key.
MAX_CACHED_KEYS = 32

# Replaced as a whole, never mutated, so readers need no lock: a reader sees the old dict
# or the new one. Two threads missing at once both derive and one entry may be dropped;
# that costs a derivation, never a wrong key.
_keys: dict[tuple[str, str, str, str], bytes] = {}


class Credentials(Protocol):
    """Frozen credentials, as ``botocore.credentials.Credentials.get_frozen_credentials()``."""

    @property
    def access_key(self) -> str: ...
    @property
    def secret_key(self) -> str: ...
    @property
    def token(self) -> str | None: ...


def _derive_signing_key(secret_key: str, date_stamp: str, region: str, service: str) -> bytes:
    """SigV4's kSigning: four chained HMAC-SHA256s (uncached; tests count the calls)."""
    k_date = _HMAC(f"AWS4{secret_key}".encode(), date_stamp.encode(), "sha256")
    k_region = _HMAC(k_date, region.encode(), "sha256")
    k_service = _HMAC(k_region, service.encode(), "sha256")
    return _HMAC(k_service, b"aws4_request", "sha256")


def signing_key(secret_key: str, date_stamp: str, region: str, service: str) -> bytes:
    """The SigV4 signing key for a UTC day (``YYYYMMDD``), cached per its four inputs.

    The secret is part of the cache key, so refreshed credentials get a key of their own
    at once and never reuse the previous secret's.
    """
    global _keys
    cache_key = (date_stamp, secret_key, region, service)
    key = _keys.get(cache_key)
    if key is None:
        key = _derive_signing_key(secret_key, date_stamp, region, service)
        cache = _keys
        _keys = {**cache, cache_key: key} if len(cache) < MAX_CACHED_KEYS else {cache_key: key}
    return key


# (whole second, its X-Amz-Date): requests within one second reuse the formatting.
_last_date: tuple[int, str] = (-1, "")


def format_amz_date(timestamp: float) -> str:
    """``YYYYMMDDTHHMMSSZ`` for a POSIX time, truncated to the second as botocore does."""
    global _last_date
    second = int(timestamp)
    cached = _last_date
    if cached[0] == second:
        return cached[1]
    text = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
    _last_date = (second, text)
    return text


def signing_host(url: str) -> str:
    """The ``Host`` value botocore signs for ``url``: lower case, the port only when it is
    not the scheme's default, no user info, IPv6 literals in brackets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    return host


def _trim(value: str) -> str:
    # SigV4's Trimall, as botocore applies it to every signed header value.
    return " ".join(value.split())


class SigV4Signer:
    """Signs DynamoDB JSON POST requests for one endpoint, as botocore's ``SigV4Auth`` does.

    Holds no per-request state: one signer serves all threads and event loops.

    :param region: the signing region (``us-east-1``).
    :param host: the ``Host`` header value, with the port when it is not the default one;
        ``signing_host(endpoint_url)`` gives it.
    :param service: the signing name, ``dynamodb``.
    :param path: the request path, ``/`` unless the endpoint URL has a path.
    :param content_type: the ``Content-Type`` sent and signed.
    """

    __slots__ = (
        "_canonical_head",
        "_content_type",
        "_host",
        "_scope_tail",
        "content_type",
        "host",
        "path",
        "region",
        "service",
    )

    def __init__(
        self,
        region: str,
        host: str,
        *,
        service: str = "dynamodb",
        path: str = "/",
        content_type: str = CONTENT_TYPE,
    ) -> None:
        self.region = region
        self.service = service
        self.host = host
        self.path = path
        self.content_type = content_type
        self._host = _trim(host)
        self._content_type = _trim(content_type)
        # Method, path and (empty) query string of the canonical request, as botocore
        # normalises the path.
        canonical_path = quote(normalize_url_path(path), safe="/~")
        self._canonical_head = f"POST\n{canonical_path}\n\n"
        self._scope_tail = f"/{region}/{service}/aws4_request"

    def sign(
        self,
        credentials: Credentials,
        target: str,
        body: bytes,
        timestamp: float | None = None,
    ) -> dict[str, str]:
        """The headers to send with ``body``, ``Authorization`` included.

        :param credentials: frozen credentials (``get_frozen_credentials()``), read once.
        :param target: the ``X-Amz-Target`` (``DynamoDB_20120810.GetItem``).
        :param body: the exact bytes that will be sent.
        :param timestamp: POSIX time of signing; now when omitted.
        :returns: ``Host``, ``X-Amz-Date``, ``X-Amz-Target``, ``Content-Type``,
            ``X-Amz-Security-Token`` (only with a token) and ``Authorization``. The HTTP
            layer adds ``Content-Length`` (and may add ``User-Agent``), which are not signed,
            and must send this ``Host`` rather than one of its own.
        """
        amz_date = format_amz_date(time.time() if timestamp is None else timestamp)
        date_stamp = amz_date[:8]
        token = credentials.token
        target_value = _trim(target)
        if token:
            token_value = _trim(token)
            canonical_headers = (
                f"content-type:{self._content_type}\nhost:{self._host}\n"
                f"x-amz-date:{amz_date}\nx-amz-security-token:{token_value}\n"
                f"x-amz-target:{target_value}\n\n"
                "content-type;host;x-amz-date;x-amz-security-token;x-amz-target\n"
            )
            signed_headers = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        else:
            canonical_headers = (
                f"content-type:{self._content_type}\nhost:{self._host}\n"
                f"x-amz-date:{amz_date}\nx-amz-target:{target_value}\n\n"
                "content-type;host;x-amz-date;x-amz-target\n"
            )
            signed_headers = "content-type;host;x-amz-date;x-amz-target"
        canonical_request = self._canonical_head + canonical_headers + _SHA256(body).hexdigest()
        credential_scope = date_stamp + self._scope_tail
        string_to_sign = (
            f"{_ALGORITHM}\n{amz_date}\n{credential_scope}\n"
            + _SHA256(canonical_request.encode()).hexdigest()
        )
        key = signing_key(credentials.secret_key, date_stamp, self.region, self.service)
        signature = _HMAC(key, string_to_sign.encode(), "sha256").hex()
        headers = {
            "Host": self.host,
            "X-Amz-Date": amz_date,
            "X-Amz-Target": target,
            "Content-Type": self.content_type,
        }
        if token:
            headers["X-Amz-Security-Token"] = token
        headers["Authorization"] = (
            f"{_ALGORITHM} Credential={credentials.access_key}/{credential_scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )
        return headers
