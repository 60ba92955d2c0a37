"""Secrets rotation and SSM replication Lambda handlers."""
