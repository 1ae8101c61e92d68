"""The operator command line and the embedded stack launcher."""
