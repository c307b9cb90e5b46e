"""The same tree gets the same findings online (the real facts script, parse_facts) and offline (lint)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sshd_setup.commands.lint import lint_findings
from sshd_setup.core.finding import Finding
from sshd_setup.core.findings import find_problems
from sshd_setup.gather import facts_script, parse_facts
from tests.helpers import desired_from

VERSION = "OpenSSH_9.2p1 Debian-2+deb12u3"


def _tree(root: Path, case: str) -> Path:
    """A configuration tree under root whose Includes name absolute paths under root."""
    main = root / "sshd_config"
    drop = root / "sshd_config.d"
    drop.mkdir()
    if case == "directory":
        (root / "d").mkdir()
        main.write_text(f"Include {root}/d\nPort 22\n")
    elif case == "no-match":
        main.write_text(f"Include {root}/none.d/*.conf\nInclude {root}/absent.conf\n")
    elif case == "unreadable":
        (drop / "10-gone.conf").symlink_to(root / "nowhere.conf")  # a dangling link: listed, cannot be read
        os.mkfifo(root / "fifo.conf")  # not a regular file
        main.write_text(f"Include {drop}/*.conf\nInclude {root}/fifo.conf\nPasswordAuthentication no\n")
    elif case == "loop":
        (root / "a.conf").write_text(f"Include {root}/b.conf\n")
        (root / "b.conf").write_text(f"Include {root}/a.conf\n")
        main.write_text(f"Include {root}/a.conf\n")
    elif case == "drop-ins":
        (drop / "10-a.conf").write_text("PasswordAuthentication no\nMatch User bob\n")
        (drop / "20-b.conf").write_text("Port 2222\nPermitRootLogin yes\n")
        (drop / "sub.conf").mkdir()
        main.write_text(f"Include {drop}/*.conf\nPort 22\nUsePAM yes\n")
    return main


def _key(findings: list[Finding]) -> list[tuple[str, str, str, int | None]]:
    return sorted((f.code, f.severity.value, f.path or "", f.line) for f in findings)


EXPECTED = {
    "directory": {"INCLUDE-IS-DIRECTORY"},
    "no-match": {"INCLUDE-NO-MATCH"},
    "unreadable": {"INCLUDE-UNREADABLE"},
    "loop": {"INCLUDE-LOOP"},
    "drop-ins": {"INCLUDE-IS-DIRECTORY", "PORT-NOT-22"},
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_the_same_tree_gets_the_same_findings_online_and_offline(tmp_path: Path, case: str) -> None:
    main = str(_tree(tmp_path, case))
    desired = desired_from(
        {"sshd_config": main, "managed_dirs": [str(tmp_path)], "principals": [{"user": "root", "principal": "root"}]}
    )
    script = facts_script(desired, VERSION)
    out = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=False, cwd=os.sep)
    facts, _ = parse_facts(out.stdout)
    online = find_problems(None, facts, None, main_path=main)
    _, offline = lint_findings(root=Path("/"), main=main, sshd_version=VERSION)
    assert _key(online) == _key(offline)
    assert {f.code for f in offline} == EXPECTED[case]


def test_both_gatherers_search_systemds_unit_path_from_one_table(tmp_path: Path) -> None:
    from sshd_setup.core.service import SYSTEMD_UNIT_DIRS
    from sshd_setup.offline import offline_facts

    (tmp_path / "etc/ssh").mkdir(parents=True)
    (tmp_path / "etc/ssh/sshd_config").write_text("Port 22\n")
    wants = tmp_path / "etc/systemd/system/sockets.target.wants"
    wants.mkdir(parents=True)
    (wants / "ssh.socket").symlink_to("/lib/systemd/system/ssh.socket")
    (tmp_path / "lib/systemd/system").mkdir(parents=True)
    (tmp_path / "lib/systemd/system/ssh.socket").write_text("[Socket]\nListenStream=22\n")
    for directory, port in (("run/systemd/system", "2222"), ("usr/lib/systemd/system", "3333")):
        (tmp_path / directory / "ssh.socket.d").mkdir(parents=True)
        (tmp_path / directory / "ssh.socket.d/extra.conf").write_text(f"[Socket]\nListenStream={port}\n")
    facts, _ = offline_facts(tmp_path, "/etc/ssh/sshd_config", None)
    assert facts.units["ssh.socket"].listen == ("22", "2222")  # the /usr/lib extra.conf is hidden by /run's
    assert list(facts.socket_dropins) == ["/run/systemd/system/ssh.socket.d/extra.conf"]
    desired = desired_from({"principals": [{"user": "root", "principal": "root"}]})
    assert f"UNIT_DIRS='{' '.join(SYSTEMD_UNIT_DIRS)}'" in facts_script(desired).splitlines()
