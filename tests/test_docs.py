"""The documentation runs: every ```python block of README.md and docs/*.md, page by page.

Each page is one test. Its blocks run in order, in one namespace per page (a later block may
use what an earlier one defined, as a reader would), on moto inside the public
``atomic_moto()`` with fake credentials and a region in the environment, or, on a page that
says ``<!-- docs-backend: dynamodb-local -->``, against the session's DynamoDB Local server
(``AWS_ENDPOINT_URL_DYNAMODB``, an access key of the page's own so pages never share tables).
A failure names the page and the line of the block; tracebacks point into the Markdown file.

Conventions for writers (also in docs/testing.md):

- ``<!-- no-run: REASON -->`` on the line directly before a fence skips that block. Use it only
  for what cannot run here (a named AWS profile, real AWS, a server you start yourself, a
  third-party framework); the reason is required.
- ``print(...)  # OUTPUT``, or a ``print(...)`` line followed by a comment line ``# OUTPUT``,
  states what the print prints. In a block where every print states its output, the block's
  printed lines must be exactly those; a block whose prints state nothing (a loop printing
  rows) is run but its output is not compared. A print stating its output beside one that
  does not is refused, so a stale comment cannot hide.
- Every name a block uses must be defined somewhere on the page (or be a builtin): a block
  showing ``store.find_by_name(...)`` shows, on the page, where ``store`` comes from.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import dataclasses
import hashlib
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saga_store_pynamo import DynamoDBSagaStore
from saga_store_pynamo.moto import atomic_moto
from saga_store_pynamo.testing import TEST_REGION

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
_NO_RUN = re.compile(r"^<!--\s*no-run(?::\s*(?P<reason>.*?))?\s*-->\s*$")
_BACKEND = re.compile(r"^<!--\s*docs-backend:\s*(?P<backend>[\w-]+)\s*-->\s*$", re.MULTILINE)
_PRINT_SAME_LINE = re.compile(r"^(\s*)print\(.*\)\s+# (?P<out>.+?)\s*$")
_PRINT = re.compile(r"^(\s*)print\(")
_COMMENT = re.compile(r"^(\s*)# (?P<out>.+?)\s*$")
BACKENDS = ("moto", "dynamodb-local")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    #: 1-based line number of the block's first code line in the page.
    line: int
    language: str
    code: str
    #: Why the block does not run; None for a runnable block. "" when no reason was given.
    no_run: str | None

    @property
    def where(self) -> str:
        return f"{_shown(self.page)}:{self.line}"


def _shown(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, language = opening.group(1), opening.group(2).lower()
        marker = _NO_RUN.match(lines[i - 1]) if i > 0 else None
        end = i + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        no_run = None if marker is None else (marker.group("reason") or "")
        code = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(page, i + 2, language, code, no_run))
        i = end + 1
    return found


def python_blocks(page: Path) -> list[Block]:
    return [block for block in blocks(page) if block.language in ("python", "py", "python3")]


def backend_of(page: Path) -> str:
    markers = _BACKEND.findall(page.read_text(encoding="utf-8"))
    assert len(markers) <= 1, f"{page.name}: more than one docs-backend marker"
    backend = markers[0] if markers else "moto"
    assert backend in BACKENDS, f"{page.name}: unknown docs-backend {backend!r}"
    return backend


def expected_output(block: Block) -> list[str] | None:
    """What the block's prints say they print, or None when they say nothing."""
    lines = block.code.splitlines()
    expected: list[str] = []
    silent = 0
    for n, line in enumerate(lines):
        same_line = _PRINT_SAME_LINE.match(line)
        if same_line is not None:
            expected.append(same_line.group("out"))
            continue
        printing = _PRINT.match(line)
        if printing is None or not line.rstrip().endswith(")"):
            continue
        following = _COMMENT.match(lines[n + 1]) if n + 1 < len(lines) else None
        if following is not None and following.group(1) == printing.group(1):
            expected.append(following.group("out"))
        else:
            silent += 1
    if not expected:
        return None
    assert silent == 0, (
        f"{block.where}: {silent} print(...) without its output beside prints that state "
        "theirs; state every print's output (`print(x)  # output`) or none"
    )
    return expected


def _code_for(block: Block) -> Any:
    """The block compiled so that tracebacks and line numbers point into the page."""
    source = "\n" * (block.line - 1) + block.code
    return compile(
        source, str(block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )


def _tree(block: Block) -> ast.Module:
    source = "\n" * (block.line - 1) + block.code
    tree = compile(
        source,
        str(block.page),
        "exec",
        flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )
    assert isinstance(tree, ast.Module)
    return tree


def undefined_names(page_blocks: list[Block]) -> list[str]:
    """Names the blocks read that no block of the page binds (and no builtin is).

    Scopes are ignored on purpose: this is not a compiler but a check that a reader can find,
    somewhere on the page, where each name comes from.
    """
    bound = set(dir(builtins)) | {"__name__", "__file__"}
    reads: dict[str, str] = {}
    for block in page_blocks:
        for node in ast.walk(_tree(block)):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Load):
                    reads.setdefault(node.id, f"{block.page.name}:{node.lineno}")
                else:
                    bound.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    bound.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
                bound.add(node.name)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                bound.update(node.names)
    return [f"{name!r} (read at {where})" for name, where in reads.items() if name not in bound]


@contextlib.contextmanager
def _backend(
    page: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The page's backend, with an environment that can reach nothing else."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    nowhere = str(ROOT / "tests" / "no-such-aws-config")
    monkeypatch.setenv("AWS_CONFIG_FILE", nowhere)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", nowhere)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", TEST_REGION)
    monkeypatch.setenv("AWS_REGION", TEST_REGION)
    # DynamoDB Local keeps tables per access key: one key per page keeps pages apart.
    key = "docs" + hashlib.sha256(page.name.encode()).hexdigest()[:12]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "docs-secret")
    if backend_of(page) == "dynamodb-local":
        endpoint = request.getfixturevalue("dynamodb_local_endpoint")
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
        yield
    else:
        monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
        with atomic_moto():
            yield


def _close_stores(namespace: dict[str, Any]) -> None:
    for value in list(namespace.values()):
        if isinstance(value, DynamoDBSagaStore):
            value.close()


def run_page(page: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the page's runnable blocks in order; returns how many ran."""
    page_blocks = python_blocks(page)
    missing = undefined_names(page_blocks)
    if missing:
        pytest.fail(
            f"{_shown(page)} uses names it defines nowhere: " + ", ".join(missing),
            pytrace=False,
        )
    runnable = [block for block in page_blocks if block.no_run is None]
    for block in runnable:
        expected_output(block)  # a stale print comment fails before anything runs
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    ran = 0
    with _backend(page, request, monkeypatch):
        try:
            for block in runnable:
                out = io.StringIO()
                try:
                    with contextlib.redirect_stdout(out):
                        exec(_code_for(block), namespace)
                except Exception as exc:
                    pytest.fail(
                        f"the block at {block.where} raised {type(exc).__name__}: {exc}\n"
                        + _traceback_in_page(exc, block.page),
                        pytrace=False,
                    )
                ran += 1
                expected = expected_output(block)
                if expected is not None:
                    printed = out.getvalue().splitlines()
                    if printed != expected:
                        pytest.fail(
                            f"the block at {block.where} printed\n  {printed!r}\n"
                            f"its print comments say\n  {expected!r}",
                            pytrace=False,
                        )
        finally:
            _close_stores(namespace)
    return ran


def _traceback_in_page(exc: BaseException, page: Path) -> str:
    """The frames of the traceback that are lines of the page, innermost last."""
    import traceback

    frames = [
        frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == str(page)
    ]
    return "".join(traceback.format_list(frames))


PAGES_WITH_PYTHON = [page for page in PAGES if python_blocks(page)]


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(
            page,
            id=str(page.relative_to(ROOT)),
            marks=[pytest.mark.ddblocal] if backend_of(page) == "dynamodb-local" else [],
        )
        for page in PAGES_WITH_PYTHON
    ],
)
def test_page_runs(
    page: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # blocks that write files (iac.md) write them here
    ran = run_page(page, request, monkeypatch)
    assert ran == len([block for block in python_blocks(page) if block.no_run is None])


# -- the runner itself: it finds what is there, and skips only what says why -----------------


def test_the_runner_finds_every_python_block() -> None:
    """Each ```python fence in the sources is a block the runner runs or skips by its marker."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        fences = len(re.findall(r"^\s*```+\s*(?:python|py|python3)\s*$", text, re.MULTILINE))
        assert len(python_blocks(page)) == fences, page.name
    # The pages that show code do have runnable blocks: the runner cannot silently run nothing.
    runnable = {page.name for page in PAGES if any(b.no_run is None for b in python_blocks(page))}
    assert {"README.md", "getting-started.md", "handlers.md", "operations.md", "iac.md"} <= runnable


def test_python_fences_are_not_indented() -> None:
    """An indented fence (inside a list item) would be read differently by MkDocs and here."""
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            assert not re.match(r"^\s+```", line), f"{page.name}:{number}: indented fence"


def test_every_skipped_block_says_why() -> None:
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if _NO_RUN.match(line):
                following = lines[number] if number < len(lines) else ""
                assert _FENCE.match(following), (
                    f"{page.name}:{number}: a no-run marker skips only the fence on the very "
                    "next line"
                )
        for block in python_blocks(page):
            if block.no_run is not None:
                assert block.no_run.strip(), (
                    f"{block.where}: write why the block cannot run: <!-- no-run: REASON -->"
                )


def test_skipped_blocks_still_parse() -> None:
    for page in PAGES:
        for block in python_blocks(page):
            _tree(block)


_PRIVATE = re.compile(
    r"saga_store_pynamo\._\w|from\s+saga_store_pynamo(?:\.\w+)*\s+import\s+(?:\(\s*)?_\w"
)


def test_no_doc_or_example_points_at_a_private_module() -> None:
    """Users are sent to public names only: private modules change without notice."""
    sources = [*PAGES, *sorted((ROOT / "examples").rglob("*.py"))]
    found = []
    for path in sources:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _PRIVATE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "private modules in docs or examples:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        "from saga_store_pynamo._moto import atomic_moto",
        "see `saga_store_pynamo._modify.modify`",
        "from saga_store_pynamo import _telemetry",
        "from saga_store_pynamo.testing import _plugin",
    ],
)
def test_the_private_module_check_catches(line: str) -> None:
    assert _PRIVATE.search(line)


@pytest.mark.parametrize(
    "line",
    [
        "from saga_store_pynamo.moto import atomic_moto",
        "from saga_store_pynamo import SagaModel, create_table",
        "saga_store_pynamo.dynamodb_local",
    ],
)
def test_the_private_module_check_lets_public_names_pass(line: str) -> None:
    assert not _PRIVATE.search(line)


# -- the runner fails when the page is wrong --------------------------------------------------


def _page(tmp_path: Path, *blocks: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n" + "\n".join(blocks), encoding="utf-8")
    return page


def _python(code: str, marker: str = "") -> str:
    return (f"{marker}\n" if marker else "") + f"```python\n{code}```\n"


def test_blocks_share_the_pages_state_and_their_output_is_checked(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = _page(
        tmp_path,
        _python("total = 40\n"),
        _python("print(total + 2)  # 42\nprint('two words')\n# two words\n"),
        _python("raise RuntimeError('not run')\n", "<!-- no-run: needs real AWS -->"),
    )
    assert run_page(page, request, monkeypatch) == 2


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("print(1 + 1)  # 3\n", r"page.md:4 printed\n  \['2'\]\nits print comments say\n  \['3'\]"),
        ("x = 1\nprint(store)\n", r"names it defines nowhere: 'store' \(read at page.md:5\)"),
        ("x = 1\n\n{}['key']\n", r"the block at .*page.md:4 raised KeyError"),
        ("print(1)  # 1\nprint(2)\n", r"1 print\(...\) without its output"),
    ],
    ids=["wrong output", "undefined name", "raises", "mixed prints"],
)
def test_a_wrong_page_fails_naming_the_block(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    message: str,
) -> None:
    page = _page(tmp_path, _python(code))
    with pytest.raises((pytest.fail.Exception, AssertionError), match=message):
        run_page(page, request, monkeypatch)


def test_a_raising_block_shows_the_pages_lines(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = _page(tmp_path, _python("x = 1\n\n{}['key']\n"))
    with pytest.raises(pytest.fail.Exception) as failed:
        run_page(page, request, monkeypatch)
    assert f'File "{page}", line 6' in str(failed.value)


def test_a_skip_without_a_reason_is_seen(tmp_path: Path) -> None:
    page = _page(tmp_path, _python("pass\n", "<!-- no-run -->"), _python("pass\n"))
    assert [block.no_run for block in python_blocks(page)] == ["", None]


# -- figures the docs quote, against the code that produces them -------------------------------


def test_limits_and_reliability_quote_the_sizes_the_code_computes() -> None:
    from saga_store_pynamo._size import ITEM_SIZE_LIMIT, number_size
    from saga_store_pynamo._tokens import SLOTS, TOKEN_LENGTH, TOKEN_RESERVE

    limits = " ".join((ROOT / "docs" / "limits.md").read_text(encoding="utf-8").split())
    reliability = " ".join((ROOT / "docs" / "reliability.md").read_text(encoding="utf-8").split())
    assert f"**{ITEM_SIZE_LIMIT:,} bytes**" in limits
    assert f"(`TOKEN_RESERVE`, {TOKEN_RESERVE} bytes;" in limits
    assert (
        f"the largest state it accepts is {TOKEN_RESERVE} bytes under {ITEM_SIZE_LIMIT:,}" in limits
    )
    assert f"(`TOKEN_RESERVE`, {TOKEN_RESERVE} bytes," in reliability
    history = (
        sum(len(slot) + TOKEN_LENGTH for slot in SLOTS) + len("sagaIncarnation") + TOKEN_LENGTH
    )
    assert f"at most {len(SLOTS) + 1} tokens ({history} bytes with their names)" in reliability
    assert f"one token ({len(SLOTS[0]) + TOKEN_LENGTH} bytes)" in reliability
    sizes = {text: number_size(text) for text in ("7", "99", "100", "1000000", "12.5", "-12.345")}
    assert len({sizes[text] for text in ("7", "99", "100", "1000000")}) == 1
    assert (
        f"`7`, `99`, `100` and `1000000` take {sizes['7']} bytes; `12.5` takes {sizes['12.5']}; "
        f"`-12.345` takes {sizes['-12.345']}; `123456789` takes {number_size('123456789')}."
    ) in limits
