"""The command line's surface: the same options spelt the same way everywhere, --version, examples in --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from sshd_setup.cli import app

ROOT = typer.main.get_command(app)
FLEET = ("apply", "check", "rollback", "verify")


def _commands(group: Any = ROOT, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    found: dict[tuple[str, ...], Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found.update(_commands(command, (*prefix, name)))
        else:
            found[(*prefix, name)] = command
    return found


def _flags(command: Any) -> dict[str, Any]:
    return {flag: param for param in command.params for flag in [*param.opts, *param.secondary_opts]}


def test_every_fleet_command_spells_its_options_the_same_way() -> None:
    commands = _commands()
    shared = {"-i": "inventory", "-l": "limit", "-f": "forks", "-K": "ask_become_pass", "--json": "as_json"}
    for name in FLEET:
        flags = _flags(commands[(name,)])
        for flag, dest in shared.items():
            assert flag in flags and flags[flag].name == dest, (name, flag)
        assert "--host-key-checking" in flags and "--no-host-key-checking" in flags, name
    for name in ("apply", "rollback"):
        flags = _flags(commands[(name,)])
        assert {"--yes", "-y", "--serial", "--max-fail", "-q", "--quiet"} <= set(flags), name
    for name in ("apply", "check"):
        assert "--min-severity" in _flags(commands[(name,)]), name


def test_minus_i_is_an_inventory_or_nothing() -> None:
    for path, command in _commands().items():
        flags = _flags(command)
        if "-i" in flags:
            assert flags["-i"].name == "inventory", path
    logs = _commands()
    assert _flags(logs[("logs", "decrypt")])["-c"].name == "capture"
    assert "--input" in _flags(logs[("logs", "decrypt")])  # the old long name keeps working


def test_every_visible_command_has_an_example_and_test_only_ones_are_hidden() -> None:
    groups = {(): ROOT, **{(name,): c for name, c in ROOT.commands.items() if hasattr(c, "commands")}}
    for path, command in {**groups, **_commands()}.items():
        if command.hidden:
            continue
        text = f"{command.help or ''}\n{command.epilog or ''}"
        assert "Example" in text or "example" in text, path
    assert _commands()[("logs", "encrypt")].hidden


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        app(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("sshd-setup ") and out.split()[1][0].isdigit()


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["apply", "--serial", "0"], "--serial: '0' is not a number of hosts"),
        (["apply", "--yes", "--max-fail", "120%"], "--max-fail: '120%' is not a number of hosts"),
        (["check", "--min-severity", "loud"], "--min-severity: 'loud' is not one of info, warning, error"),
        (["apply", "--dry-run", "--forks", "0"], "--forks: must be at least 1"),
    ],
)
def test_bad_run_control_values_are_one_line_and_exit_2(tmp_path: Path, argv: list[str], problem: str) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    web1:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n")
    run = subprocess.run(
        [sys.executable, "-m", "sshd_setup", *argv, "-i", str(inventory)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert run.returncode == 2, run
    assert run.stderr.strip().startswith(f"sshd-setup: error: {problem}"), run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not run.stdout
