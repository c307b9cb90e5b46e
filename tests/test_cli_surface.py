"""The command line's surface: the same options spelt the same way everywhere, --version, examples in --help."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from sshd_setup.cli import app
from sshd_setup.cliargs import Shared, with_shared
from sshd_setup.fleetargs import FLEET as FLEET_OPTIONS
from sshd_setup.fleetargs import FleetArgs

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


def _definition(param: Any) -> tuple[Any, ...]:
    return (param.opts, param.secondary_opts, param.default, param.required, param.help, param.hidden, param.multiple)


def test_every_fleet_command_takes_the_one_definition_of_each_fleet_option() -> None:
    fleet_commands = {name: _commands()[(name,)] for name in ("apply", "check", "rollback", "uninstall", "verify")}
    required = [field.name for field in dataclasses.fields(FleetArgs) if field.default is dataclasses.MISSING]
    seen: dict[str, tuple[Any, ...]] = {}
    for name, command in fleet_commands.items():
        params = {param.name: param for param in command.params}
        assert set(required) <= set(params), name  # FleetArgs gets a value for each field without a default
        for option in set(FLEET_OPTIONS) & set(params):
            assert seen.setdefault(option, _definition(params[option])) == _definition(params[option]), (name, option)
    assert set(seen) == set(FLEET_OPTIONS)  # and no FLEET option goes unused
    assert seen["forks"][2] == 50 and seen["timeout"][2] == 10.0 and seen["min_severity"][2] == "info"


@dataclasses.dataclass(frozen=True)
class _Shared:
    name: str
    loud: bool = False


_SHARED = {
    "name": Shared(str, typer.Option(..., "--name", help="A name.")),
    "loud": Shared(bool, typer.Option(False, "--loud", help="Shout.")),
}


def test_a_shared_option_command_sees_its_options_in_order_and_returns_its_exit_code() -> None:
    demo = typer.Typer(add_completion=False)
    received: list[tuple[_Shared, int]] = []

    @demo.command()
    @with_shared(_Shared, _SHARED, "name times loud")
    def greet(shared: _Shared, times: int = typer.Option(1, "--times", help="How often.")) -> int:
        """Greet."""
        received.append((shared, times))
        return 3 if shared.loud else 0

    command = typer.main.get_command(demo)
    assert [param.name for param in command.params] == ["name", "times", "loud"]
    assert command.help == "Greet."
    runner = CliRunner()
    assert runner.invoke(demo, ["--name", "x", "--times", "2"]).exit_code == 0
    assert runner.invoke(demo, ["--name", "y", "--loud"]).exit_code == 3
    assert received == [(_Shared("x"), 2), (_Shared("y", loud=True), 1)]
    assert runner.invoke(demo, ["--times", "2"]).exit_code == 2  # --name is still required


@pytest.mark.parametrize("order", ["name loud", "name times times loud", "name times loud other"])
def test_a_shared_option_order_must_name_every_option_once(order: str) -> None:
    def greet(shared: _Shared, times: int = 1) -> int:
        return 0

    with pytest.raises(TypeError, match="must name each option once"):
        with_shared(_Shared, _SHARED, order)(greet)


def test_a_shared_option_order_must_name_the_fields_without_a_default() -> None:
    def greet(shared: _Shared) -> int:
        return 0

    with pytest.raises(TypeError, match="must name _Shared's fields"):
        with_shared(_Shared, _SHARED, "loud")(greet)
