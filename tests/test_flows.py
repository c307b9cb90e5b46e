"""The two gateway flows in the pure core (desired state, port findings) and the targets sync plan.

The real logins for both flows are in test_access_infrastructure.py; these are the fast checks of
the rules behind them, on real fixture trees (tests/fixtures/findings) where files matter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sshd_setup.commands.lint import lint_findings
from sshd_setup.core.desired import Desired
from sshd_setup.core.finding import Severity
from sshd_setup.errors import InputError
from sshd_setup.gateway.targets import Action, Existing, Wanted, plan_sync
from tests.helpers import desired_from
from tests.test_findings import build

AI = {"flow": "access-infrastructure"}
SINGLE = {"user": "johndoe", "principal": "jdoe@example.com"}


def port_codes(root: Path, desired: Desired) -> set[tuple[str, str]]:
    found = lint_findings(root=root, main=None, desired=desired)[1]
    return {(f.code, f.severity.value) for f in found if "PORT" in f.code or f.code == "PRINCIPAL-IS-USERNAME"}


# ---------------------------------------------------------------- desired state


def test_default_flow_is_the_ssh_proxy_with_the_e_mail_prefix() -> None:
    desired = desired_from({"principals": [SINGLE]})
    assert (desired.flow, desired.port) == ("ssh-proxy", 22)
    assert desired.mappings[0].principals == ("jdoe",)


def test_access_infrastructure_uses_a_principal_as_written_and_warns_of_no_shared_prefix() -> None:
    twins = [SINGLE, {"user": "jd2", "principals": ["jdoe@example.org", "robin"]}]
    proxy = desired_from({"principals": twins})
    infra = desired_from({**AI, "port": 2222, "principals": twins})
    assert any("share the prefix 'jdoe'" in w for w in proxy.warnings)
    assert infra.warnings == ()
    assert [m.principals for m in infra.mappings] == [("jdoe@example.com",), ("jdoe@example.org", "robin")]
    assert infra.port == 2222


def test_mappings_are_optional_in_both_flows() -> None:
    assert desired_from(AI).mappings == ()
    assert desired_from({}).mappings == ()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"flow": "bastion"}, "flow must be 'ssh-proxy' or 'access-infrastructure'"),
        ({**AI, "port": 0}, "port must be a port number (1-65535)"),
        ({**AI, "port": "2222"}, "port must be a number"),
        ({"port": 2222}, "port 2222 needs flow: access-infrastructure"),
        ({"virtual_network": ""}, "virtual_network must be a virtual network's name"),
        ({"virtual_network": "a\nb"}, "virtual_network must be a virtual network's name"),
        ({"flwo": "ssh-proxy"}, "did you mean 'flow'"),
    ],
)
def test_bad_flow_settings_name_the_key(settings: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError) as info:
        desired_from(settings)
    assert expected in str(info.value)


# ---------------------------------------------------------------- port findings follow the flow


def test_port_findings_require_sshd_setup_port_in_access_infrastructure(tmp_path: Path) -> None:
    root = build("port-2222", tmp_path)  # sshd_config: Port 2222 only
    proxy = port_codes(root, desired_from({"principals": [SINGLE]}))
    assert proxy == {("PORT-NOT-22", "error"), ("NO-PORT-22", "error")}
    assert port_codes(root, desired_from({**AI, "port": 2222, "principals": [SINGLE]})) == set()
    # Access for Infrastructure still wants the port its target criteria name: 22 unless set.
    assert port_codes(root, desired_from({**AI, "principals": [SINGLE]})) == proxy


def test_extra_port_beside_the_gateway_port_is_still_an_error(tmp_path: Path) -> None:
    root = build("extra-port", tmp_path)  # Port 22 and Port 2222
    found = lint_findings(root=root, main=None, desired=desired_from({**AI, "port": 2222}))[1]
    extra = [f for f in found if f.code == "PORT-NOT-22"]
    assert (
        len(extra) == 1 and "port 22" in extra[0].message and "listens on 2222 (the gateway's port)" in extra[0].message
    )


def test_no_mappings_in_access_infrastructure_is_an_info_finding(tmp_path: Path) -> None:
    root = build("debian", tmp_path)
    found = lint_findings(root=root, main=None, desired=desired_from(AI))[1]
    info = [f for f in found if f.code == "PRINCIPAL-IS-USERNAME"]
    assert len(info) == 1 and info[0].severity is Severity.INFO
    assert "names that user as a principal" in info[0].message
    for other in ({}, {**AI, "principals": [SINGLE]}, {**AI, "allow_all": True}):
        assert not [
            f
            for f in lint_findings(root=root, main=None, desired=desired_from(other))[1]
            if f.code == "PRINCIPAL-IS-USERNAME"
        ]


# ---------------------------------------------------------------- the targets sync plan (pure)

V = "vnet-default"


def want(name: str, ip: str, vnet: str = V) -> Wanted:
    return Wanted(name, "ipv4", ip, vnet)


def target(tid: str, name: str, ip: str, vnet: str | None = V) -> Existing:
    return Existing(tid, name, {"ipv4": (ip, vnet)})


def kinds(actions: list[Action]) -> list[tuple[str, str, str | None]]:
    return [(a.kind, a.hostname, a.target_id) for a in actions]


def plan(
    wanted: list[Wanted],
    existing: list[Existing],
    ours: frozenset[str] | set[str] = frozenset(),
    prune: bool = False,
    names: set[str] | None = None,
) -> list[Action]:
    return plan_sync(
        wanted,
        existing,
        ours=set(ours),
        inventory_names=names if names is not None else {w.hostname for w in wanted},
        default_vnet=V,
        prune=prune,
    )


def test_plan_creates_updates_and_leaves_alone() -> None:
    actions = plan(
        [want("web1", "192.0.2.1"), want("web2", "192.0.2.2"), want("web3", "192.0.2.3")],
        [target("t1", "web1", "192.0.2.1"), target("t2", "WEB2", "192.0.2.9"), target("t9", "other", "192.0.2.99")],
    )
    assert kinds(actions) == [("unchanged", "web1", "t1"), ("update", "web2", "t2"), ("create", "web3", None)]
    assert actions[1].body == {"hostname": "web2", "ip": {"ipv4": {"ip_addr": "192.0.2.2", "virtual_network_id": V}}}


def test_a_target_without_vnet_id_is_in_the_default_network() -> None:
    assert kinds(plan([want("web1", "192.0.2.1")], [target("t1", "web1", "192.0.2.1", None)])) == [
        ("unchanged", "web1", "t1")
    ]


def test_update_keeps_the_other_address_family() -> None:
    both = Existing("t1", "web1", {"ipv4": ("192.0.2.9", V), "ipv6": ("2001:db8::1", V)})
    (action,) = plan([want("web1", "192.0.2.1")], [both])
    assert action.kind == "update"
    assert action.body["ip"]["ipv6"] == {"ip_addr": "2001:db8::1", "virtual_network_id": V}


def test_address_of_another_target_is_a_conflict_unless_ours_and_renamed() -> None:
    held = [target("t7", "legacy", "192.0.2.1")]
    assert kinds(plan([want("web1", "192.0.2.1")], held)) == [("conflict", "web1", None)]
    # The same address in another virtual network is another address.
    assert kinds(plan([want("web1", "192.0.2.1", "vnet-lab")], held)) == [("create", "web1", None)]
    # Ours, and "legacy" left the inventory: the host was renamed, so the target is renamed.
    assert kinds(plan([want("web1", "192.0.2.1")], held, ours={"t7"})) == [("update", "web1", "t7")]
    # Ours, but "legacy" is still in the inventory: a conflict.
    assert kinds(plan([want("web1", "192.0.2.1")], held, ours={"t7"}, names={"web1", "legacy"})) == [
        ("conflict", "web1", None)
    ]


def test_prune_deletes_only_ours_that_left_the_inventory() -> None:
    existing = [target("t1", "web1", "192.0.2.1"), target("t2", "gone", "192.0.2.2"), target("t3", "hand", "192.0.2.3")]
    assert kinds(plan([want("web1", "192.0.2.1")], existing, ours={"t1", "t2"}, prune=True)) == [
        ("unchanged", "web1", "t1"),
        ("delete", "gone", "t2"),
    ]
    assert kinds(plan([want("web1", "192.0.2.1")], existing, ours={"t1", "t2"})) == [("unchanged", "web1", "t1")]
    # --limit: a host outside the limit is still in the inventory, so its target stays.
    assert kinds(plan([], existing, ours={"t1", "t2"}, prune=True, names={"web1", "gone"})) == []


def test_two_targets_with_the_host_name_prefer_ours_else_conflict() -> None:
    twins = [target("t1", "web1", "192.0.2.1"), target("t2", "web1", "192.0.2.5")]
    assert kinds(plan([want("web1", "192.0.2.1")], twins, ours={"t1"})) == [("unchanged", "web1", "t1")]
    assert kinds(plan([want("web1", "192.0.2.1")], twins))[0][0] == "conflict"
