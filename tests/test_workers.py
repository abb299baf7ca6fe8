"""kb/workers.py's `Child`: one forked child doing one job beside a command (the fingerprint of the entries,
the links of a rebuild's reused files, the saving of the query store)."""
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kb.workers import Child


def test_a_child_hands_back_what_its_job_returns():
    child = Child.fork(lambda: b"x" * 200_000, "a test child")  # more than a pipe holds at once
    assert child.result() == b"x" * 200_000
    assert child.pid is None  # reaped


def test_a_child_hands_back_its_os_error_as_that_error(tmp_path):
    def job():
        os.link(tmp_path / "missing", tmp_path / "new")

    with pytest.raises(FileNotFoundError) as raised:
        Child.fork(job, "a test child").result()
    assert raised.value.filename == str(tmp_path / "missing")


def test_a_child_that_dies_otherwise_is_an_os_error_naming_it():
    def job():
        raise ValueError("not an OSError")

    with pytest.raises(OSError, match="a test child ended with 2"):
        Child.fork(job, "a test child").result()


def test_a_killed_child_is_reaped_at_once():
    child = Child.fork(lambda: time.sleep(30), "a test child")
    pid = child.pid
    started = time.monotonic()
    child.kill()
    assert time.monotonic() - started < 5
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_a_child_imports_nothing():
    """An import in a forked child can wait forever for a lock another thread of the parent held at the fork
    (`kb show` imports rich in a thread while it forks the fingerprint child: it hung that way). So whatever
    the child's side needs is imported in the parent first. Run in a fresh interpreter, where nothing else
    has imported it already."""
    script = textwrap.dedent("""
        import sys
        from kb.workers import Child
        for with_parent in (True, False):
            child = Child.fork(lambda: "\\n".join(sys.modules).encode(), "a test child", with_parent=with_parent)
            extra = set(child.result().decode().split("\\n")) - set(sys.modules)
            assert not extra, f"the child imported {sorted(extra)}"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_a_detached_job_goes_on_apart_and_leaves_no_zombie_behind(tmp_path):
    """`detached`: the job runs in a child of its own that nothing waits for; a process that goes on reaps the
    children of its earlier detached jobs (no zombie gathers)."""
    from kb.workers import _detached, detached

    def job(name):
        def write():
            (tmp_path / name).write_text(f"{os.getpid()} {os.getppid()}")
        return write

    assert detached(job("first"))
    first = _detached[-1]
    deadline = time.monotonic() + 30
    while not (tmp_path / "first").exists() or _state(first) not in ("Z", None):
        assert time.monotonic() < deadline, "the detached job never ended"
        time.sleep(0.01)
    assert (tmp_path / "first").read_text() == f"{first} {os.getpid()}"  # a child of this process's
    assert _state(first) == "Z"  # ended, not reaped yet
    assert detached(job("second"))
    assert first not in _detached and _state(first) is None  # reaped by the next call
    second = _detached[-1]
    os.waitpid(second, 0)
    _detached.remove(second)


def _state(pid: int) -> str | None:
    """The state letter of process `pid` (Z: a zombie), None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat[stat.rindex(")") + 2]
