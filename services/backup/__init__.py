"""Backup orchestration. This release keeps the service's inventory of instances
(the ones a backup could be asked for); backups themselves arrive with issue 4."""
