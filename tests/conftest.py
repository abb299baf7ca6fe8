"""Shared fixtures: a small valid knowledge base copied to a temporary root, and the real `kb` command."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
TEST_CACHE_HOME = Path(tempfile.gettempdir()) / "milkb-tests-cache"


def kb_executable() -> str:
    """The `kb` console script installed with the package (the real entry point)."""
    script = Path(sys.executable).with_name("kb")
    found = str(script) if script.exists() else shutil.which("kb")
    assert found, "the kb command is not installed: pip install -e '.[test]'"
    return found


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def problem_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if re.match(r"^\S+:\d+: ", line)]


def run_kb(*args: str, cwd: Path | None = None, input: str | None = None, env: dict | None = None) -> Run:
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "COLUMNS": "200",
                   "HOME": str(cwd or REPO),
                   "XDG_CACHE_HOME": str(TEST_CACHE_HOME),  # the parse-cache key: outside every knowledge base
                   **(env or {})}
    proc = subprocess.run([kb_executable(), *args], cwd=cwd, capture_output=True, text=True, input=input,
                          timeout=300, env=environment)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def make_root(tmp_path: Path, source: Path = DATA / "kb") -> Path:
    root = tmp_path / "kb"
    shutil.copytree(source, root)
    shutil.copytree(REPO / "ontology", root / "ontology")
    return root


def add_synthetic_systems(root: Path, count: int) -> None:
    """`count` more valid systems, so that building or publishing takes a while (kills land mid-way)."""
    for i in range(1, count + 1):
        (root / "entries" / "systems" / f"synthetic-{i}.yaml").write_text(
            f"name: Synthetic system {i}\ncategory: main-battle-tank\norigin: soviet-union\n"
            f"in_service: {1950 + i % 70}\ncrew: 3\ncombat_mass: {30 + i % 40} t\n"
            f"description: A system made up for the fault tests, number {i}.\nsources: [src-a]\n")


@pytest.fixture
def kb_root(tmp_path: Path) -> Path:
    return make_root(tmp_path)


@pytest.fixture
def kb(kb_root):
    from kb.knowledge_base import load_valid_kb

    return load_valid_kb(kb_root)
