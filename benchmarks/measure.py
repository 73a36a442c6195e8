"""Timing: calls in one thread or many (or as many coroutines on one event loop), interleaved
rounds, and the figures drawn from them."""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .common import MEASURE_ORDER, BenchmarkError
from .drivers import AsyncCall, AsyncDriver, Call, Driver

__all__ = [
    "Results",
    "Sample",
    "Settings",
    "measure_backend",
    "run_coroutines",
    "run_serial",
    "run_threaded",
]


@dataclasses.dataclass(frozen=True)
class Sample:
    """One timed run of ``calls`` calls."""

    calls: int
    wall: float  # seconds
    cpu: float  # seconds of time.process_time(): every thread of this process
    requests: int | None  # HTTP requests counted, None when not observable

    @property
    def cpu_per_call_us(self) -> float:
        """Process CPU time per call, in microseconds."""
        return self.cpu / self.calls * 1e6

    @property
    def calls_per_second(self) -> float:
        """Calls completed per second of wall time."""
        return self.calls / self.wall

    @property
    def requests_per_call(self) -> float | None:
        """HTTP requests per call, when counted."""
        return None if self.requests is None else self.requests / self.calls


@dataclasses.dataclass(frozen=True)
class Settings:
    """How much to measure."""

    rounds: int
    serial_calls: int  # calls per one-thread sample
    threads: int  # threads of the threaded samples (coroutines, for asyncio clients)
    threaded_calls: int  # calls per many-thread sample (all threads together)
    warmup_calls: int


def run_serial(call: Call, inputs: Sequence[Any], driver: Driver) -> Sample:
    """Make one call per input in this thread."""
    if driver.counter is not None:
        driver.counter.take()
    wall, cpu = time.perf_counter(), time.process_time()
    for item in inputs:
        call(item)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    requests = None if driver.counter is None else driver.counter.take()
    return Sample(len(inputs), wall, cpu, requests)


def run_threaded(call: Call, inputs: Sequence[Any], threads: int, driver: Driver) -> Sample:
    """Make one call per input from ``threads`` threads at once (inputs dealt round-robin)."""
    shares = [list(inputs[i::threads]) for i in range(threads)]
    start = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work(share: list[Any]) -> None:
        start.wait()
        try:
            for item in share:
                call(item)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(share,), daemon=True) for share in shares]
    for worker in workers:
        worker.start()
    if driver.counter is not None:
        driver.counter.take()
    start.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.join()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    requests = None if driver.counter is None else driver.counter.take()
    if errors:
        raise BenchmarkError(f"{driver.name}: a call failed: {errors[0]!r}") from errors[0]
    return Sample(len(inputs), wall, cpu, requests)


def run_coroutines(
    call: AsyncCall, inputs: Sequence[Any], concurrency: int, driver: AsyncDriver
) -> Sample:
    """Make one call per input from ``concurrency`` coroutines at once on the driver's event
    loop (each takes the next input when its call ends). ``time.process_time()`` counts every
    thread of the process, so a client's own threads (a thread pool, a Rust runtime) are in
    its CPU."""

    async def run() -> Sample:
        pending = iter(inputs)

        async def work() -> None:
            for item in pending:
                await call(item)

        workers = [work() for _ in range(min(concurrency, len(inputs)))]
        if driver.counter is not None:
            driver.counter.take()
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*workers)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        requests = None if driver.counter is None else driver.counter.take()
        return Sample(len(inputs), wall, cpu, requests)

    return driver.loop.run_until_complete(run())


def _run(driver: Driver, call: Any, inputs: Sequence[Any], threads: int) -> Sample:
    """One sample: ``threads`` coroutines for an asyncio driver, else threads (1: this one)."""
    if isinstance(driver, AsyncDriver):
        return run_coroutines(call, inputs, threads, driver)
    if threads == 1:
        return run_serial(call, inputs, driver)
    return run_threaded(call, inputs, threads, driver)


@dataclasses.dataclass
class Results:
    """Every sample of one backend: ``samples[(op, client, threads)]``, one per round."""

    backend: str
    clients: list[str]
    threads: int
    samples: dict[tuple[str, str, int], list[Sample]] = dataclasses.field(default_factory=dict)
    unsupported: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)

    def get(self, op: str, client: str, threads: int) -> list[Sample]:
        """The samples of one cell (empty when the client could not run it)."""
        return self.samples.get((op, client, threads), [])

    def cpu_us(self, op: str, client: str, threads: int = 1) -> float | None:
        """Median CPU per call (µs), one thread unless ``threads`` is given."""
        samples = self.get(op, client, threads)
        return statistics.median(s.cpu_per_call_us for s in samples) if samples else None

    def rate(self, op: str, client: str, threads: int) -> float | None:
        """Median calls per second."""
        samples = self.get(op, client, threads)
        return statistics.median(s.calls_per_second for s in samples) if samples else None

    def requests_per_call(self, op: str, client: str) -> float | None:
        """Requests per call over every sample (None when not observable)."""
        samples = [s for t in {1, self.threads} for s in self.get(op, client, t)]
        if not samples or any(s.requests is None for s in samples):
            return None
        return sum(s.requests or 0 for s in samples) / sum(s.calls for s in samples)

    def ratios(self, op: str, client: str, other: str, metric: str) -> list[float]:
        """Per-round ratios ``client / other`` of a metric measured side by side.

        ``metric``: ``"cpu"`` or ``"cpuN"`` (CPU per call with one or ``threads`` threads),
        ``"rate1"`` or ``"rateN"`` (calls per second with one or ``threads`` threads).
        """
        threads = 1 if metric in ("cpu", "rate1") else self.threads
        mine, theirs = self.get(op, client, threads), self.get(op, other, threads)
        if not mine or not theirs:  # one of them could not make this call
            return []
        if metric in ("cpu", "cpuN"):
            return [a.cpu / a.calls / (b.cpu / b.calls) for a, b in zip(mine, theirs, strict=True)]
        return [a.calls_per_second / b.calls_per_second for a, b in zip(mine, theirs, strict=True)]


_START = time.monotonic()


def _log(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


def measure_backend(
    backend: str,
    drivers: list[Driver],
    settings: Settings,
    ops: Sequence[str] = MEASURE_ORDER,
    before_op: Callable[[str], None] | None = None,
) -> Results:
    """Measure every operation with every driver, in interleaved rounds.

    For each operation, all inputs are made first (sagas to update or delete are put
    untimed), then each driver warms up, then every round runs each driver once with one
    thread and once with ``settings.threads`` threads, the drivers' order rotating from
    round to round so that none is always first under a changing machine load. With
    ``settings.threaded_calls == 0`` there are no threaded runs, with ``settings.serial_calls
    == 0`` no one-thread runs. Asyncio drivers run ``settings.threads`` coroutines on their
    own event loop where sync ones run threads. ``before_op(op)`` is called
    before each operation's first call.

    :raises BenchmarkError: a call failed, or the store sent other than one request per call.
    """
    results = Results(backend, [d.name for d in drivers], settings.threads)
    for op in ops:
        if before_op is not None:
            before_op(op)
        active = []
        for driver in drivers:
            reason = driver.unsupported(op)
            if reason is None:
                active.append(driver)
            else:
                results.unsupported[(op, driver.name)] = reason
        _log(f"  {backend}: {op}: preparing inputs")
        per_round = settings.serial_calls + settings.threaded_calls
        prepared = {
            d.name: d.inputs(op, settings.warmup_calls + settings.rounds * per_round)
            for d in active
        }
        for driver in active:
            inputs = prepared[driver.name]
            # Asyncio clients warm up as many at once as they are measured, so that every
            # connection they will use is open before the first timed call.
            warm = settings.threads if isinstance(driver, AsyncDriver) else 1
            try:
                _run(driver, driver.function(op), inputs[: settings.warmup_calls], warm)
            except BenchmarkError:
                raise
            except Exception as exc:
                raise BenchmarkError(f"{backend} {driver.name} {op} (warm-up): {exc!r}") from exc
            del inputs[: settings.warmup_calls]
        _log(f"  {backend}: {op}: measuring {settings.rounds} round(s)")
        for round_index in range(settings.rounds):
            shift = round_index % len(active)
            order = active[shift:] + active[:shift]
            phases = ((1, settings.serial_calls), (settings.threads, settings.threaded_calls))
            for threads, size in phases:
                if size == 0:
                    continue
                for driver in order:
                    inputs = prepared[driver.name]
                    batch, prepared[driver.name] = inputs[:size], inputs[size:]
                    call = driver.function(op)
                    try:
                        sample = _run(driver, call, batch, threads)
                    except BenchmarkError:
                        raise
                    except Exception as exc:
                        raise BenchmarkError(f"{backend} {driver.name} {op}: {exc!r}") from exc
                    if sample.requests is not None and sample.requests != sample.calls:
                        raise BenchmarkError(
                            f"{backend} {driver.name} {op}: {sample.requests} requests for "
                            f"{sample.calls} calls with {threads} thread(s); expected exactly 1 "
                            "per call"
                        )
                    results.samples.setdefault((op, driver.name, threads), []).append(sample)
        for driver in active:
            driver.verify()
    return results
