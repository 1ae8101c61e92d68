"""services/api/account_state.py: what each account action changes in the API's view."""
from __future__ import annotations

from services.api.account_state import AccountState, account_id, parse_account_id


def test_user_ids_are_name_at_host_with_the_host_after_the_last_at():
    assert parse_account_id("app") == ("app", "%")
    assert parse_account_id("app@%") == ("app", "%")
    assert parse_account_id("app@10.0.0.%") == ("app", "10.0.0.%")
    assert parse_account_id("a@b@c") == ("a@b", "c")
    assert parse_account_id("app@") == ("app", "%")
    assert account_id("app", "%") == "app@%"


def test_databases_users_and_grants_follow_the_actions():
    state = AccountState()
    state.apply("database_create", {"databases": [{"name": "a"}, {"name": "b"}]})
    state.apply("user_create", {"users": [{"name": "u", "host": "%", "databases": ["a"]},
                                          {"name": "v", "host": "%", "databases": []}]})
    state.apply("user_grant", {"name": "u", "host": "%", "databases": ["b"]})
    assert state.users == {("u", "%"): {"a", "b"}, ("v", "%"): set()}

    state.apply("user_revoke", {"name": "u", "host": "%", "database": "a"})
    state.apply("database_delete", {"name": "b"})  # takes its grants along
    assert state.databases == {"a"} and state.users[("u", "%")] == set()

    state.apply("user_update", {"name": "u", "host": "%", "new_name": "w", "new_host": "10.%"})
    assert set(state.users) == {("w", "10.%"), ("v", "%")}
    state.apply("user_passwords", {"users": [{"name": "v", "host": "%"}]})  # nothing the view keeps
    state.apply("user_delete", {"name": "v", "host": "%"})
    assert set(state.users) == {("w", "10.%")}


def test_a_grant_to_a_user_that_is_gone_changes_nothing():
    state = AccountState({"a"})
    state.apply("user_grant", {"name": "ghost", "host": "%", "databases": ["a"]})
    state.apply("user_revoke", {"name": "ghost", "host": "%", "database": "a"})
    assert state.users == {}


def test_root_and_copies():
    state = AccountState()
    state.apply("root_enable", {})
    copy = state.copy()
    copy.apply("root_disable", {})
    assert state.root_enabled and not copy.root_enabled
