"""Writing a site into a fresh folder and swapping it into place only when it is complete."""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..faults import fault_point
from ..workers import Child, alive

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where the system or the filesystem
    cannot, an OSError if it can but failed (a path gone, a read-only folder)."""
    try:  # the C library this process runs with (find_library("c") runs `ldconfig -p`: 2 ms of a rebuild)
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(a))


def _stale_builds(out: Path):
    """Folders left beside `out` by builds that were killed (their process is gone)."""
    for pattern in (f".{out.name}.build-*", f".{out.name}.old-*"):
        for path in out.parent.glob(pattern):
            pid = path.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not alive(int(pid)):
                yield path


def spare_of(out: Path) -> Path:
    """Where the site before the one in `out` is kept, for the next build to start from (`atomic_folder`)."""
    out = out.resolve()
    return out.parent / f".{out.name}.spare"


def folder_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of folder `path`, None if there is none: a folder moved keeps it, another has its own."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


@dataclass
class BuildFolder:
    """The folder a build writes (`atomic_folder`). `from_spare`: it is the spare site (`spare_of`) moved into
    place, not a new empty folder: it holds files already, which may be hard links to files of the site in
    `out`, so a file in it is replaced by a new one (unlinked first), never written over (kb/site/build.py
    `SiteWriter.write`). `keep`, set by the build: keep the previous site as the spare if it is the folder of
    that identity (the one whose files the build listed). `kept`: after the swap, the identity of the previous
    site, if it was kept."""

    path: Path
    from_spare: bool = False
    keep: tuple[int, int] | None = None
    kept: tuple[int, int] | None = None


@contextmanager
def atomic_folder(out: Path, spare: tuple[int, int] | None = None):
    """Yield a `BuildFolder`; on success it replaces `out` in one step, on failure it is removed.

    `spare`: the identity (`folder_identity`) of the spare site the caller knows (kb/site/incremental.py
    `State.spare`); if the spare is still that folder, the build starts from it rather than from an empty
    folder, and then brings it up to date: a rebuild after one edit replaces a few files instead of linking
    32,000 from the previous site (0.3-0.4 s of a rebuild at 10,000 systems). With `keep` set on the folder,
    the previous site becomes the spare after the swap if it is that folder, rather than being removed; else
    the spare, if any, is removed.

    Killed at any moment, this leaves `out` either as it was or complete and new, plus at most this
    build's folder beside it, which the next build removes (and with it the spare it started from).
    """
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in _stale_builds(out):
        shutil.rmtree(stale, ignore_errors=True)
    if (out.parent / f".{out.name}-trash").is_dir():  # what an earlier remover had no time for
        _empty_in_background(out.parent / f".{out.name}-trash")
    fault_point("stale-removed")
    work = out.parent / f".{out.name}.build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    folder = BuildFolder(work)
    kept = spare_of(out)
    if spare is not None and folder_identity(kept) == spare:
        try:
            os.rename(kept, work)  # (another build taking it at the same moment: one of the two renames fails)
            folder.from_spare = folder_identity(work) == spare
        except OSError:
            pass
    if not folder.from_spare:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
    held = os.open(work, os.O_RDONLY | os.O_DIRECTORY)  # to notice the folder being removed meanwhile
    try:
        fault_point("work-created")
        yield folder
        fault_point("content-written")
        _check_still_there(work, held)
        folder.kept = _swap_in(work, out, kept, folder.keep)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # the unfinished site, or after the swap the previous one
        raise
    finally:
        os.close(held)
    fault_point("cleaned")


def _check_still_there(work: Path, held: int) -> None:
    """Refuse a build folder that was removed during the build (a cleaner, a person): the writes after that
    recreated it, so it holds only part of the site."""
    try:
        same = os.path.samestat(os.stat(work), os.fstat(held))
    except FileNotFoundError:
        same = False
    if not same:
        raise FileNotFoundError(errno.ENOENT, "the build folder was removed during the build", str(work))


def _swap_in(work: Path, out: Path, spare: Path, keep: tuple[int, int] | None) -> tuple[int, int] | None:
    """Put the complete site `work` at `out`. The previous site, if any, is moved to `spare` (its identity
    returned) if it is the folder `keep` names, else removed; a spare left from before is removed."""
    if not out.exists():
        os.replace(work, out)
        fault_point("swapped")
        previous = None
    elif _exchange(work, out):
        fault_point("swapped")
        previous = work  # now the previous site
    else:  # no atomic exchange here: two renames; a crash between them leaves both sites beside `out`
        previous = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, previous)
        try:
            os.replace(work, out)
        except BaseException:
            os.replace(previous, out)
            raise
        fault_point("swapped")
    stale = spare_of(out)
    if stale.exists():
        _discard(stale, out)
    if previous is None:
        return None
    if keep is not None and folder_identity(previous) == keep:
        try:
            os.rename(previous, spare)
            return folder_identity(spare)
        except OSError:
            pass
    _discard(previous, out)
    return None


def _discard(folder: Path, out: Path) -> None:
    """Remove a previous site without waiting for it: moved into `.NAME-trash` beside the site, then
    deleted by a detached `rm -rf`. Unlinking tens of thousands of files takes seconds on some disks
    (ext4 mounted with `discard`: ≈ 1 ms a file), and the new site is already in place. What a killed
    remover leaves is removed the same way by the next build."""
    trash = out.parent / f".{out.name}-trash"
    try:
        trash.mkdir(exist_ok=True)
        os.replace(folder, trash / f"{folder.name}-{time.time_ns()}")
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return
    _empty_in_background(trash)


def _empty_in_background(trash: Path) -> None:
    leftovers: list[str] = []
    try:
        leftovers = [str(p) for p in trash.iterdir()]
        if leftovers:
            # then the emptied trash folder itself, unless another build put something in it meanwhile
            subprocess.Popen(["sh", "-c", 'rm -rf -- "$@"; rmdir -- "$0" 2>/dev/null', str(trash), *leftovers],
                             start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    except OSError:
        for path in leftovers:
            shutil.rmtree(path, ignore_errors=True)


class Links:
    """The hard links of a rebuild's reused files, from the previous site into the new one. Many of them
    (32,000 at 10,000 systems: 0.6-0.7 s of system calls) are made by a forked child while this process
    renders the rest; a thread could not, as it would wait for the interpreter lock after every link.

    `add` the links as the units are found reused, `start` once the bulk is known, `finish` before anything
    reads the new folder (it makes what was added since, waits for the child and raises its error), and
    `cancel` on failure, before the unfinished folder is removed."""

    FORKED = 2_000  # fewer are made here: forking the building process costs a few ms per 100 MB

    def __init__(self, old: Path, work: Path):
        self.old, self.work = str(old), str(work)
        self._todo: list[tuple[int, int, str, str]] = []  # (folder in old, folder in work, name, path)
        self._child: Child | None = None

    def __enter__(self) -> "Links":
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.finish()
        else:
            self.cancel()

    def add(self, folders: tuple[int, int], name: str, path: str) -> None:
        self._todo.append((*folders, name, path))

    def start(self) -> None:
        if len(self._todo) < self.FORKED or self._child is not None:
            return
        todo = self._todo
        self._child = Child.fork(lambda: self._link(todo), "the process linking the reused files")
        if self._child is not None:  # else (no fork, out of processes): `finish` makes them all here
            self._todo = []

    def finish(self) -> None:
        todo, self._todo = self._todo, []
        try:
            self._link(todo)
        finally:
            if self._child is not None:
                self._child.result()  # raises the child's error
                self._child = None

    def cancel(self) -> None:
        self._todo = []
        if self._child is not None:
            self._child.kill()
            self._child = None

    def _link(self, todo: list) -> None:
        for old_folder, new_folder, name, path in todo:
            try:  # relative to the two folders: no path resolved twice a file
                os.link(name, name, src_dir_fd=old_folder, dst_dir_fd=new_folder)
            except FileExistsError:  # an older version, in a build started from the spare site: replaced
                os.unlink(name, dir_fd=new_folder)
                self._link([(old_folder, new_folder, name, path)])
            except OSError:  # a filesystem without hard links
                shutil.copy2(os.path.join(self.old, path), os.path.join(self.work, path))
