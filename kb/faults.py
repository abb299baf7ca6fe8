"""A test hook that makes the process fail at a named point, so tests can check that nothing is lost there."""
from __future__ import annotations

import errno
import os
import signal

VARIABLE = "MILKB_FAULT_AT"


def fault_point(name: str) -> None:
    """With MILKB_FAULT_AT=name, die here at once: SIGKILL, no cleanup, as a crash or `kill -9` would.

    MILKB_FAULT_AT=name:stop stops the process here instead (SIGSTOP) until a test continues it (SIGCONT),
    so the test can change the world in between; name:enospc fails here as a full disk would.
    """
    point, _, action = os.environ.get(VARIABLE, "").partition(":")
    if point != name:
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.kill(os.getpid(), signal.SIGSTOP if action == "stop" else signal.SIGKILL)
