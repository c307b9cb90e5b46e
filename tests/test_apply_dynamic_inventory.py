"""apply from a dynamic inventory (an executable run with --list, as Ansible does) on real container hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.fleetrun import sshd_setup
from tests.testhosts import HostSpec
from tests.testhosts.certs import make_ca, make_user_key, try_login

pytestmark = [pytest.mark.integration, pytest.mark.destructive]


def test_apply_from_an_inventory_script_then_a_certificate_logs_in(fresh_hosts, tmp_path: Path) -> None:
    fleet = fresh_hosts([HostSpec("dyn1"), HostSpec("dyn2", flavour="rhel")])
    static = yaml.safe_load(fleet.inventory_path.read_text())["all"]
    ca = make_ca(tmp_path)
    connection = {key: value for key, value in static["vars"].items() if key.startswith("ansible_")}
    listing = {
        # web gets its vars from the group, the hosts their addresses from _meta: both paths are exercised
        "all": {"vars": {**connection, "sshd_setup": {"ca_keys": [ca.public_key], "create_users": True}}},
        "web": {"hosts": ["dyn1"], "vars": {"sshd_setup": {"principals": [{"user": "webby", "principal": "jdoe"}]}}},
        "db": {"hosts": ["dyn2"], "vars": {"sshd_setup": {"principals": [{"user": "dba", "principal": "jdoe"}]}}},
        "prod": {"children": ["web", "db"]},
        "_meta": {"hostvars": {name: dict(static["hosts"][name]) for name in ("dyn1", "dyn2")}},
    }
    script = tmp_path / "cloud.sh"
    script.write_text(f'#!/bin/sh\n[ "$1" = "--list" ] && exec cat {tmp_path / "listing.json"}\necho \'{{}}\'\n')
    (tmp_path / "listing.json").write_text(json.dumps(listing))
    script.chmod(0o755)

    shown = sshd_setup("inventory", "-i", script, "--list")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["prod"] == {"children": ["web", "db"]}

    run = sshd_setup("apply", "-i", script, "--limit", "prod", "--yes", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    assert {run.host(name)["status"] for name in ("dyn1", "dyn2")} == {"changed"}

    key = make_user_key(tmp_path / "keys", "person")
    cert = ca.sign(key, ["jdoe"], validity="+10m")
    for host, user, other in ((fleet.host("dyn1"), "webby", "dba"), (fleet.host("dyn2"), "dba", "webby")):
        login = try_login(host, user, key, cert)
        assert login.success, f"{host.name}: {login}"
        assert not try_login(host, other, key, cert).success  # the other group's mapping is not there
