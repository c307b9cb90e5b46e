"""The planned tree, judged by the real sshd: `sshd -t` passes and `sshd -T -C` shows the intended values.

Each case: a real configuration tree x a mix of mapping modes. The plan is written into a copy of the
tree, which is bind-mounted over /etc/ssh in a private mount namespace for sshd to read.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sshd_setup.core.openssh import apc_last_wins
from sshd_setup.core.plan import ALL_PRINCIPALS_COMMAND
from sshd_setup.core.tree import load_tree
from sshd_setup.localfs import LocalRoot
from tests.helpers import CONFIGS, DEBIAN_PACKAGED_DEFAULT, apply_plan_to_dir, desired_from, plan_dir
from tests.precedence_cases import CASES, Case, assert_engine_agrees, engine_value, expected, logins, parse_version
from tests.sshd_oracle import SSHD, make_host_keys, require_oracle, sshd_effective, sshd_test

pytestmark = pytest.mark.oracle

SINGLE = {"user": "johndoe", "principal": "jdoe@example.com"}
LIST = {"user": "vmuser", "principals": ["jdoe", "bwayne", "robin"], "file": "/etc/ssh/vmusers-list.txt"}
LIST_DEFAULT_FILE = {"user": "backup", "principals": ["bwayne"]}
ANY = {"user": "ops", "any_principal": True}

MODES: dict[str, dict[str, Any]] = {
    "single": {"principals": [SINGLE]},
    "list": {"principals": [LIST, LIST_DEFAULT_FILE]},
    "all-users": {"principals": [ANY]},
    "allow-all": {"allow_all": True},
    "mixed": {"principals": [SINGLE, LIST, ANY]},
    "everything": {"principals": [SINGLE, LIST, ANY, LIST_DEFAULT_FILE], "allow_all": True},
}
CONFIG_TREES = ["debian-default", "upstream", "include-top", "foreign-match", "existing-ca", "crlf"]
PRINCIPAL_KEYWORDS = ("authorizedprincipalsfile", "authorizedprincipalscommand", "authorizedprincipalscommanduser")


@pytest.fixture(scope="session")
def host_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_oracle()
    keys = tmp_path_factory.mktemp("hostkeys")
    make_host_keys(keys)
    return keys


def build_tree(name: str, root: Path, host_keys: Path) -> None:
    shutil.copytree(host_keys, root, dirs_exist_ok=True)
    ssh = root / "etc" / "ssh"
    if name in ("debian-default", "crlf"):
        text = DEBIAN_PACKAGED_DEFAULT.read_text()
        (ssh / "sshd_config.d").mkdir(exist_ok=True)
        if name == "crlf":
            text = text.replace("\n", "\r\n")
        (ssh / "sshd_config").write_bytes(text.encode())
    else:
        shutil.copytree(CONFIGS / name, root, dirs_exist_ok=True)


@pytest.mark.parametrize("config", CONFIG_TREES)
@pytest.mark.parametrize("mode", list(MODES))
def test_planned_tree_is_accepted_by_sshd(config: str, mode: str, tmp_path: Path, host_keys: Path) -> None:
    if config == "debian-default" and not DEBIAN_PACKAGED_DEFAULT.exists():
        pytest.fail(f"{DEBIAN_PACKAGED_DEFAULT} missing: install openssh-server")
    build_tree(config, tmp_path, host_keys)
    before = {user: sshd_effective(tmp_path, user) for user in ("alice", "johndoe")}
    assert sshd_test(tmp_path).ok, "the original tree must be valid to begin with"

    desired = desired_from(MODES[mode])
    plan = plan_dir(desired, tmp_path)
    assert not plan.errors
    apply_plan_to_dir(plan, tmp_path)

    result = sshd_test(tmp_path)
    assert result.ok, result.stderr
    for mapping in desired.mappings:
        effective = sshd_effective(tmp_path, mapping.user)
        assert effective.ok, effective.stderr
        assert effective.value("pubkeyauthentication") == "yes"
        assert effective.value("trustedusercakeys") == "/etc/ssh/ca.pub"
        if mapping.mode == "single":
            assert effective.value("authorizedprincipalscommand") == f"/bin/echo '{mapping.principals[0]}'"
            assert effective.value("authorizedprincipalscommanduser") == "nobody"
        elif mapping.mode == "list":
            assert effective.value("authorizedprincipalsfile") == mapping.file
            expected_command = "none" if desired.allow_all else before["alice"].value("authorizedprincipalscommand")
            assert effective.value("authorizedprincipalscommand") == expected_command
        else:
            assert effective.value("authorizedprincipalscommand") == ALL_PRINCIPALS_COMMAND
            assert effective.value("authorizedprincipalscommanduser") == "nobody"

    unmapped = sshd_effective(tmp_path, "alice")
    assert unmapped.value("pubkeyauthentication") == "yes"
    assert unmapped.value("trustedusercakeys") == "/etc/ssh/ca.pub"
    if desired.allow_all:
        assert unmapped.value("authorizedprincipalscommand") == ALL_PRINCIPALS_COMMAND
        assert unmapped.value("authorizedprincipalscommanduser") == "nobody"
    else:
        for keyword in PRINCIPAL_KEYWORDS:
            assert unmapped.value(keyword) == before["alice"].value(keyword), keyword
    # Everything else about an unmapped user is as before.
    untouched = set(before["alice"].values()) - {"pubkeyauthentication", "trustedusercakeys", *PRINCIPAL_KEYWORDS}
    for keyword in untouched:
        assert unmapped.values()[keyword] == before["alice"].values()[keyword], keyword


@pytest.fixture(scope="session")
def sshd_version() -> tuple[int, int]:
    require_oracle()
    proc = subprocess.run([SSHD, "-V"], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    return parse_version(proc.stderr + proc.stdout)


@pytest.mark.parametrize("config", CONFIG_TREES)
def test_engine_agrees_with_sshd_on_effective_values(
    config: str, tmp_path: Path, host_keys: Path, sshd_version: tuple[int, int]
) -> None:
    """core/precedence.py, the engine the findings use, gives the values sshd -T prints for every mapped user
    (and one unmapped), before and after planning; with the user alone (other criteria unknown) it either
    names sshd's line or lists it among the lines that may decide."""
    build_tree(config, tmp_path, host_keys)
    legacy = apc_last_wins(sshd_version)
    desired = desired_from(MODES["everything"])
    compared = 0
    for stage in ("before", "after"):
        if stage == "after":
            apply_plan_to_dir(plan_dir(desired, tmp_path), tmp_path)
        tree = load_tree(LocalRoot(tmp_path))
        for user, addr in logins(desired):
            sshd = sshd_effective(tmp_path, user, addr)
            assert sshd.ok, sshd.stderr
            compared += assert_engine_agrees(tree, user, addr, sshd, legacy=legacy, stage=stage)
    assert compared > 0


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_principals_command_rule_agrees_with_sshd(
    case: Case, tmp_path: Path, host_keys: Path, sshd_version: tuple[int, int]
) -> None:
    """bz3574: which AuthorizedPrincipalsCommand line wins, per version, is what this sshd prints."""
    shutil.copytree(host_keys, tmp_path, dirs_exist_ok=True)
    (tmp_path / "etc" / "ssh" / "sshd_config").write_text(case.config)
    sshd = sshd_effective(tmp_path, case.user)
    assert sshd.ok, sshd.stderr
    assert sshd.value("authorizedprincipalscommand") == expected(case, sshd_version)
    assert engine_value(case, sshd_version) == expected(case, sshd_version)
