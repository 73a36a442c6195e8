"""The README's main job: the order saga demo, on the embedded backend and on DynamoDB Local."""

from __future__ import annotations

import io
import subprocess
import sys

from saga_store_pynamo import demo
from tests.conftest import Backend


def test_demo_runs_the_order_saga_to_completion(backend: Backend) -> None:
    out = io.StringIO()
    final = demo.run(backend.endpoint, workers=4, out=out)
    assert final.is_completed
    assert (final.paid_cents, final.items_shipped) == (12_000, 3)
    assert final.version == 6  # one update per message: none lost, none applied twice
    assert final.ttl is not None
    assert "version conflicts, each reloaded and retried" in out.getvalue()


def test_demo_command_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "saga_store_pynamo.demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "demo finished: the order saga is complete" in result.stdout
