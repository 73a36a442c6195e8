"""Every DynamoDB response is checked against its ``x-amz-crc32`` header before it is read.

DynamoDB sends the CRC32 of each response body in ``x-amz-crc32``. botocore checks it only
in its legacy retry mode; in the standard mode with one attempt (the store's setting, so that
the store does its own retries) a response whose body was corrupted on the way is parsed and
returned as a success, and a corrupted state would be loaded, or a corrupted old item would
decide a conflict. The store hooks botocore's ``before-parse`` event, so a mismatch raises
``ChecksumError`` before anything is parsed; the store retries it like a dropped connection
(the request reached DynamoDB, so a write's retry is resolved by its write token).
"""

from __future__ import annotations

import zlib
from typing import Any

from botocore.exceptions import ChecksumError

__all__ = ["check_crc32", "checked_client"]

_MARK = "_saga_store_checks_crc32"


def check_crc32(response_dict: dict[str, Any], **_: Any) -> None:
    """Raise ``ChecksumError`` if the body does not match its ``x-amz-crc32`` header.

    A response without the header (an emulator that does not send it) is not checked.
    """
    expected = response_dict["headers"].get("x-amz-crc32")
    if expected is None:
        return
    actual = zlib.crc32(response_dict["body"]) & 0xFFFFFFFF
    if expected != str(actual):
        raise ChecksumError(
            checksum_type="crc32", expected_checksum=expected, actual_checksum=actual
        )


def checked_client(client: Any) -> Any:
    """``client`` with the CRC32 check installed on its service's answers (once per botocore
    client): DynamoDB's, and DynamoDB Streams', which carry the same header."""
    if not getattr(client, _MARK, False):
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-parse.{service}", check_crc32)
        setattr(client, _MARK, True)
    return client
