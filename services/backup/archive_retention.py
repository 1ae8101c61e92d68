"""Which archived WAL segments / binlogs no backup can use any more, as a pure rule.

A full backup records in its meta the log file that was current when it started
(`archive_from`): its restore, its incremental children (PostgreSQL's are WAL) and a
point-in-time restore from any of them replay the archive from there on. So what is
older than the oldest remaining full backup's `archive_from` is not needed; with no
backup left, nothing archived so far is. Anything whose place is unknown is kept:
a name that is no segment or binlog (a timeline history file) while backups remain,
and everything while a remaining full backup does not say where it starts."""
from __future__ import annotations

import re

# PostgreSQL: <timeline 8><log 8><segment 8>, and <segment>.<offset>.backup files
WAL = re.compile(r"^[0-9A-F]{8}([0-9A-F]{16})(\.[0-9A-F]{8}\.backup)?$")
BINLOG = re.compile(r"^(.+)\.(\d+)$")  # MariaDB: <basename>.<number>


def _place(name: str) -> tuple | None:
    """Where an archived file stands in its log, comparable with another of its kind."""
    wal = WAL.match(name)
    if wal:
        return "wal", wal.group(1)  # log and segment: a later timeline's segment is no older
    binlog = BINLOG.match(name)
    if binlog:
        return "binlog", binlog.group(1), int(binlog.group(2))
    return None


def unneeded(names: list[str], starts: list[str | None]) -> list[str]:
    """The archived `names` no remaining backup can use. `starts`: the first log file
    of each remaining full backup (None where unknown). Every name when no full
    backup is left; none when where one starts is unknown."""
    if not starts:
        return list(names)
    places = [_place(s) if s else None for s in starts]
    if None in places or len({p[:-1] for p in places}) != 1:
        return []
    limit = min(places)
    return [n for n in names if (place := _place(n)) is not None and place[:-1] == limit[:-1] and place < limit]
