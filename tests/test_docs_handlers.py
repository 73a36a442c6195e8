"""The Python examples of ``docs/handlers.md`` run as written (blocks marked no-run excepted)
and print what the comment after each ``print(...)`` says they print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "handlers.md"
_BLOCK = re.compile(r"(<!-- no-run -->\n)?```python\n(.*?)```", re.DOTALL)
#: ``print(...)  # what it prints``
_PRINTS = re.compile(r"^\s*print\(.*\)\s+# (.+)$", re.MULTILINE)


def runnable_blocks() -> list[str]:
    return [code for skip, code in _BLOCK.findall(DOC.read_text()) if not skip]


def test_the_page_has_examples() -> None:
    blocks = runnable_blocks()
    assert len(blocks) >= 2
    assert "paid 9000 2" in _PRINTS.findall(blocks[0])


@pytest.mark.parametrize("code", runnable_blocks())
def test_example_runs_and_prints_what_it_says(
    code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _PRINTS.findall(code)
    assert expected, "a runnable example shows what it prints: print(...)  # output"
    exec(compile(code, str(DOC), "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.splitlines() == expected
