"""Redis plugin: one module per concern (layout and settings, run, users, status)."""
