"""The store restorebox manages: sandbox data directories on a filesystem that clones
files (XFS with reflink, btrfs), so that a snapshot or a copy costs only what it changes."""
