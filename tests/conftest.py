"""Shared fixtures: a small valid knowledge base copied to a temporary root, the bundled corpus copied (with its
site built once per session), one headless Chromium per session, and the real `kb` command."""
from __future__ import annotations

import os
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
# the parse-cache key: outside every knowledge base, one folder for each pytest-xdist worker
TEST_CACHE_HOME = Path(tempfile.gettempdir()) / f"milkb-tests-cache-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
BUNDLED = ("entries", "ontology", "site_build", "queries", "kb.toml")  # what a knowledge base is made of
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


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


def run_kb(*args: str, cwd: Path | None = None, input: str | None = None, env: dict | None = None,
           stdout: int = subprocess.PIPE) -> Run:
    """`kb` with these arguments, run as a user would; `stdout` a descriptor to write to instead of a pipe
    this test reads (the output is then "")."""
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "COLUMNS": "200",
                   "HOME": str(cwd or REPO),
                   "XDG_CACHE_HOME": str(TEST_CACHE_HOME),
                   **(env or {})}
    proc = subprocess.run([kb_executable(), *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True,
                          input=input, timeout=300, env=environment)
    return Run(proc.returncode, proc.stdout or "", proc.stderr)


def settled(root: Path) -> None:
    """Wait for the process a build leaves keeping its state for the next one (kb/site/update.py `settled`):
    a test that reads or changes the kept state right after a build reads the one that build kept."""
    from kb.config import load_config
    from kb.site.update import settled as wait

    wait(load_config(root))


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


def copy_bundled(root: Path) -> Path:
    """The bundled corpus (entries, ontology, templates, saved queries, kb.toml) copied to `root`."""
    root.mkdir(parents=True)
    for name in BUNDLED:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, root / name)
    return root


@pytest.fixture(scope="session", autouse=True)
def _cache_home():
    """In-process loads sign their caches with the key the `kb` commands use, never the user's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(TEST_CACHE_HOME))
        yield


@pytest.fixture(scope="session")
def bundled_root(tmp_path_factory) -> Path:
    """A copy of the bundled corpus, for the tests that only read it: its .kb-cache is the session's own (not the
    work tree's, nor another pytest-xdist worker's)."""
    return copy_bundled(tmp_path_factory.mktemp("bundled") / "kb")


@pytest.fixture(scope="session")
def bundled_kb(bundled_root):
    """The bundled corpus loaded and validated in this process, for the tests that only read its graph."""
    from kb.knowledge_base import load_valid_kb

    return load_valid_kb(bundled_root)


@pytest.fixture(scope="session")
def bundled_site(bundled_root, tmp_path_factory) -> Path:
    """The bundled corpus's site as `kb build` makes it by default (with the pagefind search index), built once per
    session for the tests that read it (tests/test_site.py) and browse it (tests/test_site_browser.py)."""
    out = tmp_path_factory.mktemp("bundled-site") / "site"
    result = run_kb("build", "-o", str(out), cwd=bundled_root)
    assert result.code == 0, result.stderr
    return out


def require_chromium():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)  # under CI a missing browser is a failure, never a skip
        pytest.skip(message)


def search_results(page, timeout: int = 60_000):
    """The links of the search results pagefind shows, once each has loaded: it loads every result's data on
    its own, showing a placeholder without a link until then, so the first link may not be the first result."""
    from playwright.sync_api import expect

    links = page.locator(".pagefind-ui__result-link")
    links.first.wait_for(timeout=timeout)
    expect(page.locator(".pagefind-ui__loading")).to_have_count(0, timeout=timeout)
    return links


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's, driven by playwright) for the session; each test opens its own context."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def kb_root(tmp_path: Path) -> Path:
    return make_root(tmp_path)


@pytest.fixture
def kb(kb_root):
    from kb.knowledge_base import load_valid_kb

    return load_valid_kb(kb_root)
