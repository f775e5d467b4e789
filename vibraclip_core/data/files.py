"""Writing files so that a reader sees a whole file or none: the package's one atomic write."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | Path, suffix: str = "", mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside `path` to write to, renamed onto `path` when the block ends and
    removed when it raises: a killed or failed job never leaves half a file under the final name.

    The name is unique per process (chapters run side by side, pools write in parallel);
    `suffix` ends it for writers that add their own (np.savez appends '.npz'); `mode` sets the
    permissions of versioned files (0o644, readable like the rest of the repository)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
