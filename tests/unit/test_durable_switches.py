"""The kill switch and the halt persist by atomic replace, report `persisted` honestly, and
fail closed on a state file they cannot read."""

from __future__ import annotations

import pytest

from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.filesystem import FileSystem
from solat_chaos.engine.kill_switch import KillSwitch
from solat_chaos.engine.trading_state import HaltSwitch

NOW = 1_767_225_600.0

SWITCHES = [KillSwitch, HaltSwitch]


@pytest.mark.parametrize("switch_type", SWITCHES)
def test_a_missing_state_file_means_inactive(fs: FileSystem, root: str, switch_type) -> None:
    switch = switch_type(fs, root)
    assert not switch.active
    assert "no" in switch.status.reason and "state file" in switch.status.reason


@pytest.mark.parametrize("switch_type", SWITCHES)
def test_activation_survives_a_reopen(fs: FileSystem, root: str, switch_type) -> None:
    status = switch_type(fs, root).turn_on("drawdown limit", NOW)
    assert status.active and status.persisted
    reopened = switch_type(fs, root)
    assert reopened.active and reopened.status.reason == "drawdown limit"
    assert reopened.turn_off("all clear", NOW + 1).persisted
    assert not switch_type(fs, root).active


@pytest.mark.parametrize("switch_type", SWITCHES)
@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", b"{}", b'{"crc":"00000000","state":{"active":false}}', b"[true]"],
)
def test_an_unreadable_state_file_fails_closed(
    fs: FileSystem, root: str, switch_type, content: bytes
) -> None:
    switch_type(fs, root).turn_off("start", NOW)
    fs.write(f"{root}/{switch_type(fs, root).path.rsplit('/', 1)[1]}", content)
    reopened = switch_type(fs, root)
    assert reopened.active
    assert "failing closed" in reopened.status.reason


def test_a_flipped_bit_in_an_inactive_state_fails_closed(sim_fs: SimFileSystem) -> None:
    sim_fs.makedirs("/d")
    switch = KillSwitch(sim_fs, "/d")
    switch.turn_off("start", NOW)
    text = sim_fs.read(switch.path)
    sim_fs.corrupt(switch.path, text.index(b"false"), b"true ")
    reopened = KillSwitch(sim_fs, "/d")
    assert reopened.active and "checksum" in reopened.status.reason


def test_kill_switch_survives_open_activate_crash_open(sim_fs: SimFileSystem) -> None:
    sim_fs.makedirs("/d")
    assert KillSwitch(sim_fs, "/d").turn_on("manual", NOW).persisted
    sim_fs.crash()
    assert KillSwitch(sim_fs, "/d").active


@pytest.mark.parametrize("torn_bytes", [0, 5, 1000])
def test_a_crash_during_a_write_leaves_old_or_new_state(
    sim_fs: SimFileSystem, torn_bytes: int
) -> None:
    sim_fs.makedirs("/d")
    switch = KillSwitch(sim_fs, "/d")
    switch.turn_on("first", NOW)
    sim_fs.fail_fsync()  # the new state never becomes durable
    status = switch.turn_off("second", NOW)
    assert not status.persisted and status.active  # off only once durable
    sim_fs.heal()
    sim_fs.crash(torn_bytes=torn_bytes)
    reopened = KillSwitch(sim_fs, "/d")
    assert reopened.active and reopened.status.reason == "first"


def test_activation_on_a_failing_disk_is_active_but_not_persisted(sim_fs: SimFileSystem) -> None:
    sim_fs.makedirs("/d")
    switch = KillSwitch(sim_fs, "/d")
    sim_fs.fail_writes_after(0)
    status = switch.turn_on("manual", NOW)
    assert status.active and not status.persisted
    assert switch.active
    sim_fs.crash()
    assert not KillSwitch(sim_fs, "/d").active  # exactly what persisted=False warned of


def test_activation_when_the_directory_disappeared_is_not_persisted(
    sim_fs: SimFileSystem,
) -> None:
    sim_fs.makedirs("/d")
    switch = KillSwitch(sim_fs, "/d")
    sim_fs.remove_directory("/d")
    status = switch.turn_on("manual", NOW)
    assert status.active and not status.persisted
