"""coffer: the operator command line.

  coffer run                                         the whole embedded stack, in the foreground
  coffer token create --project P --role R           a built-in token (printed on the last line)
  coffer policy defaults                             the API's default policy, as a COFFER_POLICY_FILE to edit
  coffer event-types list                            the public event types and their schemas
  coffer subscription create|list|show|update|delete|deliveries
                                                     webhook subscriptions (RDS-style event subscriptions)
  coffer backup-schedule show|set|delete INSTANCE [--full CRON] [--incremental CRON] [--keep-last N]
                [--keep-days D]                      an instance's backup schedule and retention

The API commands take --api/--project/--token or COFFER_API_URL/COFFER_PROJECT/COFFER_TOKEN.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

from plumbing.config import database_url
from plumbing.db import create_schema, make_engine


async def _create_token(project: str, role: str) -> str:
    from services.api.auth import create_token
    from services.api.tables import metadata

    engine = make_engine(database_url("api"))
    try:
        await create_schema(engine, metadata)
        async with engine.begin() as conn:
            return await create_token(conn, project, role)
    finally:
        await engine.dispose()


def token_create(args) -> int:
    try:
        token = asyncio.run(_create_token(args.project, args.role))
    except ValueError as exc:
        print(f"coffer: {exc}", file=sys.stderr)
        return 2
    print(f"token for project {args.project} with role {args.role}:")
    print(token)
    return 0


def run(args) -> int:
    from .stack import Stack

    stack = Stack()
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    print(f"coffer: state directory {stack.home}", flush=True)
    try:
        stack.start()
        print(f"coffer: broker on {stack.bootstrap}; starting {', '.join(stack.procs)} …", flush=True)
        admin = asyncio.run(_create_token(args.project, "admin"))
        member = asyncio.run(_create_token(args.project, "member"))
        datastores = stack.wait_ready(admin, args.project)
        pg_version = (datastores.get("postgresql") or ["<version>"])[-1]
        endpoint = f"{stack.api_url}/v1.0/{args.project}"
        print(f"""
coffer: ready in {time.monotonic() - started:.1f} s — API {stack.api_url}, logs in {stack.home / 'logs'}

  project:       {args.project}
  admin token:   {admin}
  member token:  {member}

  export T={member} P={args.project}
  openstack --os-auth-type admin_token --os-token $T --os-endpoint {stack.api_url}/v1.0/$P \\
      database instance create pg1 --flavor d1 --size 1 --datastore postgresql \\
      --datastore-version {pg_version} \\
      --databases appdb --users app:S3cret-pass

  endpoint for other clients: {endpoint}
  Ctrl-C stops everything (instances too; their data stays for the next run).
""", flush=True)
        while not stopping:
            stack.check_alive()
            time.sleep(0.5)
        return 0
    except (RuntimeError, TimeoutError) as exc:
        print(f"coffer: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("coffer: stopping …", flush=True)
        stack.stop()
        print("coffer: stopped", flush=True)


def policy_defaults(_args) -> int:
    from services.api.policy import defaults_document
    print(json.dumps(defaults_document(), indent=2))
    return 0


def event_types_list(args) -> int:
    from .client import from_args, table
    doc = from_args(args).call("GET", "/event-types")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        table(doc["event_types"], ["type", "category", "topic", "fingerprint"])
    return 0


def _subscription_body(args) -> dict:
    body = {}
    for key, value in (("url", args.url), ("event_types", args.type), ("categories", args.category),
                       ("resource_ids", args.resource), ("secret", args.secret)):
        if value:
            body[key] = value
    if args.enabled is not None:
        body["enabled"] = args.enabled
    return {"subscription": body}


def subscription(args) -> int:
    from .client import from_args, table
    api = from_args(args)
    columns = ["id", "url", "enabled", "event_types", "categories", "resource_ids"]
    if args.action == "list":
        table(api.call("GET", "/subscriptions")["subscriptions"], columns)
    elif args.action == "create":
        sub = api.call("POST", "/subscriptions", _subscription_body(args))["subscription"]
        table([sub], columns)
        print(f"signing secret (shown once): {sub['secret']}")
    elif args.action == "show":
        table([api.call("GET", f"/subscriptions/{args.id}")["subscription"]], columns)
    elif args.action == "update":
        table([api.call("PATCH", f"/subscriptions/{args.id}", _subscription_body(args))["subscription"]], columns)
    elif args.action == "delete":
        api.call("DELETE", f"/subscriptions/{args.id}")
        print(f"subscription {args.id} deleted")
    elif args.action == "deliveries":
        table(api.call("GET", f"/subscriptions/{args.id}/deliveries")["deliveries"],
              ["id", "event_type", "resource_id", "status", "attempts", "last_status_code", "next_attempt",
               "last_error"])
    return 0


def schedule(args) -> int:
    from .client import from_args, table
    api = from_args(args)
    columns = ["id", "action", "cron", "next_run_at", "last_run_at", "last_result"]
    base = f"/instances/{args.instance}/schedules"
    if args.schedule_command == "list":
        table(api.call("GET", base)["schedules"], columns)
    elif args.schedule_command == "create":
        table([api.call("POST", base, {"schedule": {"action": args.action, "cron": args.cron}})["schedule"]],
              columns)
    else:
        api.call("DELETE", f"{base}/{args.id}")
        print(f"schedule {args.id} deleted")
    return 0


def backup_schedule(args) -> int:
    from .client import from_args, table
    api, path = from_args(args), f"/instances/{args.instance}/backup_schedule"
    if args.action == "delete":
        api.call("DELETE", path)
        return 0
    if args.action == "set":
        body = {"full": args.full, "incremental": args.incremental, "keep_last_chains": args.keep_last,
                "keep_days": args.keep_days}
        doc = api.call("PUT", path, {"backup_schedule": body})
    else:
        doc = api.call("GET", path)
    table([doc["backup_schedule"]], ["instance_id", "full", "incremental", "keep_last_chains", "keep_days",
                                     "next_full_at", "next_incremental_at"])
    return 0


def _api_options(parser) -> None:
    parser.add_argument("--api", help="API URL (default COFFER_API_URL or http://127.0.0.1:8779)")
    parser.add_argument("--project", help="project id (default COFFER_PROJECT)")
    parser.add_argument("--token", help="token (default COFFER_TOKEN)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="coffer", description="Coffer operator command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the whole embedded stack in the foreground")
    p_run.add_argument("--project", default="demo", help="project to print tokens for (default: demo)")
    p_run.set_defaults(func=run)
    p_token = sub.add_parser("token", help="built-in tokens")
    token_sub = p_token.add_subparsers(dest="token_command", required=True)
    p_create = token_sub.add_parser("create", help="create a token for a project (created if new)")
    p_create.add_argument("--project", required=True)
    p_create.add_argument("--role", required=True, choices=["admin", "member", "reader"])
    p_create.set_defaults(func=token_create)

    p_policy = sub.add_parser("policy", help="the API's policy rules")
    policy_sub = p_policy.add_subparsers(dest="policy_command", required=True)
    policy_sub.add_parser("defaults", help="print the default rules as a JSON policy file to start from").set_defaults(
        func=policy_defaults)

    p_types = sub.add_parser("event-types", help="public event types")
    types_sub = p_types.add_subparsers(dest="types_command", required=True)
    p_list = types_sub.add_parser("list", help="list them, with their schema fingerprints")
    _api_options(p_list)
    p_list.add_argument("--json", action="store_true", help="print everything, schemas included")
    p_list.set_defaults(func=event_types_list)

    p_sub = sub.add_parser("subscription", help="webhook subscriptions")
    p_sub.add_argument("action", choices=["create", "list", "show", "update", "delete", "deliveries"])
    p_sub.add_argument("id", nargs="?", help="subscription id (show, update, delete, deliveries)")
    _api_options(p_sub)
    p_sub.add_argument("--url", help="where events are POSTed")
    p_sub.add_argument("--type", action="append", help="an event type to receive (repeatable)")
    p_sub.add_argument("--category", action="append", help="an event category to receive (repeatable)")
    p_sub.add_argument("--resource", action="append", help="only events about this resource id (repeatable)")
    p_sub.add_argument("--secret", help="signing secret (default: generated and shown once)")
    p_sub.add_argument("--enable", dest="enabled", action="store_const", const=True, default=None)
    p_sub.add_argument("--disable", dest="enabled", action="store_const", const=False)
    p_sub.set_defaults(func=subscription)

    p_sched = sub.add_parser("schedule", help="schedules that stop or start an instance by cron (UTC)")
    sched_sub = p_sched.add_subparsers(dest="schedule_command", required=True)
    for name, help_text in (("list", "an instance's schedules"), ("create", "add one"), ("delete", "remove one")):
        p = sched_sub.add_parser(name, help=help_text)
        p.add_argument("instance", help="instance id")
        if name == "create":
            p.add_argument("--action", required=True, choices=["stop", "start"])
            p.add_argument("--cron", required=True,
                           help='five fields, or six with seconds first, e.g. "0 0 20 * * 1-5"')
        if name == "delete":
            p.add_argument("id", help="schedule id")
        _api_options(p)
        p.set_defaults(func=schedule)

    p_backup_sched = sub.add_parser("backup-schedule", help="an instance's backup schedule and retention")
    p_backup_sched.add_argument("action", choices=["show", "set", "delete"])
    p_backup_sched.add_argument("instance", help="instance id")
    _api_options(p_backup_sched)
    p_backup_sched.add_argument("--full", help="cron (5 fields, UTC) for full backups (set: required)")
    p_backup_sched.add_argument("--incremental", help="cron for incremental backups")
    p_backup_sched.add_argument("--keep-last", type=int, help="keep the newest N chains")
    p_backup_sched.add_argument("--keep-days", type=int, help="keep every chain with a backup newer than D days")
    p_backup_sched.set_defaults(func=backup_schedule)

    args = parser.parse_args(argv)
    if getattr(args, "func", None) is backup_schedule and args.action == "set" and not args.full:
        parser.error("backup-schedule set needs --full")
    if getattr(args, "func", None) is subscription and args.action in ("show", "update", "delete", "deliveries") \
            and not args.id:
        parser.error(f"subscription {args.action} needs a subscription id")
    try:
        return args.func(args)
    except Exception as exc:
        from .client import ApiError
        if isinstance(exc, ApiError):
            print(f"coffer: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
