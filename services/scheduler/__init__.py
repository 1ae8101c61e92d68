"""Placement: hosts, capacity, zones; answers "where" for each instance."""
