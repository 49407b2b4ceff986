"""The docs runner itself: what it reads from a page, what it runs, what it refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from doc_runner import DOCS, Command, Reader, WriteFile, output_matches, page_steps

HERE = Path(__file__).resolve().parent


def write_page(tmp_path: Path, text: str) -> Path:
    # page_steps reads pages relative to docs/, and an absolute path overrides that.
    path = tmp_path / "page.md"
    path.write_text(text)
    return path


def test_pages_give_files_and_commands_in_order(tmp_path: Path) -> None:
    page = write_page(
        tmp_path,
        "Text.\n\n"
        "```{code-block} yaml\n:caption: conf/x.yaml\n\na: 1\n```\n\n"
        "```yaml\nshown: only\n```\n\n"
        "```console\n$ python make.py --rows 3 \\\n    --name 'a b'\nwrote ... rows\n...\n"
        "done\n$ cd sub\n```\n"
        "```{code-block} console\n:caption: also run\n$ cd ..\n```\n",
    )
    steps = page_steps(page)
    assert steps[0] == WriteFile("conf/x.yaml", "a: 1\n", steps[0].where)
    assert isinstance(steps[1], Command) and isinstance(steps[2], Command)
    assert steps[1].argv == ("python", "make.py", "--rows", "3", "--name", "a b")
    assert steps[1].expected == ("wrote ... rows", "done")
    assert steps[2].argv == ("cd", "sub") and steps[2].expected == ()
    assert isinstance(steps[3], Command) and steps[3].argv == ("cd", "..")
    assert len(steps) == 4  # the uncaptioned yaml block is only shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```console\noutput first\n$ serotiny train\n```\n", "comes before any \\$ command"),
        ("```{code-block} text\n:caption: ../outside.txt\nx\n```\n", "must be a relative path"),
    ],
)
def test_pages_that_cannot_be_followed_are_refused(tmp_path: Path, text: str, message: str):
    with pytest.raises(ValueError, match=message):
        page_steps(write_page(tmp_path, text))


def test_shown_output_must_appear_in_order() -> None:
    output = "[INFO] - started run 'a' (123) in 'x'\nepoch 1\n[INFO] - run 'a' (123) finished\n"
    assert output_matches(("started run 'a' (...) in 'x'", "finished"), output) is None
    assert output_matches(("finished", "started run"), output) == "started run"
    assert output_matches(("run 'b'",), output) == "run 'b'"


def test_reader_runs_python_and_checks_what_it_printed(tmp_path: Path) -> None:
    reader = Reader(tmp_path)
    (tmp_path / "sub").mkdir()
    steps = page_steps(
        write_page(
            tmp_path,
            "```{code-block} python\n:caption: sub/hello.py\nprint('hello', 6 * 7)\n```\n"
            "```console\n$ cd sub\n$ python hello.py\nhello 42\n```\n",
        )
    )
    reader.follow(steps)
    assert reader.cwd == tmp_path / "sub"
    assert reader.outcomes[-1].output.strip() == "hello 42"

    wrong = Command("python hello.py", ("python", "hello.py"), ("hello 41",), "page.md:1")
    with pytest.raises(AssertionError, match="did not print 'hello 41'"):
        reader.run(wrong)


def test_reader_refuses_commands_ci_does_not_run(tmp_path: Path) -> None:
    command = Command("mlflow ui", ("mlflow", "ui"), (), "page.md:1")
    with pytest.raises(AssertionError, match="cannot run `mlflow ui`"):
        Reader(tmp_path).run(command)


def test_every_page_with_steps_is_followed_by_a_test() -> None:
    tests = "\n".join(path.read_text() for path in HERE.glob("*.py"))
    followed = set(re.findall(r"\"([\w/]+\.md)\"", tests))
    with_steps = {
        str(page.relative_to(DOCS))
        for page in DOCS.rglob("*.md")
        if "_build" not in page.parts and page_steps(page)
    }
    assert with_steps, "no docs page has commands?"
    assert with_steps <= followed, f"pages no test follows: {sorted(with_steps - followed)}"
