"""The pipeline over a connection someone else owns (sshd_setup/delegated.py), without test hosts.

The facts script really runs in this machine's sh; only the apply and restore scripts are answered here
(they would change this machine), so the orchestration around the lockout guard is what is checked.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from sshd_setup import pipeline
from sshd_setup.delegated import NEW_LOGIN_OPTIONS, Delegated, ScriptTransport, SshLogin, host_entry, merged_settings
from sshd_setup.errors import InputError
from sshd_setup.inventory import load_inventory
from sshd_setup.pipeline import RunOptions, run_host
from sshd_setup.report import Status
from sshd_setup.transport import CommandResult, Unreachable
from tests.fakehost import VirtualClock, guard_restored, kind_of, record
from tests.helpers import CA_KEY

TMP_IS_WORLD_WRITABLE = frozenset({"UNSAFE-PERMISSIONS"})  # the test's files live under /tmp


def test_new_login_options_come_before_the_connections_own_so_no_master_is_reused() -> None:
    ansible_defaults = ("-C", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s", "-o", "ControlPath=/cp/%C")
    login = SshLogin("10.0.0.5", port=2200, user="deploy", key_file="/k/id", ssh_args=ansible_defaults)

    argv = login.argv("exit 0")

    assert argv[1 : 1 + len(NEW_LOGIN_OPTIONS)] == list(NEW_LOGIN_OPTIONS)  # ssh keeps the first value it reads
    assert argv.index("ControlMaster=no") < argv.index("ControlMaster=auto")
    assert argv.index("ControlPath=none") < argv.index("ControlPath=/cp/%C")
    assert argv[-3:] == ["--", "10.0.0.5", "exit 0"]
    assert {"Port=2200", "User=deploy", "IdentityFile=/k/id", "BatchMode=yes"} <= set(argv)


def test_a_refused_new_login_is_unreachable_with_ssh_s_reason() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    login = SshLogin("127.0.0.1", port=port, user="nobody", timeout=5)
    with pytest.raises(Unreachable, match=r"new ssh login to 127\.0\.0\.1: .*refused"):
        login.probe()


def test_arguments_override_the_variable_per_key_with_the_cli_s_checks(tmp_path: Path) -> None:
    variable = {"ca_keys": [CA_KEY], "create_users": False, "backups_keep": 3}
    merged = merged_settings(variable, {"create_users": True}, "host web1")
    assert merged == {"ca_keys": [CA_KEY], "create_users": True, "backups_keep": 3}

    with pytest.raises(InputError) as bad_argument:
        merged_settings(variable, {"ca_kyes": [CA_KEY]}, "host web1")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(f"all:\n  hosts:\n    web1:\n      sshd_setup:\n        ca_kyes: ['{CA_KEY}']\n")
    with pytest.raises(InputError) as bad_inventory:
        load_inventory(inventory)
    assert bad_argument.value.where == "host web1: arguments.ca_kyes"
    assert bad_argument.value.problem == bad_inventory.value.problem  # the same message as the CLI
    assert "did you mean" in bad_argument.value.problem

    with pytest.raises(InputError, match=r"host web1: sshd_setup\.backups_keep: backups_keep must be between"):
        merged_settings({**variable, "backups_keep": 0}, {}, "host web1")


class ScriptedHost:
    """Facts from this machine's real sh; the apply and restore scripts answered with a real host's records."""

    def __init__(self, apply_answer: str) -> None:
        self.apply_answer = apply_answer
        self.sent: list[str] = []

    def execute(self, script: str) -> CommandResult:
        self.sent.append(script)
        if kind_of(script) == "apply":
            return CommandResult(0, self.apply_answer, "")
        if kind_of(script) == "rollback":
            return CommandResult(0, guard_restored(), "")
        proc = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, timeout=60)
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)


class Login:
    def __init__(self, works: list[bool]) -> None:
        self.works = works
        self.opened = 0

    def __call__(self) -> Login:
        self.opened += 1
        return self

    round_trips = 0
    sshd_version = ""

    def probe(self) -> bool:
        return self.works.pop(0) if len(self.works) > 1 else self.works[0]

    def close(self) -> None:
        return None


def entry_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    main = tmp_path / "sshd_config"
    main.write_text("PasswordAuthentication no\n")
    settings = {
        "ca_keys": [CA_KEY],
        "ca_path": str(tmp_path / "ca.pub"),
        "sshd_config": str(main),
        "managed_dirs": [str(tmp_path)],
    }
    return host_entry("here", merged_settings(settings, {}, "host here"), where="host here", base_dir=tmp_path)


def test_dry_run_over_the_owner_s_connection_sends_only_the_facts_script(tmp_path: Path) -> None:
    host, login = ScriptedHost(""), Login([True])
    options = RunOptions(
        dry_run=True, allow=TMP_IS_WORLD_WRITABLE, transports=Delegated(ScriptTransport(host.execute), login)
    )

    result = run_host(entry_for(tmp_path), options)

    assert result.status is Status.WOULD_CHANGE, result
    assert len(host.sent) == 1 and result.round_trips == 1
    assert login.opened == 0  # no change, no guard
    assert any(f.changed and "+TrustedUserCAKeys" in f.diff for f in result.files)


def test_failed_guard_on_new_logins_restores_over_the_owner_s_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "time", VirtualClock())  # the guard's 5 s of retries, at once
    host = ScriptedHost(record("apply-changed"))
    login = Login([False] * 100)
    options = RunOptions(allow=TMP_IS_WORLD_WRITABLE, transports=Delegated(ScriptTransport(host.execute), login))

    result = run_host(entry_for(tmp_path), options)

    assert result.status is Status.FAILED, result  # the re-check after the restore failed too
    assert "rollback of 20261201T174939Z-423ded did not help" in result.reason
    assert "\nrollback_to 20261201T174939Z-423ded 0\n" in host.sent[-1]  # 0: the guard does not save again
    assert login.opened >= 2  # every attempt is a NEW login, none is the session's connection

    host = ScriptedHost(record("apply-changed"))
    guard_fails_first = RunOptions(
        allow=TMP_IS_WORLD_WRITABLE,
        transports=Delegated(ScriptTransport(host.execute), _first_guard_fails(host)),
    )

    result = run_host(entry_for(tmp_path), guard_fails_first)

    assert result.status is Status.ROLLED_BACK, result
    assert "restored 20261201T174939Z-423ded and sshd answers again" in result.reason


def _first_guard_fails(host: ScriptedHost):  # type: ignore[no-untyped-def]
    """New logins fail until the restore script was sent, then work."""

    class Answer:
        round_trips = 0
        sshd_version = ""

        def probe(self) -> bool:
            return any("\nrollback_to " in script for script in host.sent)

        def close(self) -> None:
            return None

    return lambda: Answer()


def test_the_action_plugin_fails_a_bad_setting_with_the_cli_s_message_before_contact(tmp_path: Path) -> None:
    from tests.ansiblerun import AnsibleHome, write_playbook

    ansible = AnsibleHome(tmp_path / "ansible")
    ansible.install_collection()
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  vars:\n    ansible_connection: local\n  hosts:\n"
        f"    bad:\n      sshd_setup: {{ca_keys: ['{CA_KEY}'], backups_keep: 0}}\n"
        f"    good:\n      sshd_setup: {{ca_keys: ['{CA_KEY}']}}\n"
    )
    run = ansible.playbook(write_playbook(tmp_path / "play.yml", args={"create_user": True}), inventory)

    assert run.returncode == 2 and run.recap("bad")["failed"] == run.recap("good")["failed"] == 1, run.stdout
    assert run.host("bad")["msg"] == "host bad: sshd_setup.backups_keep: backups_keep must be between 1 and 1000"
    message = run.host("good")["msg"]
    assert message.startswith("host good: arguments.create_user: unknown key 'create_user'"), message
    assert "did you mean" in message and "create_users" in message
    assert "round_trips" not in run.host("good")  # refused before the host was contacted
