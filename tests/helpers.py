"""Small helpers shared by the core's tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sshd_setup.core.desired import Desired, build_desired, check_settings_fragment
from sshd_setup.core.plan import Plan, plan_host
from sshd_setup.core.tree import SnapshotSource
from sshd_setup.localfs import LocalRoot
from sshd_setup.templating import environment

FIXTURES = Path(__file__).parent / "fixtures"
CONFIGS = FIXTURES / "configs"
DEBIAN_PACKAGED_DEFAULT = Path("/usr/share/openssh/sshd_config")

CA_KEY = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIplBf2ddGkcl+DUAUKoFwfTXFaCakkq7hXSml"
    "yW/Z/AHP7ruXcR5+iX2FkAkQFNjkccJmLzFsIRf+FRlKjeJrI= open-ssh-ca@cloudflareaccess.org"
)


def desired_from(settings: dict[str, Any]) -> Desired:
    settings = {"ca_keys": [CA_KEY], **settings}
    check_settings_fragment(settings, "test")

    def no_file(name: str) -> tuple[str, str]:
        raise AssertionError("no ca_keys_file in tests")

    return build_desired(settings, "test", no_file)


def plan_texts(desired: Desired, files: dict[str, str], dirs: set[str] | None = None) -> Plan:
    return plan_host(desired, SnapshotSource.of(files, dirs or {"/etc/ssh"}), environment())


def plan_dir(desired: Desired, root: Path) -> Plan:
    return plan_host(desired, LocalRoot(root), environment())


def apply_plan_to_dir(plan: Plan, root: Path) -> None:
    for directory in plan.directories:
        (root / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)
    for change in plan.files:
        target = root / change.path.lstrip("/")
        if change.remove:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(change.after.encode("utf-8", "surrogateescape"))
        target.chmod(change.mode if change.mode is not None else 0o644)


def copy_tree(source: Path, root: Path) -> None:
    shutil.copytree(source, root, dirs_exist_ok=True)
