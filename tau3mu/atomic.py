"""Files written atomically: a reader sees the old content or the new, never half of it.

The content goes to a temporary file beside the target (same folder, so the same file
system), which is renamed onto the target only once it is complete; a failure leaves
the target as it was and no temporary file behind. New files get the mode ``open()``
would give them (the process's umask applied).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_path", "current_umask", "write_bytes", "write_text"]


def current_umask() -> int:
    """This process's umask, read without changing it where Linux says it (``os.umask``
    can only be read by setting it, which races with threads creating files)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (its folder made if missing); rename it onto
    ``path`` when the block ends without an exception, else remove it. Raises OSError."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp_path = Path(tmp)
    try:
        # mkstemp makes 0600 files; an output gets the mode open() would give it
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """``open(path, mode)`` (text as UTF-8) on a temporary file, renamed onto ``path``
    when the block succeeds (:func:`atomic_path`). Raises OSError."""
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
        yield f


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path``. Raises OSError."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``. Raises OSError."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return Path(path)
