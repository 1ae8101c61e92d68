"""Backup orchestration: the service owns the backups (chains of a full backup and
incremental ones), asks the instance's agent to stream each one into the object
store (compressed and encrypted under a data key only this service can unwrap), and
publishes every status change on coffer.backup.events."""
