"""PostgreSQL plugin: one module per lifecycle verb (initdb, run, status, users)."""
