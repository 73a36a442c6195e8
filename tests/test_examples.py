"""The example apps under ``examples/`` run, and their own end-state checks can fail."""

from __future__ import annotations

import pytest

from examples import two_sagas


def test_two_sagas_main_runs_and_every_order_ends_complete(
    capsys: pytest.CaptureFixture[str],
) -> None:
    two_sagas.main()
    out = capsys.readouterr().out
    assert "threads: 37 deliveries, 4 orders complete" in out
    assert "asyncio: 37 deliveries, 4 orders complete" in out


def test_two_sagas_checks_catch_a_lost_message(monkeypatch: pytest.MonkeyPatch) -> None:
    burst = two_sagas.burst

    def without_one_capture(order_ids: list[str], seed: int) -> list[two_sagas.Message]:
        lost = f"{order_ids[0]}/capture/1"
        return [m for m in burst(order_ids, seed) if m.message_id != lost]

    monkeypatch.setattr(two_sagas, "burst", without_one_capture)
    with pytest.raises(AssertionError, match=r"order-1: order saga ended as .*'paid': False"):
        two_sagas.main()
