"""The local driver's volumes with the real tools: a loop-mounted ext4 image per
instance that holds the data directory, grown offline, unmounted on release; or,
in plain mode, nothing but a directory the engine makes."""
from __future__ import annotations

import os

import pytest

from services.provisioner.drivers import local_volumes as volumes

GB = 1024 ** 3


@pytest.fixture
def instance_dir(tmp_path):
    directory = tmp_path / "instance"
    directory.mkdir()
    yield directory
    volumes.release_all(tmp_path)  # nothing stays mounted, whatever the test did


@pytest.mark.skipif(os.geteuid() != 0, reason="loop mounts need root")
def test_a_loop_volume_holds_the_data_directory_and_grows(instance_dir, monkeypatch):
    monkeypatch.setenv("COFFER_LOCAL_VOLUMES", "loop")
    volumes.ensure(instance_dir, 1)
    volumes.ensure(instance_dir, 1)  # idempotent
    data = instance_dir / "data"
    assert volumes.is_mounted(instance_dir) and data.is_symlink() and data.resolve().parent == instance_dir / "volume"
    (data / "kept").write_text("before growing")
    st = os.statvfs(data)
    assert 0.9 * GB < st.f_blocks * st.f_frsize <= GB
    assert (instance_dir / "volume.img").stat().st_blocks * 512 < 0.2 * GB  # sparse

    volumes.grow(instance_dir, 2)
    st = os.statvfs(data)
    assert 1.9 * GB < st.f_blocks * st.f_frsize <= 2 * GB
    assert (data / "kept").read_text() == "before growing"

    volumes.release(instance_dir)
    assert not volumes.is_mounted(instance_dir) and not (data / "kept").exists()
    volumes.ensure(instance_dir, 2)  # mounted again, as a relaunch does
    assert (data / "kept").read_text() == "before growing"


def test_plain_mode_makes_no_volume(instance_dir, monkeypatch):
    monkeypatch.setenv("COFFER_LOCAL_VOLUMES", "plain")
    volumes.ensure(instance_dir, 1)
    volumes.grow(instance_dir, 2)
    assert list(instance_dir.iterdir()) == [] and not volumes.is_mounted(instance_dir)
    monkeypatch.setenv("COFFER_LOCAL_VOLUMES", "lvm")
    with pytest.raises(ValueError, match="COFFER_LOCAL_VOLUMES"):
        volumes.mode()
