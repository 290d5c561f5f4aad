"""An exclusive lock on a file, so that two processes never do the same expensive work at once.

Used beside a run's checkpoint (two notebooks, or two workers, asking for the same training run:
the second waits, then loads what the first finished) and around the one-off embedded pretraining.
The lock is an advisory ``flock`` on a small file; the operating system releases it when the
holding process dies, so a killed run never leaves a stale lock behind. POSIX only (Linux, macOS).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Callable, Iterator, Optional


@contextlib.contextmanager
def exclusive(path: os.PathLike, on_wait: Optional[Callable[[], None]] = None,
              poll_seconds: float = 0.5) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block.

    If another process holds it, ``on_wait()`` is called once and the call blocks until the lock
    is free."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(poll_seconds)
        try:
            yield path
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
