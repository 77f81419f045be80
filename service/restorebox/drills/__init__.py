"""Backup drills: every backup of a series restored on its own, compared with the last
good one, and an alarm when data goes missing or backups stop arriving (issue 19)."""
