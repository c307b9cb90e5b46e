"""The exit codes of `gateway targets sync` and `logs key upload/show` (exitcodes.exit_code's policy), in process.

The real entry point (sshd_setup.cli.main) against the fake gateway on 127.0.0.1: 0 when all went well, 1 when
the key in force is not the file's or the API cannot be reached, 2 for bad input with nothing sent.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sshd_setup import cli, exitcodes
from tests.gatewayfake.server import FakeGateway
from tests.test_gateway_ca import ACCOUNT, CA_LINE, TOKEN

CLOSED = "http://127.0.0.1:1"  # nothing listens on port 1: connection refused at once


@pytest.fixture
def gw(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    server = FakeGateway(TOKEN, ACCOUNT, CA_LINE).start()
    yield server
    server.stop()


def code(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> int:
    monkeypatch.setattr(sys, "argv", ["sshd-setup", *argv])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    out, err = capsys.readouterr()
    assert TOKEN not in out + err and "Traceback" not in err
    assert isinstance(exited.value.code, int)
    return exited.value.code


def test_logs_key_codes(
    gw: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def key(*argv: str, base: str = gw.base) -> int:
        return code(monkeypatch, capsys, "logs", "key", *argv, "--api-base", base, "--backoff-base", "0")

    assert code(monkeypatch, capsys, "logs", "keygen", "-o", str(tmp_path / "mine")) == exitcodes.OK
    assert code(monkeypatch, capsys, "logs", "keygen", "-o", str(tmp_path / "other")) == exitcodes.OK
    mine, other = str(tmp_path / "mine.pub"), str(tmp_path / "other.pub")

    assert key("show", "--account-id", ACCOUNT) == exitcodes.OK  # none set, none asked about
    assert key("show", "--account-id", ACCOUNT, "-k", mine) == exitcodes.HOST_FAILURES  # none set
    assert key("upload", "--account-id", ACCOUNT, "-k", mine) == exitcodes.OK
    assert key("upload", "--account-id", ACCOUNT, "-k", mine) == exitcodes.OK  # already: nothing sent
    assert key("show", "--account-id", ACCOUNT, "-k", mine) == exitcodes.OK
    assert key("show", "--account-id", ACCOUNT, "-k", other) == exitcodes.HOST_FAILURES
    assert key("show", "--account-id", ACCOUNT, base=CLOSED) == exitcodes.HOST_FAILURES  # unreachable
    assert len(gw.writes()) == 1  # the one upload

    sent = len(gw.requests)
    assert key("show", "--account-id", "not/an/account") == exitcodes.BAD_INPUT
    assert key("upload", "--account-id", ACCOUNT, "-k", str(tmp_path / "mine")) == exitcodes.BAD_INPUT  # private
    assert key("show", "--account-id", ACCOUNT, base="ftp://127.0.0.1") == exitcodes.BAD_INPUT
    assert len(gw.requests) == sent  # bad input: nothing reached the gateway


def test_targets_sync_codes(
    gw: FakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory.yml"
    settings = {"ca_keys": [CA_LINE], "flow": "access-infrastructure"}
    data = {"all": {"vars": {"sshd_setup": settings}, "hosts": {"web1": {"ansible_host": "192.0.2.11"}}}}
    inventory.write_text(yaml.safe_dump(data))

    def sync(*argv: str, base: str = gw.base) -> int:
        return code(
            monkeypatch, capsys, "gateway", "targets", "sync", "-i", str(inventory), "--account-id", ACCOUNT,
            "--api-base", base, "--backoff-base", "0", *argv,
        )  # fmt: skip

    assert sync() == exitcodes.OK
    assert [t["ip"]["ipv4"]["ip_addr"] for t in gw.infra.by_hostname().values()] == ["192.0.2.11"]
    assert sync(base=CLOSED) == exitcodes.HOST_FAILURES
    sent = len(gw.requests)
    assert sync("--limit", "nosuchhost") == exitcodes.BAD_INPUT
    assert len(gw.requests) == sent
