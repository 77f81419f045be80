"""Snapshots: restored sandboxes kept so that copies and resets start in about a second."""
