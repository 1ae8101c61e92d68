"""services/api/account_state.py: what each account action changes in the API's view."""
from __future__ import annotations

from services.api.account_state import AccountState, account_id, found, parse_account_id
from services.api.naming import rules_for


def test_user_ids_are_name_at_host_with_the_host_after_the_last_at():
    assert parse_account_id("app") == ("app", "%")
    assert parse_account_id("app@%") == ("app", "%")
    assert parse_account_id("app@10.0.0.%") == ("app", "10.0.0.%")
    assert parse_account_id("a@b@c") == ("a@b", "c")
    assert parse_account_id("app@") == ("app", "%")
    assert account_id("app", "%") == "app@%"


def test_databases_users_and_grants_follow_the_actions():
    state = AccountState()
    state.apply("create_databases", {"databases": [{"name": "a"}, {"name": "b"}]})
    state.apply("create_users", {"users": [{"name": "u", "host": "%", "databases": ["a"]},
                                          {"name": "v", "host": "%", "databases": []}]})
    state.apply("grant_access", {"name": "u", "host": "%", "databases": ["b"]})
    assert state.users == {("u", "%"): {"a", "b"}, ("v", "%"): set()}

    state.apply("revoke_access", {"name": "u", "host": "%", "database": "a"})
    state.apply("delete_database", {"name": "b"})  # takes its grants along
    assert state.databases == {"a"} and state.users[("u", "%")] == set()

    state.apply("update_user", {"name": "u", "host": "%", "new_name": "w", "new_host": "10.%"})
    assert set(state.users) == {("w", "10.%"), ("v", "%")}
    state.apply("change_passwords", {"users": [{"name": "v", "host": "%"}]})  # nothing the view keeps
    state.apply("delete_user", {"name": "v", "host": "%"})
    assert set(state.users) == {("w", "10.%")}


def test_a_grant_to_a_user_that_is_gone_changes_nothing():
    state = AccountState({"a"})
    state.apply("grant_access", {"name": "ghost", "host": "%", "databases": ["a"]})
    state.apply("revoke_access", {"name": "ghost", "host": "%", "database": "a"})
    assert state.users == {}


def test_root_and_copies():
    state = AccountState()
    state.apply("enable_root", {})
    copy = state.copy()
    copy.apply("disable_root", {})
    assert state.root_enabled and not copy.root_enabled


def test_what_a_restored_engine_reports_is_the_view_without_the_reserved_names():
    rules = rules_for("mariadb")
    state = found({"databases": ["shop", "MySQL"],
                   "users": [{"name": "app", "host": "10.%", "databases": ["shop", "mysql"]},
                             {"name": "Root", "host": "localhost", "databases": []}], "root_enabled": True},
                  rules.reserved_databases, rules.reserved_users)
    assert state.databases == {"shop"}
    assert state.users == {("app", "10.%"): {"shop"}} and state.root_enabled
