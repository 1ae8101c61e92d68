"""coffer: the operator command line.

  coffer run                                         the whole embedded stack, in the foreground
  coffer token create --project P --role R           a built-in token (printed on the last line)
"""
from __future__ import annotations

import argparse
import asyncio
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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
