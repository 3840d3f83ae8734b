"""Snapshots of the book, buffered and flushed by atomic replace.

Memory stays bounded whatever the disk does: a failed flush keeps only the newest
`max_pending` snapshots and reports what it dropped. The file is always the old or the new
flush, never a torn mix.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from solat_chaos.engine.filesystem import FileSystem, replace_atomically

SNAPSHOT_FILE = "snapshots.json"


class SnapshotBuffer:
    def __init__(
        self, fs: FileSystem, directory: str, *, max_pending: int = 64, flush_every: int = 8
    ) -> None:
        if not 0 < flush_every <= max_pending:
            raise ValueError(f"need 0 < flush_every ({flush_every}) <= max_pending ({max_pending})")
        self._fs = fs
        self.path = posixpath.join(directory, SNAPSHOT_FILE)
        self.max_pending = max_pending
        self.flush_every = flush_every
        self.pending: list[dict[str, Any]] = []
        self.dropped = 0
        self.last_error: str | None = None

    def add(self, snapshot: dict[str, Any]) -> None:
        self.pending.append(snapshot)
        if len(self.pending) >= self.flush_every:
            self.flush()

    def flush(self) -> bool:
        """Write the pending snapshots; whether they are durable now."""
        if not self.pending:
            return True
        document = json.dumps({"snapshots": self.pending}, sort_keys=True).encode()
        try:
            replace_atomically(self._fs, self.path, document)
        except OSError as e:
            self.last_error = f"snapshot flush failed: {e}"
            self._discard_oldest(len(self.pending) - self.max_pending)
            return False
        self.last_error = None
        self.pending.clear()
        return True

    def _discard_oldest(self, count: int) -> None:
        if count > 0:
            del self.pending[:count]
            self.dropped += count
