"""The rules table (docs/aws-rules.md) is enforced: every row names a rule, its source and a
test that exists, so a rule the emulator does not hold the code to is never just prose."""

from __future__ import annotations

import ast
import re

from conftest import REPO

TABLE = REPO / "docs/aws-rules.md"
TEST_REF = re.compile(r"^`(tests/[\w/]+\.py)::(\w+)`$")


def rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    return [row for row in cells[1:] if not set("".join(row)) <= set("- ")]  # no header, no rule line


def functions_in(path: str) -> set[str]:
    tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def problems(text: str) -> list[str]:
    """One line per row that names no rule, no source, or no test that exists."""
    found = []
    for row in rows(text):
        if len(row) != 3 or not all(row):
            found.append(f"row {row}: needs a rule, a source and a test")
            continue
        rule, _, test = row
        reference = TEST_REF.match(test)
        if not reference:
            found.append(f"{rule[:60]}: the test column must be `tests/FILE.py::test_name`, not {test!r}")
        elif not (REPO / reference.group(1)).is_file():
            found.append(f"{rule[:60]}: {reference.group(1)} does not exist")
        elif reference.group(2) not in functions_in(reference.group(1)):
            found.append(f"{rule[:60]}: {reference.group(1)} has no {reference.group(2)}")
    return found


def test_every_row_names_a_rule_a_source_and_a_test_that_exists() -> None:
    text = TABLE.read_text(encoding="utf-8")
    assert len(rows(text)) >= 20
    assert problems(text) == []


def test_a_row_whose_test_is_gone_or_unnamed_is_caught() -> None:
    table = "\n".join(
        [
            "| rule | source | test |",
            "| --- | --- | --- |",
            "| gone | a page | `tests/test_names.py::test_that_does_not_exist` |",
            "| prose | a page | see the endpoint tests |",
            "| no source |  | `tests/test_names.py::test_the_limits_are_the_api_models` |",
            "| fine | a page | `tests/test_names.py::test_the_limits_are_the_api_models` |",
        ]
    )
    assert problems(table) == [
        "gone: tests/test_names.py has no test_that_does_not_exist",
        "prose: the test column must be `tests/FILE.py::test_name`, not 'see the endpoint tests'",
        "row ['no source', '', '`tests/test_names.py::test_the_limits_are_the_api_models`']: needs a rule, a source "
        "and a test",
    ]
