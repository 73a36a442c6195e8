"""``saga-store local``: the official DynamoDB Local in the foreground for development, through
the public launcher (``saga_store_pynamo.dynamodb_local``), stopped by Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from ._cli_options import CommandError
from ._connection import configured_region

DEFAULT_LOCAL_PORT = 8000
"""``saga-store local``'s port: DynamoDB Local's own default, so the endpoint stays the same
from one run to the next."""

LOCAL_REGION = "us-east-1"
"""The region ``saga-store local`` suggests when none is configured (any region works)."""


def port_number(text: str) -> int:
    """``--port``: a port number from 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}")
    return port


def cmd_local(args: argparse.Namespace, out: TextIO) -> int:
    """Run DynamoDB Local in the foreground until SIGINT or SIGTERM; exit 0 when stopped so."""
    from .dynamodb_local import DynamoDBLocal, DynamoDBLocalUnavailable, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        raise CommandError(reason)
    data_dir = _local_data_dir(args.data_dir)
    if args.port and _port_in_use(args.port):
        raise CommandError(
            f"--port {args.port}: the port is in use (another DynamoDB Local?); pass --port N "
            "with a free port, or --port 0 to pick one"
        )
    server = DynamoDBLocal(port=args.port or None, shared_db=True, data_dir=data_dir)
    # SIGTERM (docker stop, systemd, kill) stops the server as Ctrl-C does; by default it
    # would end Python at once and leave the Java process behind. SIGINT is set too: a shell
    # starts a background job with SIGINT ignored, and Python then never raises on it.
    previous = {sig: signal.signal(sig, _interrupt) for sig in _STOP_SIGNALS}
    try:
        sys.stderr.write("saga-store: starting DynamoDB Local (the first start installs it)\n")
        sys.stderr.flush()
        try:
            server.start()
        except DynamoDBLocalUnavailable as exc:
            raise CommandError(_launch_failure(str(exc))) from exc
        _print_local_banner(server.endpoint, server.pid, data_dir, out)
        code = server.wait()
        raise CommandError(
            f"DynamoDB Local exited by itself with exit status {code}; start it again with "
            "saga-store local"
        )
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not interrupt the stop and leave Java running.
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        try:
            server.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    out.write("DynamoDB Local stopped\n")
    out.flush()
    return 0


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` inside the block.

    SIGTERM (docker stop, systemd, kill) would otherwise end Python at once, and a shell
    starts a background job with SIGINT ignored, so Python would never raise on Ctrl-C.
    """
    previous = {sig: signal.signal(sig, _interrupt) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _local_data_dir(text: str | None) -> Path | None:
    if text is None:
        return None
    path = Path(text).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--data-dir {text!r}: cannot use it as a directory: {exc}") from exc
    return path.resolve()


def _port_in_use(port: int) -> bool:
    """Whether binding ``port`` on every interface, as DynamoDB Local does, would fail."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return True
    return False


def _launch_failure(message: str) -> str:
    """The launcher's error in one line: its first line, and the last line of Java's log."""
    first, *rest = message.strip().splitlines() or ["DynamoDB Local did not start"]
    log = [line.strip() for line in rest if line.strip()]
    first = first.replace("pass port=None", "pass --port 0").rstrip(" .:")
    return f"{first} (last log line: {log[-1]})" if log else first


def _print_local_banner(endpoint: str, pid: int | None, data_dir: Path | None, out: TextIO) -> None:
    storage = f"tables kept in {data_dir}" if data_dir else "in memory (gone when it stops)"
    lines = [
        f"DynamoDB Local is running at {endpoint}",
        f"  Java process {pid}; {storage}; one database for every access key and region",
        "Point the saga-store command and your application at it (in another shell):",
        f"  export SAGA_STORE_ENDPOINT={endpoint}",
        f"  export AWS_ENDPOINT_URL_DYNAMODB={endpoint}",
    ]
    if not configured_region():
        lines.append(f"  export AWS_DEFAULT_REGION={LOCAL_REGION}")
    if not _credentials_configured():
        lines.append("  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local  # any value")
    lines.append("Stop it with Ctrl-C.")
    out.write("\n".join(lines) + "\n")
    out.flush()


def _credentials_configured() -> bool:
    """Whether this environment names credentials (keys, a profile or a credentials file)."""
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return True
    shared = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    return Path(shared).expanduser().is_file()
