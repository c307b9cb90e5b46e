"""`sshd-setup gateway targets sync` and `logs key upload/show` against the fake gateway on 127.0.0.1.

Every run is the real CLI in a subprocess (`run` from test_gateway_ca asserts the token is never
printed); the fake keeps targets, virtual networks and the audit SSH settings as state, so a test
asserts what the gateway holds afterwards, and which writes reached it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from sshd_setup.inventory import HostEntry
from tests.gatewayfake.infra import DEFAULT_VNET
from tests.gatewayfake.server import FakeGateway, Reply, error_envelope
from tests.test_gateway_ca import ACCOUNT, CA_LINE, TOKEN, one_error_line, run

PREFIX = f"/client/v4/accounts/{ACCOUNT}/"


@pytest.fixture
def gw() -> Iterator[FakeGateway]:
    server = FakeGateway(TOKEN, ACCOUNT, CA_LINE).start()
    server.infra.add_vnet("lab", "vnet-lab-0001")
    yield server
    server.stop()


def inventory(tmp_path: Path, hosts: dict[str, dict[str, Any]]) -> Path:
    path = tmp_path / "inventory.yml"
    data = {"all": {"vars": {"sshd_setup": {"ca_keys": [CA_LINE], "flow": "access-infrastructure"}}, "hosts": hosts}}
    path.write_text(yaml.safe_dump(data))
    return path


HOSTS: dict[str, dict[str, Any]] = {
    "web1": {"ansible_host": "192.0.2.11"},
    "web2": {"ansible_host": "2001:db8::12"},
    "db1": {"ansible_host": "192.0.2.13", "sshd_setup": {"virtual_network": "lab"}},
    "local1": {"ansible_host": "localhost"},  # not an address: resolved on this machine
}


def sync(gw: FakeGateway, inv: Path, *extra: str) -> Any:
    return run(
        "gateway", "targets", "sync", "-i", str(inv), "--account-id", ACCOUNT, "--api-base", gw.base,
        "--backoff-base", "0", *extra,
    )  # fmt: skip


def paths(seen: list[Any]) -> list[str]:
    return [f"{s.method} {urlsplit(s.path).path.removeprefix(PREFIX)}" for s in seen]


def state_of(inv: Path) -> dict[str, str]:
    data = json.loads((inv.parent / ".sshd-setup" / f"targets-{ACCOUNT}.json").read_text())
    assert data["account_id"] == ACCOUNT and data["version"] == 1
    return data["targets"]  # type: ignore[no-any-return]


def addresses(gw: FakeGateway) -> dict[str, dict[str, Any]]:
    return {name: t["ip"] for name, t in gw.infra.by_hostname().items()}


# --------------------------------------------------------------------------------------------
# targets sync


def test_sync_creates_every_host_in_one_batch_and_a_second_run_sends_no_write(gw: FakeGateway, tmp_path: Path) -> None:
    inv = inventory(tmp_path, HOSTS)

    first = sync(gw, inv)

    assert first.returncode == 0, first.stderr
    assert paths(gw.writes()) == ["PUT infrastructure/targets/batch"]
    assert addresses(gw) == {
        "web1": {"ipv4": {"ip_addr": "192.0.2.11", "virtual_network_id": DEFAULT_VNET}},
        "web2": {"ipv6": {"ip_addr": "2001:db8::12", "virtual_network_id": DEFAULT_VNET}},
        "db1": {"ipv4": {"ip_addr": "192.0.2.13", "virtual_network_id": "vnet-lab-0001"}},
        "local1": {"ipv4": {"ip_addr": "127.0.0.1", "virtual_network_id": DEFAULT_VNET}},
    }
    assert sorted(state_of(inv).values()) == ["db1", "local1", "web1", "web2"]
    assert "4 create" in first.stdout

    gw.requests.clear()
    second = sync(gw, inv, "--json")

    assert second.returncode == 0, second.stderr
    assert gw.writes() == []
    assert {row["action"] for row in json.loads(second.stdout)["targets"]} == {"unchanged"}


def test_dry_run_prints_the_table_and_sends_no_write(gw: FakeGateway, tmp_path: Path) -> None:
    old = gw.infra.add_target("web1", "192.0.2.99")
    inv = inventory(tmp_path, {"web1": HOSTS["web1"], "db1": HOSTS["db1"]})

    proc = sync(gw, inv, "--dry-run")

    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[1]: line.split()[0] for line in proc.stdout.splitlines()[1:] if line.split()[:1] != ["dry"]}
    assert rows == {"web1": "update", "db1": "create"}
    assert "was web1 192.0.2.99" in proc.stdout and old in proc.stdout and "lab" in proc.stdout
    assert "nothing was sent" in proc.stdout
    assert gw.writes() == []
    assert addresses(gw) == {"web1": {"ipv4": {"ip_addr": "192.0.2.99", "virtual_network_id": DEFAULT_VNET}}}
    assert not (tmp_path / ".sshd-setup").exists()


def test_update_and_prune_delete_only_targets_sshd_setup_created(gw: FakeGateway, tmp_path: Path) -> None:
    manual = gw.infra.add_target("manual1", "192.0.2.50")  # made by hand, not in the inventory
    inv = inventory(tmp_path, {"web1": HOSTS["web1"], "web2": HOSTS["web2"]})
    assert sync(gw, inv).returncode == 0
    ids = {name: tid for tid, name in state_of(inv).items()}
    inventory(tmp_path, {"web1": {"ansible_host": "192.0.2.21"}})  # web2 leaves, web1 moves
    gw.requests.clear()

    proc = sync(gw, inv, "--prune", "--json")

    assert proc.returncode == 0, proc.stderr
    expected = [f"PUT infrastructure/targets/{ids['web1']}", "POST infrastructure/targets/batch_delete"]
    assert paths(gw.writes()) == expected
    assert json.loads(gw.writes()[1].body) == {"target_ids": [ids["web2"]]}
    assert addresses(gw) == {
        "web1": {"ipv4": {"ip_addr": "192.0.2.21", "virtual_network_id": DEFAULT_VNET}},
        "manual1": {"ipv4": {"ip_addr": "192.0.2.50", "virtual_network_id": DEFAULT_VNET}},
    }
    assert gw.infra.by_hostname()["manual1"]["id"] == manual
    assert state_of(inv) == {ids["web1"]: "web1"}
    actions = {row["hostname"]: row["action"] for row in json.loads(proc.stdout)["targets"]}
    assert actions == {"web1": "update", "web2": "delete"}


def test_without_prune_nothing_is_deleted(gw: FakeGateway, tmp_path: Path) -> None:
    inv = inventory(tmp_path, {"web1": HOSTS["web1"], "web2": HOSTS["web2"]})
    assert sync(gw, inv).returncode == 0
    inventory(tmp_path, {"web1": HOSTS["web1"]})
    gw.requests.clear()
    proc = sync(gw, inv)
    assert proc.returncode == 0, proc.stderr
    assert gw.writes() == [] and set(gw.infra.by_hostname()) == {"web1", "web2"}


def test_listing_follows_pages_and_finds_targets_on_the_last_page(gw: FakeGateway, tmp_path: Path) -> None:
    gw.infra.max_per_page = 2  # the server caps per_page: 8 targets -> 4 pages
    for n in range(7):
        gw.infra.add_target(f"aaa{n}", f"192.0.2.{100 + n}")
    gw.infra.add_target("web1", "192.0.2.11")  # sorts last: only on page 4
    inv = inventory(tmp_path, {"web1": HOSTS["web1"]})

    proc = sync(gw, inv, "--json")

    assert proc.returncode == 0, proc.stderr
    pages = [parse_qs(urlsplit(s.path).query)["page"][0] for s in gw.requests if "/infrastructure/targets" in s.path]
    assert pages == ["1", "2", "3", "4"]
    assert [row["action"] for row in json.loads(proc.stdout)["targets"]] == ["unchanged"]
    assert gw.writes() == []


def test_429_is_waited_out_and_retried(gw: FakeGateway, tmp_path: Path) -> None:
    slow = Reply(429, error_envelope(971, "Please wait and consider throttling"), {"Retry-After": "0"})
    gw.script("GET", slow, path="infrastructure/targets")
    gw.script("PUT", slow, path="infrastructure/targets/batch")
    inv = inventory(tmp_path, {"web1": HOSTS["web1"]})

    proc = sync(gw, inv)

    assert proc.returncode == 0, proc.stderr
    assert set(gw.infra.by_hostname()) == {"web1"}
    assert paths(gw.writes()) == ["PUT infrastructure/targets/batch"] * 2


def test_permission_error_is_one_line_exit_2_and_nothing_recorded(gw: FakeGateway, tmp_path: Path) -> None:
    gw.script("PUT", Reply(403, error_envelope(10000, "Authentication error")), path="infrastructure/targets/batch")
    inv = inventory(tmp_path, {"web1": HOSTS["web1"]})

    proc = sync(gw, inv)

    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "403" in line and "Access for Infrastructure targets" in line and "10000: Authentication error" in line
    assert gw.infra.targets == {}
    assert not (tmp_path / ".sshd-setup").exists()


def test_ip_held_by_another_target_is_a_conflict_before_any_write(gw: FakeGateway, tmp_path: Path) -> None:
    other = gw.infra.add_target("legacy-web", "192.0.2.11")
    inv = inventory(tmp_path, {"web1": HOSTS["web1"], "db1": HOSTS["db1"]})

    proc = sync(gw, inv)

    assert proc.returncode == 2
    assert "conflict" in proc.stdout and "create" in proc.stdout  # the table is printed
    line = proc.stderr.strip().splitlines()[-1]
    assert "host web1" in line and other in line and "legacy-web" in line and "nothing was changed" in line
    assert gw.writes() == []


def test_conflict_answered_by_the_api_is_exit_2(gw: FakeGateway, tmp_path: Path) -> None:
    # Someone takes the address between our listing and our write: the API answers 409.
    conflict = Reply(409, error_envelope(18016, "IP 192.0.2.11 already belongs to target t-9999"))
    gw.script("PUT", conflict, path="infrastructure/targets/batch")
    inv = inventory(tmp_path, {"web1": HOSTS["web1"]})

    proc = sync(gw, inv)

    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "409" in line and "already belongs to target t-9999" in line


def test_same_address_twice_in_the_inventory_is_a_conflict(gw: FakeGateway, tmp_path: Path) -> None:
    inv = inventory(tmp_path, {"web1": HOSTS["web1"], "web1b": HOSTS["web1"]})
    proc = sync(gw, inv)
    assert proc.returncode == 2
    assert "also the address of inventory host web1" in proc.stderr
    assert gw.writes() == []


def test_limit_syncs_only_the_selected_hosts(gw: FakeGateway, tmp_path: Path) -> None:
    inv = inventory(tmp_path, {"web1": HOSTS["web1"], "db1": HOSTS["db1"]})
    proc = sync(gw, inv, "--limit", "db1", "--prune")
    assert proc.returncode == 0, proc.stderr
    assert set(gw.infra.by_hostname()) == {"db1"}


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        ({"web_1": {"ansible_host": "192.0.2.11"}}, "host web_1: a target's hostname"),
        ({"web1": {"ansible_host": "192.0.2.1", "sshd_setup": {"virtual_network": "prod"}}}, "virtual network 'prod'"),
        ({"web1": {"ansible_host": "192.0.2.1", "sshd_setup": {"virtual_network": 7}}}, "must be a string"),
    ],
    ids=["hostname", "vnet", "vnet-type"],
)
def test_bad_inventory_is_exit_2_before_any_write(
    gw: FakeGateway, tmp_path: Path, hosts: dict[str, Any], expected: str
) -> None:
    proc = sync(gw, inventory(tmp_path, hosts))
    assert proc.returncode == 2
    assert expected in one_error_line(proc)
    assert gw.writes() == []


def test_unresolvable_ansible_host_is_one_clear_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process, with the resolver replaced: a test sends no DNS query off this machine.
    import socket

    from sshd_setup.commands.targets_sync import host_address
    from sshd_setup.errors import InputError
    from tests.helpers import desired_from

    def refuse(*_: object, **__: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    host = HostEntry(
        "web1", (), "web1.example", None, None, None, False, "ssh", (), desired_from({"ca_keys": [CA_LINE]})
    )
    with pytest.raises(InputError) as info:
        host_address(host, "inv.yml: host web1")
    assert (
        str(info.value)
        == "inv.yml: host web1: cannot resolve 'web1.example' on this machine (Name or service not known)"
    )


def test_missing_token_is_refused_before_any_request(gw: FakeGateway, tmp_path: Path) -> None:
    proc = run(
        "gateway", "targets", "sync", "-i", str(inventory(tmp_path, HOSTS)), "--account-id", ACCOUNT,
        "--api-base", gw.base, token=None,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "CLOUDFLARE_API_TOKEN" in one_error_line(proc)
    assert gw.requests == []


# --------------------------------------------------------------------------------------------
# logs key upload / show


def keygen(tmp_path: Path, name: str) -> Path:
    proc = run("logs", "keygen", "-o", str(tmp_path / name))
    assert proc.returncode == 0, proc.stderr
    return tmp_path / f"{name}.pub"


def key_cmd(gw: FakeGateway, verb: str, *extra: str) -> Any:
    return run("logs", "key", verb, "--account-id", ACCOUNT, "--api-base", gw.base, "--backoff-base", "0", *extra)


def test_key_upload_sets_the_key_and_a_second_upload_sends_nothing(gw: FakeGateway, tmp_path: Path) -> None:
    pub = keygen(tmp_path, "sshkey")

    first = key_cmd(gw, "upload", "-k", str(pub))

    assert first.returncode == 0, first.stderr
    assert gw.infra.audit_ssh is not None and gw.infra.audit_ssh["public_key"] == pub.read_text()
    assert paths(gw.writes()) == ["PUT gateway/audit_ssh_settings"]
    gw.requests.clear()
    second = key_cmd(gw, "upload", "-k", str(pub))
    assert second.returncode == 0 and "nothing sent" in second.stdout
    assert gw.writes() == []


def test_key_show_prints_the_key_and_whether_it_matches(gw: FakeGateway, tmp_path: Path) -> None:
    pub, other = keygen(tmp_path, "sshkey"), keygen(tmp_path, "other")
    empty = key_cmd(gw, "show")
    assert empty.returncode == 0 and "no command-logging public key" in empty.stdout
    assert key_cmd(gw, "upload", "-k", str(pub)).returncode == 0

    same = key_cmd(gw, "show", "-k", str(pub))
    differs = key_cmd(gw, "show", "-k", str(other))

    assert same.returncode == 0 and same.stdout.strip() == pub.read_text() and f"matches {pub}" in same.stderr
    assert differs.returncode == 1 and f"does NOT match {other}" in differs.stderr
    assert gw.writes()[-1:] == gw.writes()[:1]  # show never writes: only the one upload


def test_key_upload_refuses_the_private_key(gw: FakeGateway, tmp_path: Path) -> None:
    keygen(tmp_path, "sshkey")
    proc = key_cmd(gw, "upload", "-k", str(tmp_path / "sshkey"))
    assert proc.returncode == 2
    assert "looks like the private key" in one_error_line(proc)
    assert gw.requests == []


def test_key_upload_429_then_403(gw: FakeGateway, tmp_path: Path) -> None:
    pub = keygen(tmp_path, "sshkey")
    gw.script("GET", Reply(429, error_envelope(971, "slow down"), {"Retry-After": "0"}), path="audit_ssh_settings")
    gw.script("PUT", Reply(403, error_envelope(10000, "Authentication error")), path="audit_ssh_settings")
    proc = key_cmd(gw, "upload", "-k", str(pub))
    assert proc.returncode == 2
    assert "403" in one_error_line(proc) and "audit SSH settings" in proc.stderr
    assert gw.infra.audit_ssh is None


def test_pages_without_total_pages_follow_total_count(gw: FakeGateway, tmp_path: Path) -> None:
    def page(number: int, names: list[str]) -> Reply:
        rows = [
            {
                "id": f"t-{n}",
                "hostname": n,
                "ip": {"ipv4": {"ip_addr": f"192.0.2.{60 + i}", "virtual_network_id": DEFAULT_VNET}},
            }
            for i, n in enumerate(names, start=2 * number)
        ]
        info = {"page": number, "per_page": 2, "count": len(rows), "total_count": 5}
        return Reply(200, {"success": True, "errors": [], "messages": [], "result": rows, "result_info": info})

    gw.script("GET", page(1, ["a1", "a2"]), page(2, ["a3", "a4"]), page(3, ["web1"]), path="infrastructure/targets")
    inv = inventory(tmp_path, {"web1": {"ansible_host": "192.0.2.66"}})

    proc = sync(gw, inv, "--dry-run", "--json")

    assert proc.returncode == 0, proc.stderr
    pages = [parse_qs(urlsplit(s.path).query)["page"][0] for s in gw.requests if "/infrastructure/targets" in s.path]
    assert pages == ["1", "2", "3"]
    assert json.loads(proc.stdout)["targets"][0] == {
        "action": "unchanged", "hostname": "web1", "target_id": "t-web1", "ip": "192.0.2.66",
        "virtual_network": "(default)", "detail": "",
    }  # fmt: skip


def test_rate_limit_that_persists_is_exit_1_and_nothing_written(gw: FakeGateway, tmp_path: Path) -> None:
    slow = Reply(429, error_envelope(971, "slow down"), {"Retry-After": "0"})
    gw.script("PUT", *[slow] * 4, path="infrastructure/targets/batch")
    inv = inventory(tmp_path, {"web1": HOSTS["web1"]})
    proc = sync(gw, inv)
    assert proc.returncode == 1
    assert "gave up after 4 attempts" in one_error_line(proc)
    assert gw.infra.targets == {}


def test_a_damaged_state_file_is_exit_2_before_any_request(gw: FakeGateway, tmp_path: Path) -> None:
    inv = inventory(tmp_path, {"web1": HOSTS["web1"]})
    state = tmp_path / ".sshd-setup" / f"targets-{ACCOUNT}.json"
    state.parent.mkdir()
    state.write_text('{"version": 1, "account_id": "someone-else", "targets": {}}')
    proc = sync(gw, inv)
    assert proc.returncode == 2
    assert "not a targets state file of account" in one_error_line(proc)
    assert gw.requests == []


def test_verbose_sync_shows_requests_and_never_the_token_even_when_echoed(gw: FakeGateway, tmp_path: Path) -> None:
    gw.script("GET", Reply(400, error_envelope(10001, "bad header {AUTH}")), path="teamnet/virtual_networks")
    proc = sync(gw, inventory(tmp_path, {"web1": HOSTS["web1"]}), "--verbose")  # run() asserts no token
    assert proc.returncode == 2
    assert "GET http://127.0.0.1" in proc.stderr and "teamnet/virtual_networks" in proc.stderr
    assert "[redacted]" in proc.stderr.splitlines()[-1]
