"""Guest agent: one per instance. Owns the database process's whole life and
reports it on the bus. One package per datastore behind one manager interface."""
