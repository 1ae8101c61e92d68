"""Task manager: runs the create/delete sagas and owns compute resources."""
