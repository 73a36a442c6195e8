"""Where the asyncio store's client CPU goes with 64 coroutines: cProfile over the run.

::

    python -m benchmarks.aio_profile                 # get_by_id and update, ~1 min
    python -m benchmarks.aio_profile --ops insert,get_by_id,update --calls 3200

On DynamoDB Local (needs Java 17+ and npm, as for the benchmark), for each call: the
asyncio store on its default transport (``store-aio``) and pydynox's async client make
``--calls`` calls, ``--coroutines`` at once on one event loop, first without a profiler: CPU
per call of the whole process (``time.process_time()``) and of the event loop's thread
alone (``time.thread_time()``; the rest is the client's other threads, pydynox's Rust
runtime), then under cProfile. The profiled self time (time blocked in epoll left out;
built-ins and standard-library functions counted for the layer that called them) is
grouped into layers (the store's steps, item codec, signing, wire codec, the aiohttp glue,
aiohttp itself, the asyncio loop, socket calls) and the top functions are listed. Prints
Markdown.

cProfile adds a fixed cost to every Python function call, so it inflates code that makes
many small calls: the shares are of the profiled run's self time, the µs those shares of the
unprofiled event-loop CPU per call. Read them as where the time goes, not to the microsecond.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Sequence
from typing import Any

from .aio import PydynoxAsyncDriver, StoreAioDriver, aio_problem
from .backends import dynamodb_local, dynamodb_local_problem, setup_fixture
from .drivers import AsyncDriver, pydynox_version
from .measure import run_coroutines
from .profiling import short_name

__all__ = ["main"]

#: (path fragment, layer) checked in order against a Python function's file.
_FILE_LAYERS: tuple[tuple[str, str], ...] = (
    ("/saga_store_pynamo/_aiohttp.py", "store: aiohttp transport glue (`_aiohttp.py`)"),
    ("/saga_store_pynamo/_sigv4.py", "store: SigV4 signing"),
    ("/hmac.py", "store: SigV4 signing"),
    ("/saga_store_pynamo/_wire.py", "store: JSON wire codec, CRC32"),
    ("/saga_store_pynamo/_checksum.py", "store: JSON wire codec, CRC32"),
    ("/json/", "store: JSON wire codec, CRC32"),
    ("/saga_store_pynamo/_codec.py", "store: item codec (state to item and back)"),
    ("/saga_store_pynamo/_endpoint.py", "store: endpoint routing, credentials"),
    ("/saga_store_pynamo/_transport.py", "store: endpoint routing, credentials"),
    ("/saga_store_pynamo/_http.py", "store: endpoint routing, credentials"),
    ("/botocore/", "store: endpoint routing, credentials"),
    ("/saga_store_pynamo/aio.py", "store: asyncio steps runner and dispatch"),
    ("/saga_store_pynamo/_dispatch.py", "store: asyncio steps runner and dispatch"),
    ("/saga_store_pynamo/retry.py", "store: asyncio steps runner and dispatch"),
    ("/saga_store_pynamo/", "store: steps, request building, state handling"),
    ("/pynamodb/", "PynamoDB: attributes (descriptors, serialize)"),
    ("/aiohttp/", "aiohttp: client, connector, request and response"),
    ("/yarl/", "aiohttp: client, connector, request and response"),
    ("/multidict/", "aiohttp: client, connector, request and response"),
    ("/propcache/", "aiohttp: client, connector, request and response"),
    ("/aiosignal/", "aiohttp: client, connector, request and response"),
    ("/asyncio/", "asyncio: event loop, tasks, futures"),
    ("/selectors.py", "asyncio: event loop, tasks, futures"),
    ("/pydynox/", "pydynox: Python wrapper"),
    ("/opentelemetry/", "pydynox: Python wrapper"),
    ("/benchmarks/", "benchmark loop"),
)
#: (fragment of a built-in's name, layer) for C functions (cProfile files them under "~").
_BUILTIN_LAYERS: tuple[tuple[str, str], ...] = (
    ("socket", "syscalls: socket send and receive, epoll"),
    ("epoll", "syscalls: socket send and receive, epoll"),
    ("_hashlib", "store: SigV4 signing"),
    ("hmac", "store: SigV4 signing"),
    ("json", "store: JSON wire codec, CRC32"),
    ("zlib", "store: JSON wire codec, CRC32"),
    ("_asyncio", "asyncio: event loop, tasks, futures"),
    ("pydynox_core", "pydynox: Rust core, called from Python (the call itself)"),
    ("builtins.pydynox", "pydynox: Rust core, called from Python (the call itself)"),
)
_OTHER = "other (standard library, built-ins)"


def _layer(filename: str, function: str) -> str:
    path = filename.replace("\\", "/")
    if path == "~":
        for fragment, layer in _BUILTIN_LAYERS:
            if fragment in function:
                return layer
        return _OTHER
    for fragment, layer in _FILE_LAYERS:
        if fragment in path:
            return layer
    return _OTHER


#: cProfile's name for the call that blocks in epoll: time waiting (for the server, and for
#: pydynox while its Rust threads work), not the profiled thread's CPU.
_WAIT = "<method 'poll' of 'select.epoll' objects>"


def _profile(driver: AsyncDriver, op: str, calls: int, coroutines: int) -> dict[str, Any]:
    """CPU per call unprofiled (the whole process, and the event loop's thread alone), then
    the same calls under cProfile: the figures to print."""
    call = driver.function(op)
    run_coroutines(call, driver.inputs(op, 2 * coroutines), coroutines, driver)  # warm-up
    inputs = driver.inputs(op, calls)
    loop_cpu = time.thread_time()  # the loop runs in this thread
    plain = run_coroutines(call, inputs, coroutines, driver)
    loop_cpu = time.thread_time() - loop_cpu
    inputs = driver.inputs(op, calls)
    profiler = cProfile.Profile()
    profiler.enable()
    run_coroutines(call, inputs, coroutines, driver)
    profiler.disable()
    raw: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    layers: dict[str, float] = {}
    functions = []
    for (filename, line, function), (_, ncalls, tottime, _, callers) in raw.items():
        if function == _WAIT:
            continue
        name = function if filename == "~" else short_name((filename, function, line))
        functions.append((tottime, ncalls, name))
        layer = _layer(filename, function)
        if layer != _OTHER:
            layers[layer] = layers.get(layer, 0.0) + tottime
            continue
        # A built-in or standard-library function counts for the layer that called it.
        for (c_file, _, c_function), caller in callers.items():
            c_layer = _layer(c_file, c_function)
            layers[c_layer] = layers.get(c_layer, 0.0) + caller[2]
    functions.sort(reverse=True)
    return {
        "cpu_us": plain.cpu_per_call_us,
        "loop_us": loop_cpu / calls * 1e6,
        "rate": plain.calls_per_second,
        "total": sum(layers.values()),
        "layers": layers,
        "functions": functions,
        "calls": calls,
    }


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _report(name: str, op: str, figures: dict[str, Any], top: int) -> list[str]:
    cpu, total, calls = figures["cpu_us"], figures["total"], figures["calls"]
    loop = figures["loop_us"]
    lines = [
        f"#### `{name}` `{op}`",
        "",
        f"Unprofiled: {cpu:,.0f} µs of CPU per call (the process), of which "
        f"{figures['loop_us']:,.0f} µs in the event loop's thread and "
        f"{max(cpu - figures['loop_us'], 0):,.0f} µs in other threads; "
        f"{figures['rate']:,.0f} calls/s. Under cProfile, the self time (time blocked in "
        "epoll left out; built-ins and standard-library functions counted for their caller's "
        "layer), as shares and as those shares of the event loop thread's CPU:",
        "",
    ]
    rows = [
        [layer, f"{seconds / total:.0%}", f"{seconds / total * loop:,.0f}"]
        for layer, seconds in sorted(figures["layers"].items(), key=lambda item: -item[1])
        if seconds / total >= 0.005
    ]
    lines += [*_table(["layer", "share of self time", "≈ µs/call"], rows), ""]
    rows = [
        [
            f"`{function}`",
            f"{ncalls / calls:.2g}",
            f"{tottime / total:.1%}",
            f"{tottime / total * loop:,.1f}",
        ]
        for tottime, ncalls, function in figures["functions"][:top]
    ]
    lines += [*_table(["function", "calls per call", "self", "≈ µs/call"], rows), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Profile ``store-aio`` (and pydynox async) on DynamoDB Local; print Markdown."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.aio_profile")
    parser.add_argument("--ops", default="get_by_id,update", help="calls to profile, by comma")
    parser.add_argument("--calls", type=int, default=3200, help="calls per profiled run")
    parser.add_argument("--coroutines", type=int, default=64, help="coroutines at once")
    parser.add_argument("--top", type=int, default=15, help="functions listed per profile")
    args = parser.parse_args(argv)
    problem = dynamodb_local_problem() or aio_problem()
    if problem is not None:
        print(f"cannot profile: {problem}", file=sys.stderr)
        return 1
    lines = []
    with dynamodb_local() as backend:
        fixture = setup_fixture(backend)
        drivers: list[AsyncDriver] = [StoreAioDriver(fixture, args.coroutines)]
        if pydynox_version() is not None:
            drivers.append(PydynoxAsyncDriver(fixture, args.coroutines))
        try:
            for op in args.ops.split(","):
                for driver in drivers:
                    print(f"profiling {driver.name} {op}", file=sys.stderr, flush=True)
                    figures = _profile(driver, op, args.calls, args.coroutines)
                    lines += _report(driver.name, op, figures, args.top)
        finally:
            for driver in drivers:
                driver.close()
            fixture.drop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
