"""Every broken entry under tests/data/invalid/ gets its exact `path:line: message` and exit 1.

A case file holds one or more files, each after a `# file: FOLDER/NAME` line, and the complete list of
problems `kb validate` must print, as `# expect: PATH:LINE: MESSAGE` lines.
"""
from pathlib import Path

import pytest

from .conftest import DATA, make_root, run_kb

CASES = sorted((DATA / "invalid").glob("*.yaml"))


def read_case(path: Path) -> tuple[dict[str, str], list[str]]:
    files: dict[str, list[str]] = {}
    expected: list[str] = []
    current = None
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("# file: "):
            current = line[len("# file: "):].strip()
            files[current] = []
        elif line.startswith("# expect: "):
            expected.append(line[len("# expect: "):].rstrip("\n"))
        elif current is not None:
            files[current].append(line)
    return {name: "".join(lines) for name, lines in files.items()}, expected


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_broken_entry_is_reported_exactly(case, tmp_path):
    root = make_root(tmp_path)
    files, expected = read_case(case)
    assert expected, f"{case.name} names no expected problem"
    for name, text in files.items():
        target = root / "entries" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    result = run_kb("validate", cwd=root)
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.problem_lines == expected
