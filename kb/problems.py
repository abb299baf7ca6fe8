"""Problems found in a knowledge base, as values: collected by every stage, printed by the CLI."""
from __future__ import annotations

import difflib
import re
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
        """One line, `path:line: message — hint`; line breaks and invisible controls quoted from entries are
        shown escaped (`\\n`, `\\u202e`), so a message can neither split nor reorder the line."""
        text = f"{self.path}:{self.line}: {self.message}" if self.path else self.message
        if self.hint:
            text += f" — {self.hint}"
        return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


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
