"""--allow is read by one parser (core.finding.parse_allow) for apply/check, verify and the verification plugin."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sshd_setup import cli, exitcodes
from sshd_setup.core.finding import parse_allow
from sshd_setup.errors import InputError
from sshd_setup.verification import plugin


def test_codes_are_upper_cased_split_on_commas_and_stripped() -> None:
    assert parse_allow(["port-not-22", " USER-MISSING , tmp-is-world-writable,", ""]) == {
        "PORT-NOT-22",
        "USER-MISSING",
        "TMP-IS-WORLD-WRITABLE",
    }
    assert parse_allow([]) == frozenset()


@pytest.mark.parametrize("value", ["no such code!", "PORT-NOT-22,rm -rf", "a/b", "CODE;"])
def test_anything_but_a_code_is_one_input_error_naming_allow(value: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_allow([value])
    assert caught.value.where == "--allow" and "is not a finding code" in str(caught.value)
    assert caught.value.exit_code == exitcodes.BAD_INPUT and "\n" not in str(caught.value)


def _config(allow: list[str]) -> Any:
    return SimpleNamespace(getoption=lambda name, default=None: allow if name == "sshd_setup_allow" else default)


def test_the_verification_plugin_reads_allow_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSHD_SETUP_ALLOW", raising=False)
    assert plugin.allowed_codes(_config(["port-not-22,user-missing"])) == {"PORT-NOT-22", "USER-MISSING"}
    with pytest.raises(pytest.UsageError, match="--allow: 'BAD CODE' is not a finding code"):
        plugin.allowed_codes(_config(["bad code"]))
    monkeypatch.setenv("SSHD_SETUP_ALLOW", "port-not-22")  # the environment variable, for late-loaded runs
    assert plugin.allowed_codes(_config([])) == {"PORT-NOT-22"}


@pytest.mark.parametrize("command", ["check", "verify"])
def test_a_bad_code_exits_2_with_one_line_before_any_host_is_contacted(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        textwrap.dedent(
            """
            all:
              hosts:
                web1:
                  ansible_host: 127.0.0.1
                  ansible_port: 1
                  sshd_setup:
                    ca_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ca"]
            """
        )
    )
    monkeypatch.setattr(sys, "argv", ["sshd-setup", command, "-i", str(inventory), "--allow", "port-not-22,oops!"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == exitcodes.BAD_INPUT
    err = capsys.readouterr().err
    assert err == "sshd-setup: error: --allow: 'OOPS!' is not a finding code\n"
