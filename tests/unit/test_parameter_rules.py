"""services/api/parameter_rules.py: configuration values checked against a version's rules."""
from __future__ import annotations

import pytest

from services.api.parameter_rules import RULES_DIR, InvalidValue, Rule, in_base_unit, rules_for, typed, validate

PG = rules_for("postgresql", "15")
MARIADB = rules_for("mariadb", "10.11")
REDIS = rules_for("redis", "7.0")


def refused(rules, values) -> str:
    with pytest.raises(InvalidValue) as error:
        validate(rules, values)
    return str(error.value)


def test_every_rules_file_parses_and_covers_what_operators_tune():
    assert sorted(p.stem for p in RULES_DIR.glob("*.json")) == ["mariadb-10.11", "postgresql-15", "redis-7.0"]
    tuned = {  # memory, connections, timeouts, logging, WAL / binlog / persistence
        "postgresql-15": (PG, ["shared_buffers", "work_mem", "max_connections", "statement_timeout",
                               "log_min_duration_statement", "max_wal_size", "wal_level"]),
        "mariadb-10.11": (MARIADB, ["innodb_buffer_pool_size", "max_connections", "wait_timeout",
                                    "long_query_time", "sync_binlog", "binlog_expire_logs_seconds"]),
        "redis-7.0": (REDIS, ["maxmemory", "maxclients", "timeout", "loglevel", "appendfsync", "save"]),
    }
    for name, (rules, wanted) in tuned.items():
        assert not [w for w in wanted if w not in rules], name


def test_what_coffer_manages_itself_is_not_offered():
    # archiving belongs to backups, the password hash to the agent, server_id to replication,
    # requirepass is a secret (Redis access is ACL users)
    assert not {"archive_command", "password_encryption"} & set(PG)
    assert "server_id" not in MARIADB and "requirepass" not in REDIS


def test_valid_values_keep_their_type_and_take_the_parameters_own_name():
    values = {"MAX_CONNECTIONS": 200, "log_min_duration_statement": 250, "random_page_cost": 1.5,
              "synchronous_commit": "LOCAL", "jit": False, "shared_buffers": "256MB"}
    assert validate(PG, values) == {"max_connections": 200, "log_min_duration_statement": 250,
                                    "random_page_cost": 1.5, "synchronous_commit": "LOCAL", "jit": False,
                                    "shared_buffers": "256MB"}
    assert validate(REDIS, {"maxmemory-policy": "allkeys-lru", "databases": 32}) == {
        "maxmemory-policy": "allkeys-lru", "databases": 32}


@pytest.mark.parametrize("values, named, says", [
    ({"no_such_thing": 1}, "no_such_thing", "not supported"),
    ({"max_connections": "200"}, "max_connections", "not of type integer"),
    ({"max_connections": 2.5}, "max_connections", "not of type integer"),
    ({"max_connections": True}, "max_connections", "not of type integer"),
    ({"max_connections": 0}, "max_connections", "less than the minimum allowed: 1"),
    ({"max_connections": 10 ** 9}, "max_connections", "greater than the maximum"),
    ({"jit": "on"}, "jit", "not of type boolean"),
    ({"synchronous_commit": "sometimes"}, "synchronous_commit", "must be one of"),
    ({"search_path": "public\narchive_command = 'rm -rf /'"}, "search_path", "line breaks"),
    ({"shared_buffers": "64 parsecs"}, "shared_buffers", "unit"),
    ({"shared_buffers": "5s"}, "shared_buffers", "unit"),
    ({"shared_buffers": "64kB"}, "shared_buffers", "less than the minimum"),  # 8 pages of 8kB < 16
])
def test_bad_values_are_refused_naming_the_parameter(values, named, says):
    message = refused(PG, values)
    assert named in message and says in message


def test_mariadb_and_redis_ranges():
    assert "less than the minimum allowed: 10" in refused(MARIADB, {"max_connections": 5})
    assert "greater than the maximum allowed: 500" in refused(REDIS, {"hz": 501})
    assert "not of type float" in refused(MARIADB, {"long_query_time": "2"})
    assert validate(MARIADB, {"long_query_time": 2}) == {"long_query_time": 2}  # an integer is a float


def test_no_rules_and_no_object():
    assert "no configuration parameters" in refused({}, {"a": 1})
    assert "must be an object" in refused(PG, ["max_connections", 10])


def test_postgresql_quantities_in_the_base_unit():
    pages = Rule("shared_buffers", "integer", True, 16, 1073741823, unit="8kB")
    assert in_base_unit(pages, "256MB") == 32768
    millis = Rule("statement_timeout", "integer", False, 0, 2147483647, unit="ms")
    assert in_base_unit(millis, "1.5 min") == 90000


def test_engine_reports_come_back_in_the_rules_type():
    assert typed(PG["max_connections"], "100") == 100
    assert typed(PG["jit"], "on") is True
    assert typed(MARIADB["autocommit"], "ON") == 1  # Trove's 0/1 form of a MariaDB boolean
    assert typed(REDIS["appendonly"], "yes") is True
    assert typed(PG["random_page_cost"], "4") == 4.0
    assert typed(PG["synchronous_commit"], "on") == "on"
    assert PG["shared_buffers"].view("v1") == {"name": "shared_buffers", "datastore_version_id": "v1",
                                               "restart_required": True, "type": "integer", "min": 16,
                                               "max": 1073741823, "unit": "8kB"}
