"""Writing a file atomically: the one helper every writer of the study uses (docs/DESIGN.md, Results).

The content goes to a temporary file in the same folder, is flushed and fsynced, and is moved over the target
with ``os.replace``: a reader (or a run killed half-way) sees the old file or the new one, never half of one.
Results tables, figures, SUMMARY.md, run records and outputs, checkpoints, cached pretraining and frozen
features, and notebooks all go through :func:`write_atomically`.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Callable, Union

PathLike = Union[str, os.PathLike]


def write_atomically(path: PathLike, write: Callable[[io.IOBase], None], binary: bool) -> Path:
    """Call ``write(handle)`` on a temporary file next to ``path`` and move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file private (0600); results are meant to be shared, so keep the mode of the
    # file being replaced, else use the usual rw-r--r--.
    mode = path.stat().st_mode & 0o777 if path.is_file() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    text_options = {} if binary else {"encoding": "utf-8", "newline": ""}
    try:
        with os.fdopen(fd, "wb" if binary else "w", **text_options) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable; not possible on every platform
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_atomically(path, lambda handle: handle.write(text), binary=False)


def atomic_torch_save(obj, path: PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; returns the path."""
    import torch

    return write_atomically(path, lambda handle: torch.save(obj, handle), binary=True)

