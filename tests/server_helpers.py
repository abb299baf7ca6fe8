"""Real servers for the tests and benchmarks: a free port, an Oxigraph server, `kb serve`, and waiting for them."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from .conftest import TEST_CACHE_HOME, kb_executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write the entry file `path` as an editor saving it whole does, a new file renamed into place: a
    server's watcher never sees it half-written (`write_text` empties it first, and a pause before it writes
    could start two rebuilds). The new file is made beside the knowledge base's root, outside what is watched."""
    fd, tmp = tempfile.mkstemp(dir=path.parents[2].parent, suffix=".yaml")
    with os.fdopen(fd, "w", encoding=encoding) as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # as a file an editor writes (mkstemp makes it 0600)
    os.replace(tmp, path)


def require(found, message: str):
    """A missing tool fails the test under CI and skips it elsewhere."""
    if not found:
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return found


def wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    """Poll `url` until the server answers; fail with its log if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    stop(process)
    raise AssertionError(f"the server did not answer {url} within {seconds} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, seconds: float = 60) -> int:
    """Interrupt a server as Ctrl-C would, and kill it if it does not stop."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def oxigraph_executable() -> str | None:
    """The `oxigraph` server binary from the PyPI package `oxigraph` (installed with the test extra)."""
    script = Path(sys.executable).with_name("oxigraph")
    return str(script) if script.exists() else shutil.which("oxigraph")


def _on_a_free_port(start, log: Path, path: str, seconds: float = 90) -> tuple[subprocess.Popen, str]:
    """`start(port)` on a port free a moment ago, until it answers `path`; again on another port if one
    started meanwhile (the other pytest worker's servers) took it first."""
    for attempt in range(3):
        port = free_port()
        process = start(port)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(f"{base}{path}", process, log, seconds)
            return process, base
        except AssertionError:
            if attempt == 2 or process.poll() is None or "already in use" not in log.read_text(errors="replace"):
                raise
    raise AssertionError("unreachable")


def start_oxigraph(folder: Path) -> tuple[subprocess.Popen, str]:
    """An Oxigraph server storing into `folder`, on a free port; (process, base URL)."""
    executable = require(oxigraph_executable(), "the oxigraph server is not installed: pip install -e '.[test]'")
    log = folder / "oxigraph.log"
    folder.mkdir(parents=True, exist_ok=True)

    def start(port: int) -> subprocess.Popen:
        with open(log, "w") as out:
            return subprocess.Popen([executable, "serve", "--location", str(folder / "store"),
                                     "--bind", f"127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT)

    return _on_a_free_port(start, log, "/query?query=ASK%7B%7D")


def start_kb_serve(root: Path, *args: str, log: Path, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """The real `kb serve` command in `root`, on a free port, with `env` added to its environment; (process,
    base URL)."""
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(root),
                   "XDG_CACHE_HOME": str(TEST_CACHE_HOME), **(env or {})}

    def start(port: int) -> subprocess.Popen:
        with open(log, "w") as out:
            return subprocess.Popen([kb_executable(), "serve", "--port", str(port), *args], cwd=root,
                                    stdout=out, stderr=subprocess.STDOUT, env=environment)

    return _on_a_free_port(start, log, "/sparql", seconds=300)
