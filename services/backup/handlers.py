"""The backup service's handlers: a request becomes a backup BUILDING on the
instance's agent (which streams the bytes to the object store), the agent's result
makes it COMPLETED or FAILED; a delete removes a backup and its incremental children,
and so does the instance's retention policy (schedules.py) when one of its backups completes.
Every status change is a public coffer.backup.status_changed.v1 event, written in
the same transaction as the change (outbox)."""
from __future__ import annotations

import base64
import json
import logging
import os
from datetime import timedelta

from sqlalchemy import delete, select, update

from plumbing import backupkeys, objectstore, sealing
from plumbing import topics as T
from plumbing.envelope import Event, utcnow
from plumbing.logs import log
from plumbing.objectstore import ObjectNotFound, ObjectStore
from plumbing.outbox import Store, UnitOfWork

from . import archive_retention, manifests, schedules
from .tables import agent_keys, archives, backupable, backups, epochs, restores, strategies

SOURCE = "backup"
logger = logging.getLogger("backup")
# a backup the agent has not reported on within this long FAILS: it never stays BUILDING
DEADLINE_SECONDS = float(os.environ.get("COFFER_BACKUP_DEADLINE_SECONDS", "3600"))
COMMAND_SUFFIX = ":backup"  # command ids are <backup id>:backup
RESTORE_SUFFIX = ":restore"  # and <instance id>:restore
# datastores whose logs are archived from their first backup on, for point-in-time restores
ARCHIVED = {"postgresql": "wal", "mariadb": "binlog", "mysql": "binlog"}
RESTORABLE = ("COMPLETED", "RESTORED")  # RESTORED: imported (restore_from)


def container_for(project_id: str) -> str:
    """One container per project, unless a backup strategy or the request names one."""
    return f"coffer-backups-{project_id}"


async def chosen_container(conn, request: dict) -> str:
    """Trove's order: the container the request names, else the instance's strategy,
    else the project's, else the default."""
    if request.get("swift_container"):
        return request["swift_container"]
    rows = {r.instance_id: r.container for r in (await conn.execute(select(strategies).where(
        strategies.c.project_id == request["project_id"],
        strategies.c.instance_id.in_((request["instance_id"], ""))))).all()}
    return rows.get(request["instance_id"]) or rows.get("") or container_for(request["project_id"])


def location(row) -> str:
    return f"{objectstore.kind()}://{row.container}/{row.object}"


def status_event(cause: Event, row, status: str, message: str = "") -> Event:
    event = cause.caused("coffer.backup.status_changed.v1", {
        "backup_id": row.id, "project_id": row.project_id, "instance_id": row.instance_id, "name": row.name,
        "description": row.description, "parent_id": row.parent_id, "incremental": row.parent_id is not None,
        "datastore": row.datastore, "datastore_version": row.datastore_version, "status": status,
        "size_bytes": row.size_bytes if status in RESTORABLE else 0,
        "checksum": row.checksum if status in RESTORABLE else "",
        "location": location(row) if status in RESTORABLE else "", "message": message},
        subject=row.id, source=SOURCE)
    event.project = row.project_id
    return event


def strategy_changed(cause: Event, project_id: str, instance_id: str | None, container: str | None) -> Event:
    """The strategy of the project (instance_id None) or of one instance, as it now is;
    container None: removed."""
    event = cause.caused("coffer.backup.strategy_changed.v1", {
        "project_id": project_id, "instance_id": instance_id, "backend": objectstore.kind(),
        "swift_container": container}, subject=project_id, source=SOURCE)
    event.project = project_id
    return event


class BackupHandlers:
    def __init__(self, store: Store, objects: ObjectStore, master_key: bytes):
        self.store, self.objects, self.master_key = store, objects, master_key

    async def _row(self, uow: UnitOfWork, backup_id: str):
        return (await uow.conn.execute(select(backups).where(backups.c.id == backup_id))).first()

    async def _set(self, uow: UnitOfWork, cause: Event, backup_id: str, status: str, message: str = "",
                   **values) -> None:
        await uow.conn.execute(update(backups).where(backups.c.id == backup_id).values(
            status=status, message=message, **values))
        row = await self._row(uow, backup_id)
        await uow.emit(T.BACKUP_EVENTS, status_event(cause, row, status, message))

    # -- instances and their agents ----------------------------------------------
    async def instance_event(self, event: Event) -> None:
        iid = event.data["instance_id"]
        if event.type == "coffer.instance.failed.v1" and event.data["operation"] != "create":
            return

        async def apply(uow):
            await uow.conn.execute(delete(backupable).where(backupable.c.instance_id == iid))
            if event.type == "coffer.instance.deleted.v1":
                await uow.conn.execute(delete(epochs).where(epochs.c.instance_id == iid))
                await self._forget_strategy(uow, event, iid)
                await schedules.forget(uow, event, iid)
            if event.type == "coffer.instance.active.v1":
                await uow.conn.execute(backupable.insert().values(
                    instance_id=iid, project_id=event.project, address=event.data["address"]))
        await self.store.handled_once(event, apply)

    async def replication_changed(self, event: Event) -> None:
        iid, epoch = event.data["instance_id"], event.data["epoch"]

        async def apply(uow):
            known = await self._epoch(uow, iid)
            if epoch > known:
                await uow.conn.execute(delete(epochs).where(epochs.c.instance_id == iid))
                await uow.conn.execute(epochs.insert().values(instance_id=iid, epoch=epoch))
        await self.store.handled_once(event, apply)

    @staticmethod
    async def _epoch(uow, instance_id: str) -> int:
        known = (await uow.conn.execute(select(epochs.c.epoch).where(epochs.c.instance_id == instance_id))).scalar()
        return known or 1

    async def agent_registered(self, event: Event) -> None:
        d = event.data

        async def apply(uow):
            await uow.conn.execute(delete(agent_keys).where(agent_keys.c.instance_id == d["instance_id"]))
            await uow.conn.execute(agent_keys.insert().values(instance_id=d["instance_id"],
                                                              public_key=d["public_key"]))
        await self.store.handled_once(event, apply)

    # -- a backup is asked for ----------------------------------------------------
    async def requested(self, event: Event) -> None:
        d = event.data

        async def apply(uow: UnitOfWork):
            if await self._row(uow, d["backup_id"]) is not None:
                return
            parent = await self._row(uow, d["parent_id"]) if d.get("parent_id") else None
            backup_id = d["backup_id"]
            data_key = backupkeys.new_data_key()
            await uow.conn.execute(backups.insert().values(
                id=backup_id, project_id=d["project_id"], instance_id=d["instance_id"], name=d["name"],
                description=d.get("description") or "", parent_id=d.get("parent_id"),
                datastore=d["datastore"], datastore_version=d["datastore_version"], status="NEW", message="",
                container=await chosen_container(uow.conn, d), object=f"{d['instance_id']}/{backup_id}",
                wrapped_key=backupkeys.wrap(self.master_key, data_key, backup_id), size_bytes=0, checksum="",
                engine_meta="{}", created_at=utcnow(), deadline=utcnow() + timedelta(seconds=DEADLINE_SECONDS)))
            row = await self._row(uow, backup_id)
            await uow.emit(T.BACKUP_EVENTS, status_event(event, row, "NEW"))
            refusal = await self._refusal(uow, row, parent)
            if refusal:
                await self._set(uow, event, backup_id, "FAILED", refusal)
                return
            key = (await uow.conn.execute(select(agent_keys.c.public_key).where(
                agent_keys.c.instance_id == row.instance_id))).scalar_one()
            await self._set(uow, event, backup_id, "BUILDING")
            arguments = {"backup_id": backup_id, "container": row.container, "object": row.object,
                         "parent": json.loads(parent.engine_meta) if parent else None}
            secrets = {"data_key": base64.b64encode(data_key).decode()}
            if row.datastore in ARCHIVED:
                archive = await self._archive(uow, row)
                arguments["archive"] = {"container": archive.container, "prefix": archive.prefix}
                secrets["archive_key"] = self._archive_key(archive)
            await uow.emit(T.AGENT_COMMANDS, event.caused("coffer.agent.command.v1", {
                "instance_id": row.instance_id, "command_id": backup_id + COMMAND_SUFFIX,
                "epoch": await self._epoch(uow, row.instance_id),
                "command": "backup", "arguments": json.dumps(arguments), "sealed": sealing.seal(key, secrets)},
                subject=row.instance_id, source=SOURCE))
        await self.store.handled_once(event, apply)

    async def _archive(self, uow: UnitOfWork, row):
        """The instance's WAL / binlog archive, made with its first backup."""
        query = select(archives).where(archives.c.instance_id == row.instance_id)
        archive = (await uow.conn.execute(query)).first()
        if archive is None:
            await uow.conn.execute(archives.insert().values(
                instance_id=row.instance_id, project_id=row.project_id, container=row.container,
                prefix=f"{row.instance_id}/{ARCHIVED[row.datastore]}/", wrapped_key=backupkeys.wrap(
                    self.master_key, backupkeys.new_data_key(), f"wal:{row.instance_id}")))
            archive = (await uow.conn.execute(query)).one()
        return archive

    def _archive_key(self, archive) -> str:
        return base64.b64encode(backupkeys.unwrap(self.master_key, archive.wrapped_key,
                                                  f"wal:{archive.instance_id}")).decode()

    async def _refusal(self, uow: UnitOfWork, row, parent) -> str:
        """Why the backup cannot start, or ""."""
        if (await uow.conn.execute(select(backupable).where(backupable.c.instance_id == row.instance_id))).first() \
                is None:
            return "The instance is not running, so it cannot be backed up."
        if (await uow.conn.execute(select(agent_keys).where(agent_keys.c.instance_id == row.instance_id))).first() \
                is None:
            return "The instance's agent has not registered yet; try again in a moment."
        if row.parent_id and (parent is None or parent.status != "COMPLETED"
                              or parent.instance_id != row.instance_id):
            return f"The parent backup {row.parent_id} is not a completed backup of this instance."
        return ""

    # -- importing a backup Coffer wrote (restore_from) ---------------------------
    async def import_requested(self, event: Event) -> None:
        """A new backup RESTORED from an object and its manifest, or FAILED with why."""
        d = event.data

        async def apply(uow: UnitOfWork):
            if await self._row(uow, d["backup_id"]) is not None:
                return
            manifest, problem = await self._importable(uow, d)
            values = {"wrapped_key": "", "size_bytes": 0, "checksum": "", "engine_meta": "{}"}
            if manifest:
                values = {"wrapped_key": backupkeys.wrap(self.master_key, manifest.pop("data_key"), d["backup_id"]),
                          "size_bytes": manifest["size_bytes"], "checksum": manifest["checksum"],
                          "engine_meta": manifest["engine_meta"]}
            await uow.conn.execute(backups.insert().values(
                id=d["backup_id"], project_id=d["project_id"], instance_id="", name=d["name"],
                description=d.get("description") or "", parent_id=None, datastore=d["datastore"],
                datastore_version=d["datastore_version"], status="NEW", message="", container=d["container"],
                # a refused import names no object: deleting it must not delete someone else's
                object="" if problem else d["object"], created_at=utcnow(), deadline=None, **values))
            row = await self._row(uow, d["backup_id"])
            await uow.emit(T.BACKUP_EVENTS, status_event(event, row, "NEW"))
            if problem:
                await self._set(uow, event, row.id, "FAILED", problem)
            else:
                await self._set(uow, event, row.id, "RESTORED")
        await self.store.handled_once(event, apply)

    async def _importable(self, uow: UnitOfWork, d: dict) -> tuple[dict | None, str]:
        """The manifest of the object to import, with its data key unwrapped; or why not."""
        where = f"{objectstore.kind()}://{d['container']}/{d['object']}"
        owner = (await uow.conn.execute(select(backups.c.id).where(
            backups.c.container == d["container"], backups.c.object == d["object"]))).scalar()
        if owner:
            return None, f"The object at {where} is backup {owner}'s: restore from that backup."
        try:
            manifest = await manifests.read(self.objects, d["container"], d["object"])
            stored = await self.objects.head(d["container"], d["object"])
        except (ObjectNotFound, ValueError):
            manifest = None
        # another project's backup reads as no backup at all: nothing about it is told
        if manifest is None or manifest["project_id"] != d["project_id"]:
            return None, f"There is no backup of this project at {where} (an object with its manifest)."
        if manifest["parent_id"]:
            return None, f"The backup at {where} is incremental: only a full backup can be imported."
        if (manifest["datastore"], manifest["datastore_version"]) != (d["datastore"], d["datastore_version"]):
            return None, (f"The backup at {where} is of {manifest['datastore']} {manifest['datastore_version']}, "
                          f"not {d['datastore']} {d['datastore_version']}.")
        if stored.size != manifest["size_bytes"]:
            return None, f"The object at {where} has {stored.size} bytes where {manifest['size_bytes']} were stored."
        try:
            manifest["data_key"] = backupkeys.unwrap(self.master_key, manifest["wrapped_key"], manifest["id"])
        except backupkeys.WrappedKeyError:
            return None, f"The backup at {where} was sealed under another master key: it cannot be imported."
        return manifest, ""

    # -- backup strategies --------------------------------------------------------
    async def strategy_requested(self, event: Event) -> None:
        """Set or remove (swift_container null) a project's or an instance's strategy."""
        d = event.data
        instance_id = d.get("instance_id") or ""

        async def apply(uow: UnitOfWork):
            await uow.conn.execute(delete(strategies).where(strategies.c.project_id == d["project_id"],
                                                            strategies.c.instance_id == instance_id))
            if d.get("swift_container"):
                await uow.conn.execute(strategies.insert().values(
                    project_id=d["project_id"], instance_id=instance_id, container=d["swift_container"]))
            await uow.emit(T.BACKUP_EVENTS, strategy_changed(event, d["project_id"], d.get("instance_id"),
                                                             d.get("swift_container")))
        await self.store.handled_once(event, apply)

    async def schedule_requested(self, event: Event) -> None:
        await self.store.handled_once(event, lambda uow: schedules.requested(uow, event))

    async def _forget_strategy(self, uow: UnitOfWork, cause: Event, instance_id: str) -> None:
        """A deleted instance's strategy goes with it (its backups keep their container)."""
        row = (await uow.conn.execute(select(strategies).where(strategies.c.instance_id == instance_id))).first()
        if row is None:
            return
        await uow.conn.execute(delete(strategies).where(strategies.c.instance_id == instance_id))
        await uow.emit(T.BACKUP_EVENTS, strategy_changed(cause, row.project_id, instance_id, None))

    # -- the agent's report -------------------------------------------------------
    async def command_result(self, event: Event) -> None:
        d = event.data
        if d["command"] == "restore" and d["command_id"].endswith(RESTORE_SUFFIX):
            await self.restore_result(event)
            return
        if d["command"] != "backup" or not d["command_id"].endswith(COMMAND_SUFFIX):
            return
        backup_id = d["command_id"][:-len(COMMAND_SUFFIX)]

        async def apply(uow: UnitOfWork):
            row = await self._row(uow, backup_id)
            if row is None or row.status != "BUILDING":
                return  # a late report of a backup that already timed out or was deleted
            if not d["success"]:
                log(logger, logging.WARNING, "backup failed", backup_id=backup_id, error=d["error"])
                await self._set(uow, event, backup_id, "FAILED", f"The backup failed: {d['error']}")
                return
            output = json.loads(d.get("output") or "{}")
            await self._set(uow, event, backup_id, "COMPLETED", size_bytes=int(output["size_bytes"]),
                            checksum=output["sha256"], engine_meta=json.dumps(output.get("meta") or {}))
            try:
                await manifests.write(self.objects, await self._row(uow, backup_id))
            except Exception as exc:  # the backup is whole; it only cannot be imported elsewhere
                log(logger, logging.WARNING, "backup manifest not written", backup_id=backup_id, error=repr(exc))
            for full_id in await schedules.expired_chains(uow, row.instance_id):
                await self._delete_chain(uow, event, full_id)
        await self.store.handled_once(event, apply)

    # -- restore into a new instance ----------------------------------------------
    async def restore_requested(self, event: Event) -> None:
        d = event.data

        async def apply(uow: UnitOfWork):
            if (await uow.conn.execute(select(restores).where(restores.c.instance_id == d["instance_id"]))).first():
                return
            await uow.conn.execute(restores.insert().values(instance_id=d["instance_id"], project_id=d["project_id"],
                                                            backup_id=d["backup_id"], status="RESTORING"))
            chain, problem = await self._chain(uow, d["backup_id"], d["project_id"])
            if problem:
                await self._restore_ended(uow, event, d["instance_id"], False, problem)
                return
            try:
                keys = [base64.b64encode(backupkeys.unwrap(self.master_key, b.wrapped_key, b.id)).decode()
                        for b in chain]
            except backupkeys.WrappedKeyError as exc:
                await self._restore_ended(uow, event, d["instance_id"], False, f"{exc}: was the master key changed?")
                return
            arguments = {"chain": [{"backup_id": b.id, "container": b.container, "object": b.object,
                                    "sha256": b.checksum, "meta": json.loads(b.engine_meta)} for b in chain],
                         "restore_time": d.get("restore_time")}
            secrets = {"data_keys": keys}
            # PostgreSQL replays its WAL archive to a moment, or to its last incremental backup's end
            if d.get("restore_time") or (chain[0].datastore == "postgresql" and len(chain) > 1):
                archive = (await uow.conn.execute(select(archives).where(
                    archives.c.instance_id == chain[0].instance_id))).first()
                if archive is None:
                    await self._restore_ended(uow, event, d["instance_id"], False,
                                              f"Instance {chain[0].instance_id} has no log archive: it cannot be "
                                              "restored to a point in time.")
                    return
                arguments["archive"] = {"container": archive.container, "prefix": archive.prefix}
                secrets["archive_key"] = self._archive_key(archive)
            await uow.emit(T.AGENT_COMMANDS, event.caused("coffer.agent.command.v1", {
                "instance_id": d["instance_id"], "command_id": d["instance_id"] + RESTORE_SUFFIX, "epoch": 1,
                "command": "restore", "arguments": json.dumps(arguments),
                "sealed": sealing.seal(d["agent_public_key"], secrets)},
                subject=d["instance_id"], source=SOURCE))
        await self.store.handled_once(event, apply)

    async def _chain(self, uow: UnitOfWork, backup_id: str, project_id: str) -> tuple[list, str]:
        """The backup and its ancestors, full first, each COMPLETED with its object
        present at its recorded size; or why not."""
        chain, next_id = [], backup_id
        while next_id:
            row = await self._row(uow, next_id)
            if row is None or row.project_id != project_id:
                return [], f"Backup {next_id} does not exist (any more)."
            if row.status not in RESTORABLE:
                return [], f"Backup {row.id} is {row.status}, not COMPLETED."
            try:
                stored = await self.objects.head(row.container, row.object)
            except ObjectNotFound:
                return [], f"The object of backup {row.id} is missing from the object store."
            if stored.size != row.size_bytes:
                return [], (f"The object of backup {row.id} has {stored.size} bytes where {row.size_bytes} were "
                            "stored: it was altered.")
            chain.append(row)
            next_id = row.parent_id
        return list(reversed(chain)), ""

    async def _restore_ended(self, uow: UnitOfWork, cause: Event, instance_id: str, success: bool,
                             message: str) -> None:
        row = (await uow.conn.execute(select(restores).where(restores.c.instance_id == instance_id))).one()
        await uow.conn.execute(update(restores).where(restores.c.instance_id == instance_id).values(
            status="DONE" if success else "FAILED"))
        event = cause.caused("coffer.backup.restore_finished.v1", {
            "instance_id": instance_id, "project_id": row.project_id, "backup_id": row.backup_id,
            "success": success, "message": message}, subject=instance_id, source=SOURCE)
        event.project = row.project_id
        await uow.emit(T.BACKUP_EVENTS, event)

    async def restore_result(self, event: Event) -> None:
        d = event.data
        instance_id = d["command_id"][:-len(RESTORE_SUFFIX)]

        async def apply(uow: UnitOfWork):
            row = (await uow.conn.execute(select(restores).where(restores.c.instance_id == instance_id))).first()
            if row is None or row.status != "RESTORING":
                return
            message = "" if d["success"] else f"Backup {row.backup_id} could not be restored: {d['error']}"
            await self._restore_ended(uow, event, instance_id, d["success"], message)
        await self.store.handled_once(event, apply)

    # -- deletion -----------------------------------------------------------------
    async def delete_requested(self, event: Event) -> None:
        await self.store.handled_once(event, lambda uow: self._delete_chain(uow, event, event.data["backup_id"]))

    async def _delete_chain(self, uow: UnitOfWork, cause: Event, backup_id: str) -> None:
        """The backup and every backup built on it, children first: an incremental
        backup is useless without its parent."""
        doomed, frontier = [], [backup_id]
        while frontier:
            rows = (await uow.conn.execute(select(backups).where(backups.c.id.in_(frontier)))).all()
            doomed += rows
            frontier = [r.id for r in (await uow.conn.execute(select(backups.c.id).where(
                backups.c.parent_id.in_([r.id for r in rows])))).all()]
        for row in reversed(doomed):
            try:
                if row.object:  # a refused import has none
                    await self.objects.delete(row.container, row.object)
                    await self.objects.delete(row.container, row.object + manifests.SUFFIX)
            except Exception as exc:  # the user sees DELETE_FAILED and may delete again
                log(logger, logging.ERROR, "backup object not deleted", backup_id=row.id, error=repr(exc))
                await self._set(uow, cause, row.id, "DELETE_FAILED", "The backup's object could not be "
                                                                     "deleted; delete it again.")
                return
            await uow.conn.execute(delete(backups).where(backups.c.id == row.id))
            await uow.emit(T.BACKUP_EVENTS, status_event(cause, row, "DELETED"))
        for instance_id in {row.instance_id for row in doomed}:
            await self._prune_archive(uow, instance_id)

    async def _prune_archive(self, uow: UnitOfWork, instance_id: str) -> None:
        """Delete the instance's archived WAL / binlogs that no remaining backup can use
        (services/backup/archive_retention.py). A running backup's start is not known
        yet: the archive is left alone until the next deletion."""
        archive = (await uow.conn.execute(select(archives).where(archives.c.instance_id == instance_id))).first()
        if archive is None:
            return
        left = (await uow.conn.execute(select(backups).where(backups.c.instance_id == instance_id))).all()
        if any(b.status in ("NEW", "BUILDING") for b in left):
            return
        starts = [json.loads(b.engine_meta).get("archive_from")
                  for b in left if b.status == "COMPLETED" and b.parent_id is None]
        try:
            names = [o.name[len(archive.prefix):] for o in await self.objects.list(archive.container, archive.prefix)]
            doomed = archive_retention.unneeded(names, starts)
            for name in doomed:
                await self.objects.delete(archive.container, archive.prefix + name)
        except Exception as exc:  # what is left goes with the next deletion
            log(logger, logging.WARNING, "log archive not pruned", instance_id=instance_id, error=repr(exc))
            return
        if doomed:
            log(logger, logging.INFO, "log archive pruned", instance_id=instance_id, deleted=len(doomed),
                kept=len(names) - len(doomed))

    # -- deadlines ----------------------------------------------------------------
    async def expire(self) -> int:
        async with self.store.uow() as uow:
            late = (await uow.conn.execute(select(backups).where(
                backups.c.status.in_(("NEW", "BUILDING")), backups.c.deadline < utcnow()))).all()
            for row in late:
                cause = Event("coffer.backup.expired", row.id, {}, source=SOURCE, project=row.project_id)
                await self._set(uow, cause, row.id, "FAILED",
                                f"The backup did not finish within {DEADLINE_SECONDS:.0f} s: the instance's "
                                "agent did not report back.")
        return len(late)
