"""The REST API: Trove v1.0 paths and bodies; owns the tenant-facing records."""
