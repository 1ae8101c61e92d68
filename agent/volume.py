"""The instance's volume as its heartbeat reports it. When the data directory lives
on a file system of its own (a loop-mounted image, a Cinder volume), that file
system's use and size are the truth, engine files and all; otherwise (a plain
directory) the engine's own sample of its data directory and the volume's size."""
from __future__ import annotations

import os
from pathlib import Path

GB = 1024 ** 3


def own_file_system(data: Path) -> Path | None:
    """The mount point the data directory lives on top of, if it is its own."""
    real = Path(os.path.realpath(data))
    for candidate in (real, real.parent):
        if os.path.ismount(candidate):
            return candidate
    return None


def usage(data: Path, volume_gb: int, sampled_used: int) -> tuple[int, int]:
    """(used bytes, total bytes) of the instance's volume."""
    if own_file_system(data) is not None:
        try:
            st = os.statvfs(data)
            return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize
        except OSError:  # unmounted for a moment (a volume resize)
            pass
    return sampled_used, volume_gb * GB
