"""Where a call's client CPU goes: a CPU-time sampling profiler and a layer breakdown.

``CpuSampler`` uses ``setitimer(ITIMER_PROF)``: the kernel sends SIGPROF each time the
process has used ``interval`` seconds of CPU (user + system), and the handler records the
Python stack it interrupted. The kernel checks CPU timers on its scheduler tick, so samples
come at most once per tick (4 ms at HZ=250) whatever ``interval`` asks: profile enough
calls. Time blocked on the network uses no CPU and is not sampled, unlike a wall-clock
profiler's; and there is no per-function-call overhead to skew small functions, unlike
cProfile's. Only meaningful when the process does nothing else (a server in another
process, one client thread).

A sample is charged to the innermost frame that belongs to a known layer (our code,
PynamoDB, a botocore stage, the HTTP transport); standard-library frames (json, hmac,
uuid, logging ...) count for the layer that called them.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["CATEGORIES", "CpuSampler", "Profile", "categorize", "profile_calls"]

Frame = tuple[str, str, int]  # (file, qualified function name, first line)

#: (path fragment, qualified-name prefix or None for any, category), checked in order for
#: each frame; the first match names the frame's category. Class prefixes need Python 3.11's
#: ``co_qualname``; on 3.10 those frames fall to the next rule.
_RULES: tuple[tuple[str, str | None, str], ...] = (
    ("/saga_store_pynamo/_validation.py", None, "store: argument checks"),
    ("/saga_store_pynamo/_codec.py", None, "store: codec (state to item and back)"),
    ("/saga_store_pynamo/_size.py", None, "store: item size count"),
    ("/saga_store_pynamo/models.py", None, "store: timestamp attribute"),
    ("/saga_store_pynamo/_dispatch.py", None, "store: dispatch and retry loop"),
    ("/saga_store_pynamo/retry.py", None, "store: dispatch and retry loop"),
    ("/saga_store_pynamo/_sigv4.py", None, "store http: SigV4 signing"),
    ("/saga_store_pynamo/_wire.py", None, "store http: JSON wire codec"),
    ("/saga_store_pynamo/_transport.py", None, "store http: transport and pool"),
    ("/saga_store_pynamo/_http.py", None, "store http: transport and pool"),
    ("/saga_store_pynamo/", None, "store: request building, state handling"),
    ("/pynamodb/connection/", None, "PynamoDB: connection (client property, signals)"),
    ("/pynamodb/signals.py", None, "PynamoDB: connection (client property, signals)"),
    ("/blinker/", None, "PynamoDB: connection (client property, signals)"),
    ("/pynamodb/", None, "PynamoDB: attributes (descriptors, serialize, deserialize)"),
    (
        "/botocore/client.py",
        "BaseClient._resolve_endpoint_ruleset",
        "botocore: endpoint resolution",
    ),
    ("/botocore/regions.py", None, "botocore: endpoint resolution"),
    ("/botocore/endpoint_provider.py", None, "botocore: endpoint resolution"),
    ("/botocore/serialize.py", None, "botocore: request serialization"),
    ("/botocore/validate.py", None, "botocore: request serialization"),
    ("/botocore/auth.py", None, "botocore: SigV4 signing"),
    ("/botocore/signers.py", None, "botocore: SigV4 signing"),
    ("/botocore/credentials.py", None, "botocore: SigV4 signing"),
    ("/botocore/parsers.py", None, "botocore: response parsing"),
    ("/botocore/hooks.py", None, "botocore: event hooks"),
    ("/botocore/handlers.py", None, "botocore: event hooks"),
    ("/botocore/useragent.py", None, "botocore: user-agent header"),
    ("/botocore/retries/", None, "botocore: retry checks"),
    ("/botocore/retryhandler.py", None, "botocore: retry checks"),
    ("/botocore/httpsession.py", None, "HTTP transport"),
    ("/botocore/awsrequest.py", "AWSConnection", "HTTP transport"),
    ("/botocore/awsrequest.py", "AWSHTTP", "HTTP transport"),
    ("/botocore/awsrequest.py", "AWSResponse", "HTTP transport"),
    ("/urllib3/", None, "HTTP transport"),
    ("/http/client.py", None, "HTTP transport"),
    ("/socket.py", None, "HTTP transport"),
    ("/email/", None, "HTTP transport"),
    ("/botocore/", None, "botocore: other (request objects, client and endpoint plumbing)"),
    ("/benchmarks/", None, "benchmark loop"),
)
#: Every category, in report order.
CATEGORIES: tuple[str, ...] = (*dict.fromkeys(rule[2] for rule in _RULES), "other")


def _category_of(frame: Frame) -> str | None:
    filename, function, _ = frame
    path = filename.replace("\\", "/")
    for fragment, prefix, category in _RULES:
        if fragment in path and (
            prefix is None or function.startswith(prefix) or f".{prefix}" in function
        ):
            return category
    return None


def categorize(stack: Sequence[Frame]) -> str:
    """The category of a sample: that of its innermost frame with one (innermost first)."""
    for frame in stack:
        category = _category_of(frame)
        if category is not None:
            return category
    return "other"


_PROJECT = str(Path(__file__).resolve().parent.parent).replace("\\", "/") + "/"


def short_name(frame: Frame) -> str:
    """``package/module.py:Class.function`` for a frame."""
    filename, function, _ = frame
    path = filename.replace("\\", "/")
    if path.startswith(_PROJECT):
        path = path[len(_PROJECT) :]
    path = re.sub(r"^.*/site-packages/", "", path)
    path = re.sub(r"^.*/lib/python3\.\d+/", "", path)
    if path == "<string>" and function == "<lambda>":
        return "namedtuple.__new__"  # namedtuple builds its constructor with eval()
    if path.startswith(("~", "<")):
        return function
    return f"{path}:{function}"


class CpuSampler:
    """Samples the interrupted Python stack every ``interval`` seconds of process CPU."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.stacks: collections.Counter[tuple[Frame, ...]] = collections.Counter()
        self._previous: Any = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        stack = []
        while frame is not None:
            code = frame.f_code
            name = getattr(code, "co_qualname", code.co_name)  # Python 3.11+
            stack.append((code.co_filename, name, code.co_firstlineno))
            frame = frame.f_back
        self.stacks[tuple(stack)] += 1

    def __enter__(self) -> CpuSampler:
        self._previous = signal.signal(signal.SIGPROF, self._handler)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, self._previous)


@dataclasses.dataclass(frozen=True)
class Profile:
    """Where the CPU of ``calls`` calls went."""

    label: str
    calls: int
    cpu_per_call_us: float  # measured with time.process_time() over the profiled calls
    samples: int
    categories: dict[str, int]  # category -> samples
    functions: dict[str, int]  # innermost function -> samples (self time)

    def share(self, category: str) -> float:
        """Fraction of the samples in ``category``."""
        return self.categories.get(category, 0) / self.samples if self.samples else 0.0

    def us(self, category: str) -> float:
        """Microseconds per call spent in ``category`` (its share of the measured CPU)."""
        return self.share(category) * self.cpu_per_call_us

    def layer_us(self, prefix: str) -> float:
        """Microseconds per call in every category starting with ``prefix``."""
        return sum(self.us(c) for c in self.categories if c.startswith(prefix))


def profile_calls(
    subjects: Mapping[str, tuple[Callable[[Any], None], Sequence[Any]]],
    chunk: int = 50,
    interval: float = 0.001,
) -> dict[str, Profile]:
    """Profile several call loops side by side: ``subjects[label] = (call, inputs)``.

    The loops run in turns of ``chunk`` calls, each under its own sampler, so that a change
    in machine load affects every subject alike. The caller makes sure nothing else runs in
    this process.
    """
    samplers = {label: CpuSampler(interval) for label in subjects}
    cpu = dict.fromkeys(subjects, 0.0)
    done = dict.fromkeys(subjects, 0)
    while any(done[label] < len(inputs) for label, (_, inputs) in subjects.items()):
        for label, (call, inputs) in subjects.items():
            batch = inputs[done[label] : done[label] + chunk]
            if not batch:
                continue
            started = time.process_time()
            with samplers[label]:
                for item in batch:
                    call(item)
            cpu[label] += time.process_time() - started
            done[label] += len(batch)
    profiles = {}
    for label, sampler in samplers.items():
        categories: collections.Counter[str] = collections.Counter()
        functions: collections.Counter[str] = collections.Counter()
        for stack, count in sampler.stacks.items():
            categories[categorize(stack)] += count
            if stack:
                functions[short_name(stack[0])] += count
        profiles[label] = Profile(
            label,
            done[label],
            cpu[label] / done[label] * 1e6,
            sum(sampler.stacks.values()),
            dict(categories),
            dict(functions),
        )
    return profiles
