"""The Python examples of ``docs/handlers.md`` run as written (blocks marked no-run excepted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "handlers.md"
_BLOCK = re.compile(r"(<!-- no-run -->\n)?```python\n(.*?)```", re.DOTALL)


def runnable_blocks() -> list[str]:
    return [code for skip, code in _BLOCK.findall(DOC.read_text()) if not skip]


def test_the_page_has_examples() -> None:
    assert runnable_blocks()


@pytest.mark.parametrize("code", runnable_blocks())
def test_example_runs(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_example"})
    assert "paid 9000 2" in capsys.readouterr().out
