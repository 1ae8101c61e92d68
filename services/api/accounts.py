"""Databases, users and root of an instance (reference §3.2, §4.8, §4.9): Trove's
"mysql" extension, for PostgreSQL, MariaDB/MySQL and Redis (users and root only:
Redis has no databases). Reads come from the API's own view (accounts_view); each
change is a day-2 action (operations.start) that the instance's agent carries out,
and the view follows when it completes. Passwords travel sealed to the agent only."""
from __future__ import annotations

import os
import secrets
import string

from aiohttp import web

from . import accounts_view, instances, naming, openapi, operations, policy, validation
from .account_state import AccountState, account_id, parse_account_id
from .faults import Fault, bad_request, not_found
from .openapi import BOOL, PAGE, STR, V, listing, obj, op, param, ref, wrapped
from .rest import accepted, paginate, paged, path_name, read_json

# root enable/disable answer once the agent has applied them; past this they give up
# (the provisioner's own deadline for the step is 60 s by default)
ROOT_WAIT_SECONDS = float(os.environ.get("COFFER_ROOT_WAIT_SECONDS", "65"))
PASSWORD_ALPHABET = string.ascii_letters + string.digits
GENERATED_PASSWORD_LENGTH = 32  # ~190 bits

INSTANCE = param("instance", "instance id")
USER = param("user", "user name, or name@host URL-encoded (the host defaults to %)")
DATABASE = param("database", "database name")
REDIS_422 = ("Redis has no databases: 422 \"Operation not supported for datastore redis.\", Trove's answer "
             "for an operation a datastore does not support")


def generate_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH))


def unsupported(datastore: str) -> Fault:
    return Fault(422, f"Operation not supported for datastore {datastore}.")


def user_view(account: tuple[str, str], granted: set[str]) -> dict:
    return {"name": account[0], "host": account[1], "databases": [{"name": d} for d in sorted(granted)]}


def body_list(body, key: str) -> list:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, list) or not value:
        raise bad_request(f"Validation error: the request body needs a non-empty list '{key}'.")
    return value


def no_content() -> web.Response:
    return web.Response(status=204, content_type="application/json")


class Accounts:
    SCHEMAS = {
        "Database": obj({"name": STR}, ["name"]),
        "DatabaseCreate": obj({"name": STR, "character_set": STR, "collate": STR}, ["name"]),
        "User": obj({"name": STR, "host": STR, "databases": {"type": "array", "items": ref("Database")}},
                    ["name", "host", "databases"]),
        "UserCreate": obj({"name": STR, "password": STR, "host": {"type": "string", "description": (
            "MySQL/MariaDB only (default %); PostgreSQL and Redis users have no host")},
            "databases": {"type": "array", "items": ref("Database")}}, ["name", "password"]),
        "UserPassword": obj({"name": STR, "password": STR, "host": STR}, ["name", "password"]),
        "UserUpdate": obj({"name": STR, "password": STR, "host": STR}),
        "RootUser": obj({"name": {"type": "string", "description": (
            "root (PostgreSQL: a superuser login role; MySQL/MariaDB: root@% with all privileges); "
            "default for Redis (its default user, the one AUTH <password> logs in as)")},
            "password": {"type": "string", "description": "shown once, never stored"}}, ["name", "password"]),
    }
    PATHS = openapi.with_format_suffix({
        f"{V}/instances/{{instance}}/databases": {
            "get": op(f"list the instance's databases (paginated by name). {REDIS_422}", 200,
                      listing("databases", "Database", True), (INSTANCE, *PAGE)),
            "post": op(f"create databases; 400 if one exists or a name is invalid. {REDIS_422}", 202, None,
                       (INSTANCE,), body=wrapped("databases", {"type": "array", "items": ref("DatabaseCreate")}))},
        f"{V}/instances/{{instance}}/databases/{{database}}": {
            "get": op("not implemented, as in Trove (501)", 501, None, (INSTANCE, DATABASE)),
            "delete": op(f"drop a database; 404 if unknown. {REDIS_422}", 202, None, (INSTANCE, DATABASE))},
        f"{V}/instances/{{instance}}/users": {
            "get": op("list users with their host and granted databases (paginated; marker = name@host)", 200,
                      listing("users", "User", True), (INSTANCE, *PAGE)),
            "post": op("create users (400 if one exists)", 202, None, (INSTANCE,),
                       body=wrapped("users", {"type": "array", "items": ref("UserCreate")})),
            "put": op("change the passwords of several users (404 if one is unknown)", 202, None, (INSTANCE,),
                      body=wrapped("users", {"type": "array", "items": ref("UserPassword")}))},
        f"{V}/instances/{{instance}}/users/{{user}}": {
            "get": op("show a user", 200, wrapped("user", ref("User")), (INSTANCE, USER)),
            "put": op("rename a user, change its host (MySQL/MariaDB) or password; 400 if the new name "
                      "exists", 202, None, (INSTANCE, USER), body=wrapped("user", ref("UserUpdate"))),
            "delete": op("delete a user", 202, None, (INSTANCE, USER))},
        f"{V}/instances/{{instance}}/users/{{user}}/databases": {
            "get": op(f"the databases the user may use. {REDIS_422}", 200, listing("databases", "Database"),
                      (INSTANCE, USER)),
            "put": op(f"grant the user access to databases (all privileges on them). {REDIS_422}", 202, None,
                      (INSTANCE, USER), body=wrapped("databases", {"type": "array", "items": ref("Database")}))},
        f"{V}/instances/{{instance}}/users/{{user}}/databases/{{database}}": {
            "delete": op(f"revoke the user's access to a database; 404 if not granted. {REDIS_422}", 202, None,
                         (INSTANCE, USER, DATABASE))},
        f"{V}/instances/{{instance}}/root": {
            "get": op("whether root is enabled now", 200, obj({"rootEnabled": BOOL}, ["rootEnabled"]),
                      (INSTANCE,)),
            "post": op("enable root with the given password or a generated one, shown once; answers once the "
                       "engine has it (400 if the agent fails or does not answer in time)", 200,
                       wrapped("user", ref("RootUser")), (INSTANCE,),
                       body=obj({"password": {"type": "string", "description": "optional"}})),
            "delete": op("disable root: its password stops working (404 if root is not enabled); answers "
                         "once the engine has applied it", 204, None, (INSTANCE,))},
    })

    def __init__(self, store):
        self.store = store

    # -- shared checks ---------------------------------------------------------
    @staticmethod
    async def _instance(conn, request, databases: bool = False, change: bool = False):
        """The caller's instance, if its datastore has accounts (and databases) and
        its engine runs: 404, else Trove's 422s. A `change` of accounts a replica copies
        from its primary is refused: its engine is read-only and the primary's would win."""
        inst = await instances.find(conn, request)
        rules = naming.rules_for(inst.datastore)
        if not naming.has_accounts(inst.datastore) or (databases and not rules.has_databases):
            raise unsupported(inst.datastore)
        if inst.status not in operations.RUNNING:
            raise Fault(422, f"Instance {inst.id} is not ready, status: {inst.status}.")
        if change and inst.replica_of_id and rules.replicas_copy_accounts:
            raise bad_request(f"Instance {inst.id} is a replica of {inst.replica_of_id}: its databases, users "
                              "and root follow its primary's; change them there.")
        return inst, rules

    @staticmethod
    def _account(request, rules) -> tuple[str, str]:
        name, host = parse_account_id(path_name(request, "user"))
        name = validation.identifier("User", name, rules.user_max, rules.reserved_users)
        return name, validation.host(host, rules, name)

    @staticmethod
    def _known_user(state: AccountState, account: tuple[str, str]) -> set[str]:
        if account not in state.users:
            raise not_found(f"User {account_id(*account)} could not be found.")
        return state.users[account]

    @staticmethod
    def _database_name(request, rules) -> str:
        return validation.identifier("Database", path_name(request, "database"), rules.database_max,
                                     rules.reserved_databases)

    # -- databases ---------------------------------------------------------------
    async def list_databases(self, request):
        policy.authorize(request, "instance:extension:database:index")
        async with self.store.engine.connect() as conn:
            inst, _rules = await self._instance(conn, request, databases=True)
            state = await accounts_view.load(conn, inst.id)
        page, next_link = paginate(list(state.databases), request, key=lambda name: name)
        return paged("databases", [{"name": name} for name in page], next_link)

    async def create_databases(self, request):
        policy.authorize(request, "instance:extension:database:create")
        body = await read_json(request)
        async with self.store.uow() as uow:
            inst, rules = await self._instance(uow.conn, request, databases=True, change=True)
            dbs = validation.databases(body_list(body, "databases"), rules, inst.datastore)
            state = await accounts_view.projected(uow.conn, inst.id)
            for db in dbs:
                if db["name"] in state.databases:
                    raise bad_request(f"A database with the name {db['name']!r} already exists.")
            await operations.start(uow, inst, "create_databases", {"databases": dbs}, exclusive=False)
        return accepted()

    async def show_database(self, request):
        policy.authorize(request, "instance:extension:database:index")
        raise Fault(501, "Showing one database is not implemented (as in Trove); list the databases.")

    async def delete_database(self, request):
        policy.authorize(request, "instance:extension:database:delete")
        async with self.store.uow() as uow:
            inst, rules = await self._instance(uow.conn, request, databases=True, change=True)
            name = self._database_name(request, rules)
            if name not in (await accounts_view.projected(uow.conn, inst.id)).databases:
                raise not_found(f"Database {name!r} could not be found.")
            await operations.start(uow, inst, "delete_database", {"name": name}, exclusive=False)
        return accepted()

    # -- users -------------------------------------------------------------------
    async def list_users(self, request):
        policy.authorize(request, "instance:extension:user:index")
        async with self.store.engine.connect() as conn:
            inst, _rules = await self._instance(conn, request)
            state = await accounts_view.load(conn, inst.id)
        page, next_link = paginate(list(state.users), request, key=lambda account: account_id(*account))
        return paged("users", [user_view(account, state.users[account]) for account in page], next_link)

    async def create_users(self, request):
        policy.authorize(request, "instance:extension:user:create")
        body = await read_json(request)
        async with self.store.uow() as uow:
            inst, rules = await self._instance(uow.conn, request, change=True)
            state = await accounts_view.projected(uow.conn, inst.id)
            users = validation.users(body_list(body, "users"), state.databases, rules)
            for user in users:
                if (user["name"], user["host"]) in state.users:
                    raise bad_request(f"User {account_id(user['name'], user['host'])} already exists.")
            sealed = operations.seal_for(inst, {"passwords": [u["password"] for u in users]})
            await operations.start(uow, inst, "create_users", {"users": [
                {"name": u["name"], "host": u["host"], "databases": u["databases"]} for u in users]},
                exclusive=False, sealed=sealed)
        return accepted()

    async def change_passwords(self, request):
        policy.authorize(request, "instance:extension:user:update")
        body = await read_json(request)
        async with self.store.uow() as uow:
            inst, rules = await self._instance(uow.conn, request, change=True)
            state = await accounts_view.projected(uow.conn, inst.id)
            accounts, passwords = [], []
            for user in body_list(body, "users"):
                if not isinstance(user, dict):
                    raise bad_request("Validation error: each user must be an object with a name and a password.")
                name = validation.identifier("User", user.get("name"), rules.user_max, rules.reserved_users)
                account = (name, validation.host(user.get("host"), rules, name))
                passwords.append(validation.password(user.get("password"), name))
                self._known_user(state, account)
                accounts.append({"name": account[0], "host": account[1]})
            await operations.start(uow, inst, "change_passwords", {"users": accounts}, exclusive=False,
                                   sealed=operations.seal_for(inst, {"passwords": passwords}))
        return accepted()

    async def show_user(self, request):
        policy.authorize(request, "instance:extension:user:show")
        async with self.store.engine.connect() as conn:
            inst, rules = await self._instance(conn, request)
            account = self._account(request, rules)
            granted = self._known_user(await accounts_view.load(conn, inst.id), account)
        return web.json_response({"user": user_view(account, granted)})

    async def update_user(self, request):
        policy.authorize(request, "instance:extension:user:update")
        spec = validation.body_object(await read_json(request), "user")
        unknown = sorted(set(spec) - {"name", "password", "host"})
        if unknown:
            raise bad_request(f"Validation error: user has unexpected attributes {unknown}.")
        if not spec:
            raise bad_request("Validation error: give at least one of the user's name, password or host.")
        async with self.store.uow() as uow:
            inst, rules = await self._instance(uow.conn, request, change=True)
            account = self._account(request, rules)
            state = await accounts_view.projected(uow.conn, inst.id)
            self._known_user(state, account)
            new_name = (validation.identifier("User", spec["name"], rules.user_max, rules.reserved_users)
                        if spec.get("name") is not None else account[0])
            new_host = validation.host(spec["host"], rules, new_name) if "host" in spec else account[1]
            arguments = {"name": account[0], "host": account[1]}
            if (new_name, new_host) != account:
                if (new_name, new_host) in state.users:
                    raise bad_request(f"User {account_id(new_name, new_host)} already exists.")
                arguments.update(new_name=new_name, new_host=new_host)
            sealed = None
            if spec.get("password") is not None:
                sealed = operations.seal_for(inst, {"password": validation.password(spec["password"], new_name)})
            elif "new_name" not in arguments:
                return accepted()  # nothing changes
            await operations.start(uow, inst, "update_user", arguments, exclusive=False, sealed=sealed)
        return accepted()

    async def delete_user(self, request):
        policy.authorize(request, "instance:extension:user:delete")
        async with self.store.uow() as uow:
            inst, rules = await self._instance(uow.conn, request, change=True)
            account = self._account(request, rules)
            self._known_user(await accounts_view.projected(uow.conn, inst.id), account)
            await operations.start(uow, inst, "delete_user", {"name": account[0], "host": account[1]},
                                   exclusive=False)
        return accepted()

    # -- access ------------------------------------------------------------------
    async def list_access(self, request):
        policy.authorize(request, "instance:extension:user_access:index")
        async with self.store.engine.connect() as conn:
            inst, rules = await self._instance(conn, request, databases=True)
            account = self._account(request, rules)
            granted = self._known_user(await accounts_view.load(conn, inst.id), account)
        return web.json_response({"databases": [{"name": d} for d in sorted(granted)]})

    async def grant(self, request):
        policy.authorize(request, "instance:extension:user_access:update")
        body = await read_json(request)
        async with self.store.uow() as uow:
            inst, rules = await self._instance(uow.conn, request, databases=True, change=True)
            account = self._account(request, rules)
            state = await accounts_view.projected(uow.conn, inst.id)
            self._known_user(state, account)
            names = []
            for db in body_list(body, "databases"):
                name = db.get("name") if isinstance(db, dict) else None
                if name not in state.databases:
                    raise not_found(f"Database {name!r} could not be found.")
                names.append(name)
            await operations.start(uow, inst, "grant_access", {"name": account[0], "host": account[1],
                                                             "databases": sorted(set(names))}, exclusive=False)
        return accepted()

    async def revoke(self, request):
        policy.authorize(request, "instance:extension:user_access:delete")
        async with self.store.uow() as uow:
            inst, rules = await self._instance(uow.conn, request, databases=True, change=True)
            account = self._account(request, rules)
            granted = self._known_user(await accounts_view.projected(uow.conn, inst.id), account)
            name = path_name(request, "database")
            if name not in granted:
                raise not_found(f"User {account_id(*account)} has no access to database {name!r}.")
            await operations.start(uow, inst, "revoke_access", {"name": account[0], "host": account[1],
                                                              "database": name}, exclusive=False)
        return accepted()

    # -- root --------------------------------------------------------------------
    async def show_root(self, request):
        policy.authorize(request, "instance:extension:root:index")
        async with self.store.engine.connect() as conn:
            inst, _rules = await self._instance(conn, request)
            state = await accounts_view.load(conn, inst.id)
        return web.json_response({"rootEnabled": state.root_enabled})

    async def enable_root(self, request):
        policy.authorize(request, "instance:extension:root:create")
        password = None
        body = await read_json(request) if request.can_read_body else None
        if body not in (None, {}):
            if not isinstance(body, dict) or set(body) - {"password"}:
                raise bad_request("Validation error: the body may hold only a 'password'.")
            if body["password"] is not None:
                password = validation.password(body["password"], "root")
        password = password or generate_password()
        async with self.store.uow() as uow:
            inst, _rules = await self._instance(uow.conn, request, change=True)
            operation_id = await operations.start(uow, inst, "enable_root", {}, exclusive=False,
                                                  sealed=operations.seal_for(inst, {"password": password}))
        output = await operations.outcome(self.store, operation_id, "Enabling root", ROOT_WAIT_SECONDS)
        async with self.store.uow() as uow:
            await accounts_view.root_enabled_by(uow.conn, inst.id, request["identity"].user)
        name = output.get("user", "root")
        return web.json_response({"user": {"name": name, "password": password}})

    async def disable_root(self, request):
        policy.authorize(request, "instance:extension:root:delete")
        async with self.store.uow() as uow:
            inst, _rules = await self._instance(uow.conn, request, change=True)
            if not (await accounts_view.projected(uow.conn, inst.id)).root_enabled:
                raise not_found(f"Root is not enabled on instance {inst.id}.")
            operation_id = await operations.start(uow, inst, "disable_root", {}, exclusive=False)
        await operations.outcome(self.store, operation_id, "Disabling root", ROOT_WAIT_SECONDS)
        return no_content()

    def routes(self, app: web.Application, prefix: str) -> None:
        base = f"{prefix}/instances/{{instance}}"
        for method, path, handler in (
                ("GET", "databases", self.list_databases), ("POST", "databases", self.create_databases),
                ("GET", "databases/{database}", self.show_database),
                ("DELETE", "databases/{database}", self.delete_database),
                ("GET", "users", self.list_users), ("POST", "users", self.create_users),
                ("PUT", "users", self.change_passwords), ("GET", "users/{user}", self.show_user),
                ("PUT", "users/{user}", self.update_user), ("DELETE", "users/{user}", self.delete_user),
                ("GET", "users/{user}/databases", self.list_access), ("PUT", "users/{user}/databases", self.grant),
                ("DELETE", "users/{user}/databases/{database}", self.revoke),
                ("GET", "root", self.show_root), ("POST", "root", self.enable_root),
                ("DELETE", "root", self.disable_root)):
            for suffixed in openapi.format_suffixed(f"{base}/{path}"):
                app.router.add_route(method, suffixed, handler)
