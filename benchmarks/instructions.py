"""Instructions per call, the store (each transport) vs raw botocore, counted by valgrind.

CPU time on a shared two-core machine varies by 20 % from one round to the next, which
hides a 5 % difference. ``valgrind --tool=callgrind`` counts the instructions a process
executes instead; the count is the same from run to run whatever else the machine does.

Each call is counted without the network, as in the benchmark's offline table: botocore's
HTTP send is answered from memory with the response DynamoDB Local gave the same request,
so serialization, signing, hooks and parsing run and the socket does not; the store on
``transport="http"`` (``store-http``) writes its request to, and reads the recorded response
from, a local socket pair. For each client
and call, one process makes ``--calls`` calls after a warm-up and another makes none; the
difference divided by ``--calls`` is the count per call, start-up and warm-up excluded.
Python's cyclic garbage collector stays on, as in production.

Run from the repository root (needs valgrind, Java and npm; about 6 minutes)::

    python -m benchmarks.instructions
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import copy
import gc
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["main"]

OPS = ("insert", "get_by_id", "get_by_correlation_id", "update", "delete", "update_conflict")
_METHODS = {
    "insert": "put_item",
    "get_by_id": "get_item",
    "get_by_correlation_id": "query",
    "update": "update_item",
    "delete": "delete_item",
    "update_conflict": "update_item",
}
_ENDPOINT = "http://127.0.0.1:9"  # never connected to: every answer comes from memory
_PREPARED = 300
#: The clients counted: the store on each transport, and raw botocore.
_CLIENTS = (
    "store",
    "store-http",
    "botocore",
)  # inputs made in every process, so that both runs of a pair make the same


def _capture(path: Path) -> None:
    """Record the store's requests and DynamoDB Local's answers (see ``setup_fixture``)."""
    from .backends import dynamodb_local, setup_fixture

    with dynamodb_local() as backend:
        fixture = setup_fixture(backend)
        try:
            recorded = {
                "table": fixture.table_name,
                "templates": fixture.templates,
                "responses": fixture.responses,
                "read": fixture.read_saga,
                "stale": fixture.stale_item,
            }
        finally:
            fixture.drop()
    path.write_bytes(pickle.dumps(recorded))


def _worker(client: str, op: str, calls: int, recorded_path: Path) -> None:
    """Make ``calls`` calls of ``op`` with ``client`` against recorded answers."""
    from saga_store_pynamo import ConcurrencyError

    from .backends import mirror_config, raw_client
    from .common import SAGA_NAME, BenchSaga, bench_store, small_state
    from .offline import CannedResponses, answer_http_transport

    recorded = pickle.loads(recorded_path.read_bytes())
    canned = CannedResponses(recorded["responses"])
    answering = contextlib.ExitStack()  # held to the end: this process ends after its calls
    if client == "store-http":
        store = bench_store(recorded["table"], _ENDPOINT, transport="http")
        answering.enter_context(answer_http_transport(store, canned))
    else:
        store = bench_store(recorded["table"], _ENDPOINT)
    store.connection.client.meta.events.register_first("before-send.dynamodb", canned)
    botocore_client = raw_client(_ENDPOINT, mirror_config(store.connection.client))
    botocore_client.meta.events.register_first("before-send.dynamodb", canned)
    read_id, read_corr = recorded["read"]

    def store_inputs(name: str) -> list[Any]:
        if name == "insert":
            return [small_state(i) for i in range(_PREPARED)]
        if name in ("get_by_id", "delete"):
            return [read_id] * _PREPARED
        if name == "get_by_correlation_id":
            return [read_corr] * _PREPARED
        return [BenchSaga.from_raw_data(copy.deepcopy(recorded["stale"])) for _ in range(_PREPARED)]

    def store_call(name: str) -> Callable[[Any], Any]:
        if name == "insert":
            return lambda state: store.insert(SAGA_NAME, "corr-1", state)
        if name == "get_by_id":
            return lambda saga_id: store.get_by_id(SAGA_NAME, saga_id)
        if name == "get_by_correlation_id":
            return lambda corr: store.get_by_correlation_id(SAGA_NAME, corr)
        if name == "delete":
            return lambda saga_id: store.delete(SAGA_NAME, saga_id)
        if name == "update":
            return lambda state: store.update(SAGA_NAME, state, 0)

        def conflict(state: BenchSaga) -> None:
            try:
                store.update(SAGA_NAME, state, 0)
            except ConcurrencyError:
                return
            raise RuntimeError("the recorded conflict was not reported")

        return conflict

    def botocore_inputs(name: str) -> list[Any]:
        return [copy.deepcopy(recorded["templates"][name]) for _ in range(_PREPARED)]

    def botocore_call(name: str) -> Callable[[Any], Any]:
        method = getattr(botocore_client, _METHODS[name])
        if name != "update_conflict":
            return lambda request: method(**request)

        def conflict(request: dict[str, Any]) -> None:
            try:
                method(**request)
            except botocore_client.exceptions.ConditionalCheckFailedException:
                return
            raise RuntimeError("the recorded conflict was not returned")

        return conflict

    make_inputs, make_call = (
        (botocore_inputs, botocore_call) if client == "botocore" else (store_inputs, store_call)
    )
    for name in OPS:  # warm every path up, so lazy set-up is outside the difference
        canned.use(name)
        call = make_call(name)
        for value in make_inputs(name)[:20]:
            call(value)
    canned.use(op)
    call = make_call(op)
    inputs = make_inputs(op)[:calls]
    gc.collect()
    for value in inputs:
        call(value)
    answering.close()


def _count(client: str, op: str, calls: int, recorded: Path, out_dir: Path) -> int:
    """Instructions of one worker process under callgrind."""
    out = out_dir / f"{client}.{op}.{calls}.callgrind"
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--worker",
            client,
            op,
            str(calls),
            str(recorded),
        ],
        check=True,
        capture_output=True,
    )
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    """Count and print instructions per call; 1 when valgrind is missing."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--calls", type=int, default=200, help="calls counted per process")
    parser.add_argument("--ops", default=",".join(OPS), help="comma-separated calls")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel runs")
    parser.add_argument(
        "--clients",
        default=",".join(_CLIENTS),
        help="comma-separated: " + ", ".join(_CLIENTS),
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        client, op, calls, recorded = args.worker
        _worker(client, op, int(calls), Path(recorded))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 1
    ops = [op for op in args.ops.split(",") if op]
    clients = [c for c in args.clients.split(",") if c in _CLIENTS]
    with tempfile.TemporaryDirectory(prefix="saga-instructions-") as tmp:
        out_dir = Path(tmp)
        recorded = out_dir / "recorded.pickle"
        _capture(recorded)
        runs = [(c, op, n) for op in ops for c in clients for n in (0, args.calls)]
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = {
                run: pool.submit(_count, *run, recorded=recorded, out_dir=out_dir) for run in runs
            }
            totals = {run: future.result() for run, future in futures.items()}
    counted = " | ".join(f"{c} instructions/call" for c in clients)
    compared = [c for c in clients if c != "botocore"] if "botocore" in clients else []
    ratios = "".join(f" {c}/botocore |" for c in compared)
    print(f"| call | {counted} |{ratios}")
    print("|---|" + "---|" * (len(clients) + len(compared)))
    for op in ops:
        per_call = {
            c: (totals[(c, op, args.calls)] - totals[(c, op, 0)]) / args.calls for c in clients
        }
        cells = [f"{per_call[c]:,.0f}" for c in clients]
        cells += [f"{per_call[c] / per_call['botocore']:.3f}x" for c in compared]
        print(f"| `{op}` | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
