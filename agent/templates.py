"""Template data directories: made once per host and engine version, copied for
each new instance (a copy starts sooner than the engine's own init)."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

from .engine_user import EngineCommandError, run


def ensure_template(template: Path, is_complete: Callable[[Path], bool], build: Callable[[Path], None]) -> Path:
    """`template` once it exists; else `build(scratch)` makes one in a scratch
    directory renamed into place, so agents racing to make it never see half of one."""
    if is_complete(template):
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(template.parent, 0o755)
    scratch = template.with_name(f".{template.name}-{uuid.uuid4().hex}")
    scratch.mkdir(mode=0o700)
    try:
        build(scratch)
        # with SIGCHLD ignored (the launcher), a failed tool looks like a success: check
        if not is_complete(scratch):
            raise EngineCommandError(f"{template.name}: the tool finished without making a data directory")
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    try:
        scratch.rename(template)
    except OSError:  # another agent won the race
        shutil.rmtree(scratch, ignore_errors=True)
    return template


def copy_template(template: Path, data: Path) -> None:
    """A private copy of the template at `data`, which appears only when complete.
    `data` may be a link into the instance's volume: the copy is made there."""
    data = Path(os.path.realpath(data))
    partial = data.with_name(data.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    # cp as root: it keeps the template's owner and may write in the instance directory
    run(["cp", "-a", str(template), str(partial)], timeout=120)
    os.chmod(partial, 0o700)
    partial.rename(data)
