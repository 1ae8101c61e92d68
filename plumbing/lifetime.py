"""Child processes that must not outlive the process that started them."""
from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Use as Popen(preexec_fn=...): the child gets SIGTERM when its parent dies,
    even by SIGKILL, instead of being left running as an orphan."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
