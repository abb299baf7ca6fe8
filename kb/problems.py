"""Problems found in a knowledge base, as values: collected by every stage, printed by the CLI."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the knowledge base, located at a file and line."""

    path: str
    line: int
    message: str
    code: str = "error"
    hint: str | None = None
    severity: str = "error"  # or "warning"

    def format(self) -> str:
        text = f"{self.path}:{self.line}: {self.message}" if self.path else self.message
        if self.hint:
            text += f" — {self.hint}"
        return text


class KBError(Exception):
    """A knowledge base (or a query) the user must fix; carries its problems."""

    def __init__(self, problems: Iterable[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("", 0, problems)]
        self.problems = sorted(problems, key=problem_order)
        super().__init__("\n".join(p.format() for p in self.problems))


class UsageError(Exception):
    """The command was called wrongly (exit 2)."""


def problem_order(p: Problem):
    return (p.path, p.line, p.message)


def did_you_mean(word: str, choices: Iterable[str], quote: str = "`") -> str | None:
    """A 'did you mean …?' hint for the closest choices, or None."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=2, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"{quote}{c}{quote}" for c in close) + "?"


def relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
