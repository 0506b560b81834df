"""Turn the paths the compiler opens into what a worker must recreate: files, folders, links.

``..`` is only folded where the folder before it is not a symbolic link (``link/..`` is the
link target's parent, not the link's); the folders that ``..`` climbs out of must exist on the
worker too.  Links along shipped paths are reported with their stored target so the worker can
rebuild the same tree; cycles are cut after a fixed depth, as the kernel does.
"""

from __future__ import annotations

import os
import stat

from include_server.analysis.store import Snapshot

MAX_LINK_DEPTH = 40


def safe_norm(snap: Snapshot, path: str, bases: dict[str, None]) -> str:
    """Normalise an absolute path where that cannot change its meaning; record '..' bases."""
    if "/." not in path and "//" not in path:
        return path
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part != "..":
            out.append(part)
            continue
        current = "/" + "/".join(out)
        bases[current] = None
        if not out:
            continue
        st = snap.lstat(current)
        if out[-1] == ".." or (st is not None and stat.S_ISLNK(st.st_mode)):
            out.append("..")
        else:
            out.pop()
    return "/" + "/".join(out)


class Links:
    """Symbolic links met along paths, found with lstat (cached per call)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.links: dict[tuple[str, str], None] = {}
        self.real_dirs: dict[str, None] = {}
        self._done: set[tuple[str, bool]] = set()

    def add(self, path: str, is_dir: bool = False, depth: int = 0) -> None:
        """Record every link along ``path`` and, through them, the folders they lead to."""
        if (path, is_dir) in self._done or depth > MAX_LINK_DEPTH:
            return
        self._done.add((path, is_dir))
        parts = [p for p in path.split("/") if p]
        current = ""
        for n, part in enumerate(parts):
            candidate = current + "/" + part
            st = self.snap.lstat(candidate)
            if st is None:
                return
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(candidate)
                except OSError:
                    return
                self.links[(candidate, target)] = None
                resolved = os.path.join(current or "/", target)
                rest = "/".join([resolved.rstrip("/")] + parts[n + 1 :])
                real = os.path.normpath(rest)
                self.real_dirs[real if is_dir else os.path.dirname(real)] = None
                self.add(real, is_dir, depth + 1)
                return
            current = candidate
