"""The managed-path policy on the host (pure, over facts), the removal of unmapped principals files, and
the apply script creating users and directories only after validation (run for real by /bin/sh here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sshd_setup.assessment import assess, blocking_findings
from sshd_setup.core.facts import FileMeta, HostFacts
from sshd_setup.core.hostpaths import FILE_FOREIGN, PATH_REFUSED, check_host_paths
from sshd_setup.core.service import ServicePlan
from sshd_setup.core.tree import SnapshotEntry
from sshd_setup.gather import facts_script
from sshd_setup.inventory import load_inventory
from sshd_setup.remote import HostLock, apply_script
from tests.helpers import CA_KEY, desired_from, plan_texts

SHADOW = "root:$y$j9T$SECRETSECRET:19000:0:99999:7:::\n"
MAIN = "/etc/ssh/sshd_config"


def facts_of(files: dict[str, str | None], links: dict[str, str] | None = None) -> HostFacts:
    facts = HostFacts(files={p: SnapshotEntry(t) for p, t in files.items()}, dirs={"/etc/ssh"})
    facts.links = dict(links or {})
    for path in files:
        facts.meta[path] = FileMeta(path, True, "root", "root", 0o644)
    return facts


def test_symlinked_ca_file_pointing_outside_the_policy_is_refused_without_its_content() -> None:
    desired = desired_from({})
    facts = facts_of({MAIN: "Port 22\n", "/etc/ssh/ca.pub": SHADOW}, {"/etc/ssh/ca.pub": "/etc/shadow"})
    paths = check_host_paths(desired, facts)
    assert [f.code for f in paths.findings] == [PATH_REFUSED]
    message = paths.findings[0].message
    assert "/etc/ssh/ca.pub is a symlink to /etc/shadow" in message and "SECRET" not in message
    assert blocking_findings(list(paths.findings), frozenset({PATH_REFUSED})), "--allow must not lift a path refusal"


def test_symlinked_sshd_config_is_written_through_when_its_target_is_an_sshd_config() -> None:
    desired = desired_from({})
    facts = facts_of({MAIN: "Port 22\n"}, {MAIN: "/etc/ssh/sshd_config.real"})
    paths = check_host_paths(desired, facts)
    assert not paths.findings and paths.real(MAIN) == "/etc/ssh/sshd_config.real"
    facts = facts_of({MAIN: SHADOW}, {MAIN: "/etc/shadow"})
    refused = check_host_paths(desired, facts).findings
    assert [f.code for f in refused] == [PATH_REFUSED] and "not named sshd_config" in refused[0].message


@pytest.mark.parametrize(
    ("settings", "path", "text"),
    [
        ({}, "/etc/ssh/ca.pub", SHADOW),
        ({"principals": [{"user": "a", "principals": ["x"]}]}, "/etc/ssh/principals/a", f"{CA_KEY}\n"),
    ],
)
def test_a_foreign_existing_file_is_never_overwritten(settings: dict[str, object], path: str, text: str) -> None:
    desired = desired_from(settings)
    paths = check_host_paths(desired, facts_of({MAIN: "Port 22\n", path: text}))
    assert [f.code for f in paths.findings] == [FILE_FOREIGN]
    assert "never overwritten" in paths.findings[0].message and "SECRET" not in paths.findings[0].message
    mine = check_host_paths(desired, facts_of({MAIN: "Port 22\n", path: "jdoe\n" if "principals" in path else ""}))
    assert not mine.findings


def test_directories_devices_and_dangling_links_are_refused() -> None:
    desired = desired_from({})
    facts = facts_of({MAIN: "Port 22\n"})
    facts.dirs.add("/etc/ssh/ca.pub")
    assert "is a directory" in check_host_paths(desired, facts).findings[0].message
    facts = facts_of({MAIN: "Port 22\n", "/etc/ssh/ca.pub": None})
    assert "not a regular file" in check_host_paths(desired, facts).findings[0].message
    facts = facts_of({MAIN: "Port 22\n", "/etc/ssh/ca.pub": None}, {"/etc/ssh/ca.pub": "/etc/ssh/gone.pub"})
    assert "not a regular file" in check_host_paths(desired, facts).findings[0].message  # a dangling link
    lists = desired_from({"principals": [{"user": "a", "principals": ["x"]}]})
    facts = facts_of({MAIN: "Port 22\n"}, {"/etc/ssh/principals/a": "/etc/sudoers.d/a"})  # a linked directory
    refused = check_host_paths(lists, facts).findings
    assert len(refused) == 1 and "symlink to /etc/sudoers.d/a, which is under /etc/sudoers.d" in refused[0].message
    facts = facts_of({MAIN: "Port 22\n"}, {"/etc/ssh/principals/a": "/etc/ssh/gw/a"})
    assert check_host_paths(lists, facts).real("/etc/ssh/principals/a") == "/etc/ssh/gw/a"
    facts = facts_of({MAIN: "Port 22\n", "/etc/ssh/ca.pub": ""}, {"/etc/ssh/ca.pub": "/etc/ssh/gw/ca.pub"})
    assert check_host_paths(desired, facts).real("/etc/ssh/ca.pub") == "/etc/ssh/gw/ca.pub"


def test_facts_of_a_real_symlink_to_shadow_block_the_host_and_nothing_shows_its_content(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"  # outside the managed directory
    secret.write_text(SHADOW)
    managed = tmp_path / "gw"
    managed.mkdir()
    main = managed / "sshd_config"
    main.write_text("Port 22\n")
    (managed / "ca.pub").symlink_to(secret)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        f"all:\n  vars:\n    sshd_setup:\n      ca_keys: ['{CA_KEY}']\n      managed_dirs: [{managed}]\n"
        f"      sshd_config: {main}\n      ca_path: {managed}/ca.pub\n"
        "  hosts:\n    web1: {ansible_host: 192.0.2.10}\n"
    )
    entry = load_inventory(inventory).hosts["web1"]
    output = subprocess.run(
        ["sh", "-s"], input=facts_script(entry.desired), capture_output=True, text=True, timeout=60
    ).stdout
    assert f"@@LINK {managed}/ca.pub {secret}" in output
    assessment = assess(entry, output)
    assert [f.code for f in assessment.findings] == [PATH_REFUSED]
    assert not assessment.plan.files and not assessment.plan.changes
    assert "SECRET" not in repr(assessment.findings) + repr(assessment.facts.files)


# ---------------------------------------------------------------- a removed mapping


def test_a_removed_mapping_removes_the_principals_file_we_wrote_and_only_that() -> None:
    lists = {"principals": [{"user": "vm", "principals": ["jdoe"]}, {"user": "ops", "principals": ["x"]}]}
    first = plan_texts(desired_from(lists), {MAIN: "Port 22\n"})
    files = {c.path: c.after for c in first.files}
    files["/etc/ssh/principals/ops"] = "x\n"  # hand-written since: not ours any more
    now = plan_texts(desired_from({"principals": [{"user": "vm", "principals": ["jdoe"]}]}), files)
    assert [c.path for c in now.changes if c.remove] == []
    files["/etc/ssh/principals/ops"] = first.files[-1].after
    now = plan_texts(desired_from({"principals": [{"user": "vm", "principals": ["jdoe"]}]}), files)
    removed = [c for c in now.changes if c.remove]
    assert [c.path for c in removed] == ["/etc/ssh/principals/ops"] and "no longer" in removed[0].reason
    after = {c.path: c.after for c in now.files if not c.remove}
    again = plan_texts(desired_from({"principals": [{"user": "vm", "principals": ["jdoe"]}]}), after)
    assert again.is_noop


# ---------------------------------------------------------------- users and directories after validation

SERVICE = ServicePlan("systemd", "ssh", "true", "true", "true", "test")


def _run_apply(tmp_path: Path, main_text: str, directories: tuple[str, ...], files: list[tuple[str, str]]) -> str:
    key = tmp_path / "hostkey"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    main = tmp_path / "sshd_config"
    main.write_text(f"HostKey {key}\n")
    script = apply_script(
        run_id="20261201T000000Z-0a1b2c",
        keep=3,
        reload=False,
        service=SERVICE,
        main=str(main),
        directories=directories,
        files=[(str(main), main_text + f"HostKey {key}\n", None), *((p, t, (0o644, "root", "root")) for p, t in files)],
        lock=HostLock(f"{tmp_path}/lock", f"{tmp_path}/unused"),
    )
    script = script.replace("BK_ROOT=/var/backups/sshd-setup", f"BK_ROOT={tmp_path}/backups")
    proc = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, timeout=60)
    return proc.stdout


@pytest.mark.skipif(subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0", reason="root")
def test_directories_and_their_files_are_created_only_after_validation(tmp_path: Path) -> None:
    new_dir = tmp_path / "principals"
    refused = _run_apply(tmp_path, "ThisIsNotAKeyword yes\n", (str(new_dir),), [(f"{new_dir}/vm", "jdoe\n")])
    assert "@@FAIL validate" in refused and "@@DIR" not in refused
    assert not new_dir.exists() and not (tmp_path / "backups").exists()
    applied = _run_apply(tmp_path, "PermitRootLogin no\n", (str(new_dir),), [(f"{new_dir}/vm", "jdoe\n")])
    assert "@@END" in applied and "@@FAIL" not in applied, applied
    assert f"@@DIR created {new_dir}" in applied and (new_dir / "vm").read_text() == "jdoe\n"
    manifest = next((tmp_path / "backups" / "runs").iterdir()) / "manifest"
    assert f"absent - {new_dir}/vm" in manifest.read_text()  # the whole-state backup: it did not exist


def test_the_apply_script_defers_users_new_directories_and_their_files() -> None:
    script = apply_script(
        run_id="t",
        keep=1,
        reload=False,
        service=SERVICE,
        main=MAIN,
        directories=("/etc/ssh/principals",),
        files=[(MAIN, "x\n", None), ("/etc/ssh/principals/vm", "jdoe\n", (0o644, "root", "root"))],
        users=("vm",),
        unmapped=("/etc/ssh/principals/old",),
    )
    tail = script.split("after_validation() {\n", 1)[1]
    deferred, _, rest = tail.partition("}\n")
    assert deferred.splitlines()[0] == "ensure_user vm" and "make_dir /etc/ssh/principals" in deferred
    assert "stage /etc/ssh/principals/vm" in deferred and "stage /etc/ssh/principals/vm" not in rest
    assert "remove_later /etc/ssh/principals/old" in rest and rest.endswith("run_apply\n")


def test_render_on_a_tree_whose_ca_file_links_outside_shows_nothing_of_it(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SHADOW)
    root = tmp_path / "root"
    (root / "etc" / "ssh").mkdir(parents=True)
    (root / "etc" / "ssh" / "sshd_config").write_text("UsePAM yes\n")
    (root / "etc" / "ssh" / "ca.pub").symlink_to(secret)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        f"all:\n  vars:\n    sshd_setup:\n      ca_keys: ['{CA_KEY}']\n"
        "  hosts:\n    web1: {ansible_host: 192.0.2.10}\n"
    )
    argv = ["render", "-i", str(inventory), "--host", "web1", "--root", str(root), "--diff"]
    proc = subprocess.run(
        [sys.executable, "-m", "sshd_setup", *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert PATH_REFUSED in proc.stdout + proc.stderr and "SECRET" not in proc.stdout + proc.stderr
    secret.write_text(f"{CA_KEY}\n")  # a link to a plain key list: still outside the tree's /etc/ssh
    again = subprocess.run(
        [sys.executable, "-m", "sshd_setup", *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert again.returncode == 1 and PATH_REFUSED in again.stdout + again.stderr


def test_a_failure_after_users_were_created_says_what_was_created() -> None:
    from sshd_setup.pipeline import _report_failure
    from sshd_setup.remote.protocol import ApplyOutcome
    from sshd_setup.report import HostResult, Status
    from sshd_setup.transport import CommandResult

    result = HostResult("web1", Status.FAILED, "", users_created=["vm"])
    found = ApplyOutcome(
        failed_step="backup",
        output="cannot create /var/backups/sshd-setup/x",
        users_created=("vm",),
        dirs_created=("/etc/ssh/principals", "/etc/ssh/gw"),
        dirs_removed=("/etc/ssh/principals",),
    )
    _report_failure(result, found, CommandResult(3, "", ""))
    assert "nothing changed" not in result.reason
    assert result.reason.endswith("created (kept): user vm, directory /etc/ssh/gw"), result.reason
