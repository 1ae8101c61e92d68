"""The rule for pruning WAL / binlog archives (services/backup/archive_retention.py)."""
from services.backup.archive_retention import unneeded

WAL = ["00000001.history", "000000010000000000000001", "000000010000000000000002",
       "000000010000000000000002.00000028.backup", "000000010000000000000003", "000000020000000000000004"]
BINLOGS = ["mysql-bin.000001", "mysql-bin.000002", "mysql-bin.000010", "other-bin.000001"]


def test_wal_before_the_oldest_full_backup_goes_and_the_rest_stays():
    assert unneeded(WAL, ["000000010000000000000004", "000000010000000000000003"]) == [
        "000000010000000000000001", "000000010000000000000002", "000000010000000000000002.00000028.backup"]
    # a segment of a later timeline is placed by its log and segment number
    assert "000000020000000000000004" not in unneeded(WAL, ["000000020000000000000004"])
    assert "000000010000000000000003" in unneeded(WAL, ["000000020000000000000004"])


def test_binlogs_before_the_oldest_full_backup_go_by_number_not_by_text():
    assert unneeded(BINLOGS, ["mysql-bin.000010"]) == ["mysql-bin.000001", "mysql-bin.000002"]
    assert unneeded(BINLOGS, ["mysql-bin.000010", "mysql-bin.000002"]) == ["mysql-bin.000001"]


def test_nothing_goes_when_where_a_backup_starts_is_unknown_and_everything_when_none_is_left():
    assert unneeded(WAL, ["000000010000000000000003", None]) == []
    assert unneeded(WAL, ["not-a-log-name"]) == []
    assert unneeded(WAL, []) == WAL
