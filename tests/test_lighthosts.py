"""The light test hosts of the scale benchmark (tests/testhosts/light.py) are real sshd servers.

sshd-setup converges them (reloading through Debian's /etc/init.d/ssh), a certificate really logs in
afterwards, and a second run changes nothing, so benchmarks/scale.py measures real work.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleetrun import sshd_setup
from tests.testhosts.certs import make_ca, make_user_key
from tests.testhosts.light import LightFleet, missing_prerequisites

pytestmark = pytest.mark.integration


@pytest.fixture
def light() -> Iterator[LightFleet]:
    if missing := missing_prerequisites():
        reason = "light hosts unavailable: " + "; ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: a missing prerequisite is a failure)", pytrace=False)
        pytest.skip(reason)
    with LightFleet.up(3) as fleet:
        yield fleet


def _login(fleet: LightFleet, address: str, user: str, key: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", "-F", "/dev/null", "-i", str(key), "-o", f"CertificateFile={cert}", "-o", "BatchMode=yes"]
    argv += ["-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={fleet.known_hosts_path}"]
    argv += ["-o", "StrictHostKeyChecking=yes", "-o", "ControlPath=none", f"{user}@{address}", "id -un"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=False)


def test_light_hosts_converge_and_accept_certificates(light: LightFleet, tmp_path: Path) -> None:
    import yaml

    ca = make_ca(tmp_path)
    inventory = yaml.safe_load(light.inventory_path.read_text())
    inventory["all"]["vars"]["sshd_setup"] = {
        "ca_keys": [ca.public_key],
        "principals": [{"user": "johndoe", "principal": "jdoe"}],
    }
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))

    first = sshd_setup("apply", "-i", path, "--yes", "--json")
    assert first.returncode == 0, first.stderr
    assert {h["status"] for h in first.json["hosts"]} == {"changed"}
    assert [h.sighup_count() for h in light.hosts] == [1, 1, 1]

    key = make_user_key(tmp_path, "jdoe")
    cert = ca.sign(key, ["jdoe"])
    wrong = ca.sign(key, ["bwayne"], name="bwayne")
    for host in light.hosts:
        ok = _login(light, host.address, "johndoe", key, cert)
        assert (ok.returncode, ok.stdout.strip()) == (0, "johndoe"), ok.stderr
        assert _login(light, host.address, "johndoe", key, wrong).returncode == 255

    again = sshd_setup("apply", "-i", path, "--yes", "--json")
    assert {h["status"] for h in again.json["hosts"]} == {"unchanged"}
    assert [h.sighup_count() for h in light.hosts] == [1, 1, 1]
    # Everything the runs wrote stayed inside the hosts: this machine's own sshd_config is untouched.
    assert "sshd-setup managed block" not in Path("/etc/ssh/sshd_config").read_text()
