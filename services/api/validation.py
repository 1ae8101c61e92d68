"""Checks of request bodies (an instance create's, reference §4.4, and the values
other routes share); each raises a 400 naming the problem."""
from __future__ import annotations

import re

from plumbing import objectstore
from plumbing.cron import Cron, CronError

from .faults import bad_request
from .naming import NamingRules
from .rest import now

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]*$")
# a MySQL account's host: a name, an address, a netmask, with % and _ wildcards
HOST_RE = re.compile(r"^[A-Za-z0-9.%_:/-]{1,255}$")
CHARSET_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # character set and collation names


def body_object(body, key: str, keys: set[str] | frozenset[str] | None = None) -> dict:
    """The object under `key`; with `keys`, one that holds no other attributes."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise bad_request(f"Validation error: the request body needs an object '{key}'.")
    unknown = sorted(set(body[key]) - keys) if keys is not None else None
    if unknown:
        raise bad_request(f"Validation error: {key} has unexpected attributes {unknown}.")
    return body[key]


def container(value, field: str) -> str:
    """An object-store container name (a backup's or a backup strategy's swift_container)."""
    if not isinstance(value, str) or not objectstore.CONTAINER_NAME.match(value):
        raise bad_request(f"Validation error: {field} must be a container name: 1 to 255 letters, digits, '.', "
                          "'_' or '-', starting with a letter or digit.")
    return value


def cron(value, field: str) -> Cron:
    """A cron expression (UTC) that fires at some time; `field` names it in the 400."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"Validation error: {field} must be a cron expression, e.g. \"0 0 20 * * 1-5\".")
    try:
        parsed = Cron.parse(value)
        parsed.next_after(now())  # one that never fires is refused too
    except (CronError, ValueError) as exc:
        raise bad_request(f"Validation error: {field} {value!r} is not a valid cron expression: {exc}.")
    return parsed


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
        for key in ("character_set", "collate"):
            if db.get(key) and not (isinstance(db[key], str) and CHARSET_RE.match(db[key])):
                raise bad_request(f"Database {name!r}: {key} {db[key]!r} is not a valid name.")
        out.append({"name": name, "character_set": db.get("character_set") or None,
                    "collate": db.get("collate") or None})
    return out


def host(value, rules: NamingRules, name: str) -> str:
    """A user's host: any valid MySQL host pattern where accounts have hosts, else "%"."""
    if value in (None, ""):
        return "%"
    if not rules.has_hosts:
        if value != "%":
            raise bad_request(f"User {name!r}: this datastore cannot restrict a user to host {value!r}; "
                              "leave the host out (or give \"%\").")
        return value
    if not isinstance(value, str) or not HOST_RE.match(value):
        raise bad_request(f"User {name!r}: host {value!r} is not valid: use a host name, an address or "
                          "a pattern with % and _.")
    return value


def password(value, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request(f"User {name!r} needs a password.")
    if len(value) > 128 or any(not c.isprintable() for c in value):
        raise bad_request(f"The password of user {name!r} must be at most 128 printable characters.")
    return value


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
        secret = password(user.get("password"), name)
        user_host = host(user.get("host"), rules, name)
        if (name, user_host) in seen:
            raise bad_request(f"User {name}@{user_host} is given more than once.")
        seen.add((name, user_host))
        dbs = []
        for db in user.get("databases") or []:
            dbname = db.get("name") if isinstance(db, dict) else None
            if dbname not in database_names:
                raise bad_request(f"User {name!r} is given database {dbname!r}, which is not in the "
                                  "instance's databases.")
            dbs.append(dbname)
        out.append({"name": name, "password": secret, "host": user_host, "databases": dbs})
    return out
