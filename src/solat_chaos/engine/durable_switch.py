"""A switch whose state survives restarts: the shared mechanism of the kill switch and the
persisted halt. It fails closed — an unreadable state file means ON."""

from __future__ import annotations

import json
import posixpath
import zlib

import attrs

from solat_chaos.engine.filesystem import FileSystem, replace_atomically


@attrs.frozen
class SwitchStatus:
    """`persisted` says whether the state reported is the one a restart will find."""

    active: bool
    persisted: bool
    reason: str
    changed_at: float | None = None


def _body(active: bool, reason: str, changed_at: float) -> bytes:
    return json.dumps(
        {"active": active, "reason": reason, "changed_at": changed_at}, sort_keys=True
    ).encode()


class DurableSwitch:
    """Loaded at construction; `turn_on` and `turn_off` persist by atomic replace."""

    name = "switch"

    def __init__(self, fs: FileSystem, directory: str, file_name: str) -> None:
        self._fs = fs
        self.path = posixpath.join(directory, file_name)
        self.status = self._load()

    @property
    def active(self) -> bool:
        return self.status.active

    def turn_on(self, reason: str, now: float) -> SwitchStatus:
        """On at once in memory, whatever the disk says; `persisted` tells whether it stuck."""
        self.status = SwitchStatus(True, self._persist(True, reason, now), reason, now)
        return self.status

    def turn_off(self, reason: str, now: float) -> SwitchStatus:
        """Off only once that is durable: a switch that cannot be persisted stays on, so a
        restart can never find it on after it was reported off or the other way round."""
        if self._persist(False, reason, now):
            self.status = SwitchStatus(False, True, reason, now)
        else:
            self.status = attrs.evolve(self.status, persisted=False)
        return self.status

    def _persist(self, active: bool, reason: str, now: float) -> bool:
        body = _body(active, reason, now)
        document = b'{"crc":"%08x","state":%s}\n' % (zlib.crc32(body) & 0xFFFFFFFF, body)
        try:
            replace_atomically(self._fs, self.path, document)
        except OSError:
            return False
        return True

    def _load(self) -> SwitchStatus:
        try:
            if not self._fs.exists(self.path):
                return SwitchStatus(False, True, f"no {self.name} state file: inactive")
            data = self._fs.read(self.path)
        except OSError as e:
            return self._fail_closed(f"unreadable: {e}")
        try:
            document = json.loads(data)
            body = json.dumps(document["state"], sort_keys=True).encode()
            if document["crc"] != f"{zlib.crc32(body) & 0xFFFFFFFF:08x}":
                return self._fail_closed("corrupt: checksum mismatch")
            state = document["state"]
            active, reason, changed_at = state["active"], state["reason"], state["changed_at"]
            if not isinstance(active, bool) or not isinstance(reason, str):
                return self._fail_closed("corrupt: wrong field types")
        except (ValueError, KeyError, TypeError) as e:
            return self._fail_closed(f"corrupt: {e!r}")
        return SwitchStatus(active, True, reason, changed_at)

    def _fail_closed(self, problem: str) -> SwitchStatus:
        return SwitchStatus(True, True, f"{self.name} state {problem}; failing closed (active)")
