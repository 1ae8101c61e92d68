"""Checks of an instance create body (reference §4.4); each raises a 400 naming the problem."""
from __future__ import annotations

import re

from .faults import bad_request
from .naming import NamingRules

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]*$")


def body_object(body, key: str) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise bad_request(f"Validation error: the request body needs an object '{key}'.")
    return body[key]


def instance_name(value) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or not re.search(r"[A-Za-z0-9]", value):
        raise bad_request("Validation error: instance['name'] must be 1 to 255 characters with a letter or digit.")
    return value


def flavor_ref(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise bad_request("Validation error: instance['flavorRef'] is required.")
    return value.rstrip("/").rsplit("/", 1)[-1]  # an href names the flavor in its last segment


def volume_size(value) -> int:
    if not isinstance(value, dict) or "size" not in value:
        raise bad_request("Volume size was not specified.")
    size = value["size"]
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise bad_request("Validation error: instance['volume']['size'] must be a whole number of GB, at least 1.")
    return size


def identifier(kind: str, name, longest: int, reserved: frozenset[str]) -> str:
    if not isinstance(name, str) or not name or len(name) > longest or not NAME_RE.match(name):
        raise bad_request(f"{kind} name {name!r} is not valid: use up to {longest} letters, digits, _ or -, "
                          "starting with a letter or _.")
    if name.lower() in reserved:
        raise bad_request(f"{kind} name {name!r} is reserved.")
    return name


def databases(value, rules: NamingRules, datastore: str) -> list[dict]:
    if value is None or value == []:
        return []
    if not rules.has_databases:
        raise bad_request(f"Databases are not applicable to {datastore}.")
    if not isinstance(value, list):
        raise bad_request("Validation error: instance['databases'] must be a list.")
    out, seen = [], set()
    for db in value:
        if not isinstance(db, dict):
            raise bad_request("Validation error: each database must be an object with a name.")
        name = identifier("Database", db.get("name"), rules.database_max, rules.reserved_databases)
        if name in seen:
            raise bad_request(f"Database name {name!r} is given more than once.")
        seen.add(name)
        out.append({"name": name, "character_set": db.get("character_set"), "collate": db.get("collate")})
    return out


def users(value, database_names: set[str], rules: NamingRules) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request("Validation error: instance['users'] must be a list.")
    out, seen = [], set()
    for user in value:
        if not isinstance(user, dict):
            raise bad_request("Validation error: each user must be an object with a name and a password.")
        name = identifier("User", user.get("name"), rules.user_max, rules.reserved_users)
        password = user.get("password")
        if not isinstance(password, str) or not password:
            raise bad_request(f"User {name!r} needs a password.")
        if name in seen:
            raise bad_request(f"User name {name!r} is given more than once.")
        seen.add(name)
        dbs = []
        for db in user.get("databases") or []:
            dbname = db.get("name") if isinstance(db, dict) else None
            if dbname not in database_names:
                raise bad_request(f"User {name!r} is given database {dbname!r}, which is not in the "
                                  "instance's databases.")
            dbs.append(dbname)
        host = user.get("host") or "%"
        out.append({"name": name, "password": password, "host": host, "databases": dbs})
    return out
