"""The local driver's volumes: the disk quota of an instance's data directory.

`loop` (root, with the e2fsprogs and util-linux tools): each instance has a sparse
file `volume.img` of its volume's size holding an ext4 file system, loop-mounted at
`<instance>/volume`; the engine's data directory `<instance>/data` is a symbolic link
to `volume/data`, so a full volume is a full disk to the engine, and the file system
reports what is used. Grown offline (unmounted: online growth needs a capability
containers often lack), as Trove does with a Cinder volume.
`plain`: `<instance>/data` is a plain directory; the size is only reported.
COFFER_LOCAL_VOLUMES=loop|plain|auto (auto: loop when it can)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

IMAGE, MOUNT, DATA = "volume.img", "volume", "data"
TOOLS = ("mkfs.ext4", "e2fsck", "resize2fs", "mount", "umount")
GB = 1024 ** 3


class VolumeError(RuntimeError):
    pass


def mode() -> str:
    wanted = os.environ.get("COFFER_LOCAL_VOLUMES", "auto").lower()
    if wanted not in ("loop", "plain", "auto"):
        raise ValueError(f"COFFER_LOCAL_VOLUMES={wanted!r}: want loop, plain or auto")
    if wanted == "auto":
        return "loop" if os.geteuid() == 0 and all(shutil.which(t) for t in TOOLS) else "plain"
    return wanted


def _run(*argv: str, timeout: float = 120) -> None:
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          timeout=timeout)
    # e2fsck: 1 = errors corrected, which is fine
    if done.returncode != 0 and not (argv[0] == "e2fsck" and done.returncode == 1):
        raise VolumeError(f"{' '.join(argv[:2])} exited {done.returncode}: "
                          f"{done.stdout.decode(errors='replace').strip()[-500:]}")


def is_mounted(directory: Path) -> bool:
    return os.path.ismount(directory / MOUNT)


def ensure(directory: Path, size_gb: int) -> None:
    """Idempotent: make and mount the instance's volume (loop), or nothing (plain)."""
    image, mount = directory / IMAGE, directory / MOUNT
    if not image.exists() and mode() != "loop":
        return
    if not image.exists():
        scratch = image.with_name(IMAGE + ".partial")
        with open(scratch, "wb") as f:
            f.truncate(size_gb * GB)  # sparse: takes disk only as the engine writes
        # no blocks reserved for root: the engines never run as root
        _run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", str(scratch))
        scratch.rename(image)
    mount.mkdir(exist_ok=True)
    if not is_mounted(directory):
        _run("mount", "-o", "loop", str(image), str(mount))
    (mount / DATA).mkdir(mode=0o700, exist_ok=True)
    link = directory / DATA
    if not link.is_symlink():
        link.symlink_to(Path(MOUNT) / DATA)


def grow(directory: Path, size_gb: int) -> None:
    """Grow the file and its file system to size_gb, unmounted (the engine is stopped
    meanwhile), then mount it again. A plain volume has nothing to grow."""
    image = directory / IMAGE
    if not image.exists():
        return
    if image.stat().st_size < size_gb * GB:
        release(directory)
        with open(image, "r+b") as f:
            f.truncate(size_gb * GB)
        _run("e2fsck", "-f", "-p", str(image))
        _run("resize2fs", str(image))
    ensure(directory, size_gb)


def release(directory: Path, lazy: bool = False) -> None:
    """Unmount the instance's volume (its loop device goes with it); the image stays."""
    if not is_mounted(directory):
        return
    deadline = time.monotonic() + 10
    while True:
        try:
            done = subprocess.run(["umount", *(["-l"] if lazy else []), str(directory / MOUNT)],
                                  capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:  # flushing a busy disk: a lazy unmount finishes it in the background
            raise VolumeError(f"unmounting {directory / MOUNT} took more than 30 s") from None
        if done.returncode == 0 or not is_mounted(directory):
            return
        if time.monotonic() > deadline:  # still in use: a process of the instance survived
            raise VolumeError(f"cannot unmount {directory / MOUNT}: {done.stderr.decode(errors='replace').strip()}")
        time.sleep(0.2)


def release_all(instances_dir: Path) -> None:
    """Unmount every instance volume under `instances_dir` (lazily if still in use):
    a stopped stack, or a test's clean-up, leaves no mount behind."""
    if not instances_dir.exists():
        return
    for directory in instances_dir.iterdir():
        try:
            release(directory)
        except VolumeError:
            release(directory, lazy=True)
