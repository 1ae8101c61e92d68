"""Entry point: python -m services.backup"""
import asyncio

from sqlalchemy import delete

from plumbing import topics as T
from plumbing.service import ServiceRuntime

from .tables import backupable, metadata


async def main() -> None:
    rt = ServiceRuntime("backup", metadata)

    async def on_instance_event(event):
        iid = event.data["instance_id"]
        if event.type == "coffer.instance.failed.v1" and event.data["operation"] != "create":
            return

        async def apply(uow):
            await uow.conn.execute(delete(backupable).where(backupable.c.instance_id == iid))
            if event.type == "coffer.instance.active.v1":
                await uow.conn.execute(backupable.insert().values(
                    instance_id=iid, project_id=event.project, address=event.data["address"]))
        await rt.store.handled_once(event, apply)

    rt.consume("coffer-backup", [T.INSTANCE_EVENTS], on_instance_event,
               {"coffer.instance.active.v1", "coffer.instance.deleted.v1", "coffer.instance.failed.v1"})
    await rt.serve()


if __name__ == "__main__":
    asyncio.run(main())
