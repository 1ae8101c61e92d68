"""Guest logs' own logic (agent/guest_logs.py) on real files and the local directory
object store: Trove's statuses, publishing only what is new in whole lines, parts of
bounded size, a rotated file published afresh, discard."""
from __future__ import annotations

import asyncio
import json

import pytest

from agent import guest_logs
from agent.guest_logs import SYS, USER, GuestLogs, GuestLogSource, LogDef, Published, UnknownLog
from plumbing.objectstore import LocalDirectoryStore


class FileLogs(GuestLogSource):
    """A datastore whose USER log is switched by a flag: the engine's part, without an engine."""

    def __init__(self, directory):
        self.directory, self.on, self.takes_restart = directory, False, False

    def log_definitions(self):
        return {"slow_query": LogDef("slow_query", USER, self.directory / "slow.log"),
                "error": LogDef("error", SYS, self.directory / "error.log")}

    async def log_enabled(self, name):
        return self.on

    async def switch_log(self, name, on):
        if not self.takes_restart:
            self.on = on
        return self.takes_restart


@pytest.fixture
def logs(tmp_path):
    source = FileLogs(tmp_path)
    return GuestLogs(source, LocalDirectoryStore(tmp_path / "objects"), "inst-1", "mariadb", tmp_path / "state.json")


def objects(tmp_path, prefix="inst-1/mariadb-slow_query/") -> dict[str, bytes]:
    base = tmp_path / "objects" / "database_logs"
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.glob(f"{prefix}*")) if p.is_file()}


def test_status_values_are_troves():
    user, sys_log = LogDef("l", USER, None), LogDef("e", SYS, None)
    assert guest_logs.status(user, False, False, 0, Published(), None) == "Disabled"
    assert guest_logs.status(user, True, False, 0, Published(), None) == "Enabled"
    assert guest_logs.status(sys_log, True, False, 0, Published(), None) == "Unavailable"
    assert guest_logs.status(user, True, False, 10, Published(), "d") == "Ready"
    assert guest_logs.status(user, True, False, 10, Published(4, "d"), "d") == "Partial"
    assert guest_logs.status(user, True, False, 10, Published(10, "d"), "d") == "Published"
    assert guest_logs.status(user, True, False, 10, Published(10, "d"), "other") == "Rotated"
    assert guest_logs.status(user, True, False, 3, Published(10, "d"), "d") == "Rotated"
    assert guest_logs.status(user, False, True, 10, Published(), "d") == "Restart Required"


def test_publish_copies_new_whole_lines_then_discard(tmp_path, logs):
    run = asyncio.run
    assert run(logs.show("slow_query"))["status"] == "Disabled"
    run(logs.enable("slow_query", True))
    log = tmp_path / "slow.log"
    log.write_bytes(b"first slow statement\nsecond\nhalf a li")
    shown = run(logs.publish("slow_query"))
    assert shown["status"] == "Partial" and shown["published"] == len(b"first slow statement\nsecond\n")
    assert shown["pending"] == len(b"half a li") and shown["container"] == "database_logs"
    assert shown["prefix"] == "inst-1/mariadb-slow_query/" and shown["metafile"] == "inst-1/mariadb-slow_query_metafile"
    with open(log, "ab") as f:
        f.write(b"ne\n")
    shown = run(logs.publish("slow_query"))
    assert shown["status"] == "Published" and shown["pending"] == 0
    assert b"".join(objects(tmp_path).values()) == log.read_bytes()
    meta = json.loads((tmp_path / "objects" / "database_logs" / shown["metafile"]).read_text())
    assert meta["log_size"] == log.stat().st_size and meta["log_name"] == "slow_query"

    shown = run(logs.discard("slow_query"))
    assert shown["published"] == 0 and shown["container"] == "None" and shown["status"] == "Ready"
    assert objects(tmp_path) == {}
    assert not (tmp_path / "objects" / "database_logs" / shown["metafile"]).exists()


def test_parts_are_bounded_and_whole_lines(tmp_path, logs, monkeypatch):
    monkeypatch.setattr(guest_logs, "CHUNK_BYTES", 25)
    (tmp_path / "error.log").write_bytes(b"".join(b"line %02d of the log\n" % i for i in range(5)))
    asyncio.run(logs.publish("error"))
    parts = objects(tmp_path, "inst-1/mariadb-error/")
    assert len(parts) == 5 and all(p.endswith(b"\n") and p.count(b"\n") == 1 for p in parts.values())
    store = LocalDirectoryStore(tmp_path / "objects")
    infos = asyncio.run(store.list("database_logs", "inst-1/mariadb-error/"))
    assert [i.metadata["lines"] for i in infos] == ["1"] * 5


def test_rotated_file_is_published_afresh(tmp_path, logs):
    run = asyncio.run
    run(logs.enable("slow_query", True))
    log = tmp_path / "slow.log"
    log.write_bytes(b"old content line one\nold content line two\n")
    run(logs.publish("slow_query"))
    log.write_bytes(b"new file\n")  # rotated: smaller, another first line
    assert run(logs.show("slow_query"))["status"] == "Rotated"
    shown = run(logs.publish("slow_query"))
    assert shown["published"] == len(b"new file\n")
    assert b"".join(objects(tmp_path).values()) == b"new file\n"


def test_sys_log_cannot_be_switched_and_unknown_log_is_named(logs):
    with pytest.raises(ValueError, match="SYS log"):
        asyncio.run(logs.enable("error", False))
    with pytest.raises(UnknownLog, match="general"):
        asyncio.run(logs.show("general"))


def test_a_change_waiting_for_restart_shows_until_the_engine_runs_it(tmp_path, logs):
    logs.source.takes_restart = True
    assert asyncio.run(logs.enable("slow_query", True))["status"] == "Restart Required"
    logs.source.on = True  # the restart came
    assert asyncio.run(logs.show("slow_query"))["status"] == "Enabled"
    assert json.loads((tmp_path / "state.json").read_text()) == {}
