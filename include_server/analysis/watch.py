"""Remember file system answers until inotify says they may have changed.

Without this, every ``closure()`` re-stats each file and folder it relies on -- about 300 system
calls for a curl translation unit -- because a header may be edited or generated at any moment.
With it, an answer (a stat, an lstat, "this folder listing is current") taken while its folder is
watched stays valid until an event arrives in that folder, so a warm compile makes no system calls
for files that did not change.

Soundness rests on two rules.  A folder counts as watched only when it *and every folder above it*
carry a watch (a rename or a replaced symbolic link higher up changes what a path means without any
event in the folder itself); a folder reached through a symbolic link is never watched, so paths
through links are re-checked each time, as before.  And the watch is placed before the answer is
taken, so any later change produces an event.  An event for ``NAME`` in folder ``F`` forgets every
answer about ``F/NAME`` and everything below it, and ``F``'s listing; an overflowing event queue
forgets everything.  Changes made by another machine on a network file system produce no event:
``PUMPCC_WATCH=0`` in the server's environment turns watching off (every answer re-checked, as
without inotify).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

# <sys/inotify.h>
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

_MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
)
_NAMES_CHANGE = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE  # the folder's listing moves
_SELF_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED
MAX_WATCHES = 50_000  # beyond this, folders are simply re-checked on every call
MAX_ANSWERS = 500_000  # about 100 MB; beyond it everything is forgotten and asked again

MISSING = object()


def _libc():
    """The C library's inotify functions, or None where they do not exist."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        return libc
    except (OSError, AttributeError):
        return None


class Watch:
    """Answers about paths, kept while inotify reports no change to them.

    ``get(kind, path)`` returns a remembered answer or ``MISSING``; ``put`` remembers one if the
    path is covered by watches.  Kinds: ``"s"`` stat, ``"l"`` lstat (both for ``path``, covered
    by its folder), ``"d"`` a listing of the folder ``path`` (covered by the folder itself).
    ``changes`` counts the events that made the watch forget something: a result computed from
    remembered answers stays valid while it does not move.
    """

    def __init__(self, enabled: bool = True) -> None:
        self._libc = _libc() if enabled else None
        self._fd = -1
        if self._libc is not None:
            self._fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        self._answers: dict[tuple[str, str], object] = {}
        self._children: dict[str, set[str]] = {}  # path -> the names below it with answers
        self._covered: dict[str, bool] = {}  # folder -> whether it and its ancestors are watched
        self._wd_paths: dict[int, set[str]] = {}
        self._path_wd: dict[str, int] = {}
        self.changes = 0

    def __del__(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # its watches go with it
            self._fd = -1

    @property
    def active(self) -> bool:
        """Whether inotify works here (otherwise nothing is ever remembered)."""
        return self._fd >= 0

    def get(self, kind: str, path: str) -> object:
        """The remembered answer, or ``MISSING``."""
        return self._answers.get((kind, path), MISSING)

    def put(self, kind: str, path: str, value: object) -> bool:
        """Remember ``value`` if ``path`` is covered by watches; return whether it was kept.

        The caller must have checked ``covers`` (which places the watches) before it took the
        answer, so that no change can slip in between."""
        folder = path if kind == "d" else os.path.dirname(path)
        if not self._covered.get(folder):
            return False
        if len(self._answers) >= MAX_ANSWERS:  # bound a server that lives for months
            self._forget_all()
            return False
        self._answers[(kind, path)] = value
        self._link(path)
        return True

    def covers(self, path: str, kind: str = "s") -> bool:
        """Place the watches an answer about ``path`` needs; whether they are all in place."""
        if self._fd < 0:
            return False
        folder = path if kind == "d" else os.path.dirname(path)
        found = self._covered.get(folder)
        if found is None:
            found = self._cover(folder)
        return found

    def _cover(self, folder: str) -> bool:
        """Watch ``folder`` and every folder above it; a missing folder leans on its parent."""
        parent = os.path.dirname(folder)
        above = True if parent == folder else self._covered.get(parent)
        if above is None:
            above = self._cover(parent)
        if not above:
            self._covered[folder] = False
            return False
        wd = -1
        if len(self._path_wd) < MAX_WATCHES:
            wd = self._libc.inotify_add_watch(self._fd, os.fsencode(folder), _MASK)
        if wd >= 0:
            self._wd_paths.setdefault(wd, set()).add(folder)
            self._path_wd[folder] = wd
            covered = True
        else:
            # A folder that does not exist is covered by its parent's watch: creating it is an
            # event there.  A symbolic link, a file in the way, or no watch left: not covered.
            covered = ctypes.get_errno() == errno.ENOENT
        self._covered[folder] = covered
        self._link(folder)
        return covered

    def _link(self, path: str) -> None:
        """Index ``path`` under its parents, so an event above it can find and forget it."""
        while True:
            parent, _, name = path.rpartition("/")
            parent = parent or "/"
            if parent == path:
                return
            names = self._children.setdefault(parent, set())
            if name in names:
                return
            names.add(name)
            path = parent

    def drain(self) -> None:
        """Read the pending events and forget what they concern (never blocks)."""
        if self._fd < 0:
            return
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                self._forget_all()
                return
            offset = 0
            while offset + 16 <= len(data):
                wd = int.from_bytes(data[offset : offset + 4], "little", signed=True)
                mask = int.from_bytes(data[offset + 4 : offset + 8], "little")
                size = int.from_bytes(data[offset + 12 : offset + 16], "little")
                name = data[offset + 16 : offset + 16 + size].rstrip(b"\0")
                offset += 16 + size
                self._event(wd, mask, os.fsdecode(name))

    def _event(self, wd: int, mask: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:
            self._forget_all()
            return
        for folder in list(self._wd_paths.get(wd, ())):
            if mask & _SELF_GONE:
                self._forget_tree(folder)
                continue
            if mask & _NAMES_CHANGE:
                self._drop(("d", folder))
            self._forget_tree(folder.rstrip("/") + "/" + name)

    def _drop(self, key: tuple[str, str]) -> None:
        if self._answers.pop(key, MISSING) is not MISSING:
            self.changes += 1

    def _forget_tree(self, path: str) -> None:
        """Forget every answer about ``path`` and below, and the watches that lived there."""
        for kind in ("s", "l", "d"):
            self._drop((kind, path))
        if self._covered.pop(path, None) is not None:
            self.changes += 1
        wd = self._path_wd.pop(path, None)
        if wd is not None:
            paths = self._wd_paths.get(wd)
            if paths is not None:
                paths.discard(path)
                if not paths:
                    del self._wd_paths[wd]
                    self._libc.inotify_rm_watch(self._fd, wd)
        for name in self._children.pop(path, ()):
            self._forget_tree(path.rstrip("/") + "/" + name)

    def _forget_all(self) -> None:
        self._answers.clear()
        self._covered.clear()
        self._children.clear()
        for wd in self._wd_paths:
            self._libc.inotify_rm_watch(self._fd, wd)
        self._wd_paths.clear()
        self._path_wd.clear()
        self.changes += 1
