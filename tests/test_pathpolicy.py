"""The managed-path policy (pure) and the bounded reads of files the user names."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sshd_setup.core.pathpolicy import (
    check_managed_dir,
    existing_ca_file_problem,
    existing_principals_file_problem,
    managed_file_problem,
    sshd_config_problem,
)
from sshd_setup.errors import InputError
from sshd_setup.inputfile import NotReadable, read_bounded, read_input_text
from sshd_setup.inventory import load_inventory
from tests.helpers import CA_KEY


@pytest.mark.parametrize(
    "path",
    ["/etc/ssh/ca.pub", "/etc/ssh/principals/vmuser", "/etc/ssh/vmusers-list.txt", "/etc/ssh/gateway/ca.pub"],
)
def test_files_under_etc_ssh_may_be_managed(path: str) -> None:
    assert managed_file_problem(path, "ca_path") is None


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/etc/sudoers", "system file"),
        ("/etc/passwd", "system file"),
        ("/etc/shadow", "system file"),
        ("/etc/sudoers.d/gw", "/etc/sudoers.d"),
        ("/etc/ssh/ssh_host_ed25519_key", "sshd's or ssh's own"),
        ("/etc/ssh/ssh_host_rsa_key.pub", "sshd's or ssh's own"),
        ("/etc/ssh/sshd_config", "sshd's or ssh's own"),
        ("/etc/ssh/ssh_config", "sshd's or ssh's own"),
        ("/etc/ssh/sshd_config.d/ca.conf", "sshd's or ssh's own"),
        ("/etc/ssh/moduli", "sshd's or ssh's own"),
        ("/etc/ssh/ssh_known_hosts", "sshd's or ssh's own"),
        ("/proc/self/mem", "/proc"),
        ("/sys/kernel/x", "/sys"),
        ("/dev/sda", "/dev"),
        ("/run/ca.pub", "/run"),
        ("/srv/gw/ca.pub", "outside /etc/ssh"),
        ("/etc/ca.pub", "outside /etc/ssh"),
        ("/etc/ssh/.ca.pub.sshd-setup-new", "staging"),
        ("/etc/ssh/../shadow", "normalised"),
    ],
)
def test_files_outside_the_policy_are_refused(path: str, words: str) -> None:
    problem = managed_file_problem(path, "ca_path")
    assert problem is not None and words in problem, problem


def test_a_named_managed_dir_allows_its_files_but_never_sshds_own() -> None:
    assert managed_file_problem("/srv/gw/ca.pub", "ca_path", ("/srv/gw",)) is None
    assert managed_file_problem("/srv/gw/sub/alice", "principals file", ("/srv/gw",)) is None
    assert "own" in (managed_file_problem("/srv/gw/ssh_host_ed25519_key", "ca_path", ("/srv/gw",)) or "")
    assert "system file" in (managed_file_problem("/etc/passwd", "ca_path", ("/srv/gw",)) or "")


@pytest.mark.parametrize(
    ("directory", "words"),
    [
        ("/etc", "top-level"),
        ("/", "directory"),
        ("/srv", "top-level"),
        ("/etc/sudoers.d", "/etc/sudoers.d"),
        ("/etc/pam.d", "/etc/pam.d"),
        ("/etc/cron.d", "cron"),
        ("/usr/lib/x", "/usr"),
        ("/proc/1", "/proc"),
        ("/etc/ssh/sshd_config.d", "drop-in"),
        ("etc/gw", "absolute"),
    ],
)
def test_managed_dirs_that_would_open_system_areas_are_refused(directory: str, words: str) -> None:
    problem = check_managed_dir(directory)
    assert problem is not None and words in problem, problem


@pytest.mark.parametrize("directory", ["/srv/gw", "/etc/gateway-ssh", "/usr/local/etc/ssh", "/etc/ssh/ca"])
def test_managed_dirs_of_their_own_are_accepted(directory: str) -> None:
    assert check_managed_dir(directory) is None


@pytest.mark.parametrize(
    "path",
    [
        "/etc/ssh/sshd_config",
        "/usr/etc/ssh/sshd_config",
        "/etc/ssh/sshd_config-internal",
        "/etc/ssh/sshd_config_second",
        "/etc/openssh/sshd_config",
    ],
)
def test_sshd_config_paths(path: str) -> None:
    assert sshd_config_problem(path) is None


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/etc/shadow", "not named sshd_config"),
        ("/etc/ssh/ca.pub", "not named sshd_config"),
        ("/etc/ssh/sshd_config.d", "not named sshd_config"),
        ("/etc/ssh/sshd_config.d/50-x.conf", "not named sshd_config"),
        ("/tmp/sshd_config", "not in /etc/ssh"),
        ("/proc/1/root/etc/ssh/sshd_config", "not in /etc/ssh"),
    ],
)
def test_sshd_config_paths_refused(path: str, words: str) -> None:
    problem = sshd_config_problem(path)
    assert problem is not None and words in problem, problem
    assert sshd_config_problem("/srv/gw/sshd_config", ("/srv/gw",)) is None


def test_existing_files_are_replaced_only_when_ours_or_plain_lists() -> None:
    assert existing_ca_file_problem("# Managed by sshd-setup: certificate authorities ...\nanything\n") is None
    assert existing_ca_file_problem(f"# old CA\n{CA_KEY}\n\n") is None
    assert existing_ca_file_problem("") is None
    shadow = "root:$y$j9T$secret:19000:0:99999:7:::\n"
    problem = existing_ca_file_problem(shadow)
    assert problem == "line 1 is not an SSH public key"
    assert existing_principals_file_problem("# Managed by sshd-setup: certificate principals that ...\n") is None
    assert existing_principals_file_problem("jdoe\nbwayne\n# c\n") is None
    assert existing_principals_file_problem(shadow) == "line 1 is not a principal name"
    assert existing_principals_file_problem(f"jdoe\n{CA_KEY}\n") == "line 2 is not a principal name"


# ---------------------------------------------------------------- inventory validation


def _inventory(tmp_path: Path, settings: str) -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text(
        "all:\n  vars:\n    sshd_setup:\n"
        f"      ca_keys: ['{CA_KEY}']\n{settings}"
        "  hosts:\n    web1: {ansible_host: 192.0.2.10}\n"
    )
    return path


@pytest.mark.parametrize(
    ("settings", "key", "words"),
    [
        ("      ca_path: /etc/sudoers\n", "all.vars.sshd_setup.ca_path", "system file"),
        ("      ca_path: /proc/self/environ\n", "all.vars.sshd_setup.ca_path", "/proc"),
        ("      ca_path: /etc/ssh/sshd_config\n", "all.vars.sshd_setup.ca_path", "own files"),
        (
            "      sshd_config: /etc/ssh/sshd_config-x\n      ca_path: /etc/ssh/sshd_config-x\n",
            "all.vars.sshd_setup.ca_path",
            "sshd_config",
        ),
        ("      sshd_config: /etc/shadow\n", "all.vars.sshd_setup.sshd_config", "not named sshd_config"),
        (
            "      principals: [{user: a, principals: [x], file: /etc/ssh/ssh_host_ed25519_key}]\n",
            "all.vars.sshd_setup.principals[0].file",
            "own files",
        ),
        (
            "      principals: [{user: a, principals: [x], file: /etc/passwd}]\n",
            "all.vars.sshd_setup.principals[0].file",
            "system file",
        ),
        ("      managed_dirs: [/etc]\n", "all.vars.sshd_setup.managed_dirs[0]", "top-level"),
        ("      managed_dirs: /srv/gw\n", "all.vars.sshd_setup.managed_dirs", "a list"),
    ],
)
def test_hostile_paths_in_the_inventory_are_one_line_naming_file_and_key(
    tmp_path: Path, settings: str, key: str, words: str
) -> None:
    path = _inventory(tmp_path, settings)
    with pytest.raises(InputError) as caught:
        load_inventory(path)
    assert str(caught.value).startswith(f"{path}: {key}"), caught.value
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_managed_dirs_from_one_group_allow_a_path_set_in_a_host(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(
        "all:\n  vars:\n    sshd_setup:\n"
        f"      ca_keys: ['{CA_KEY}']\n      managed_dirs: [/srv/gw]\n"
        "  hosts:\n    web1: {ansible_host: 192.0.2.10, sshd_setup: {ca_path: /srv/gw/ca.pub}}\n"
        "    web2: {ansible_host: 192.0.2.11, sshd_setup: {ca_path: /srv/other/ca.pub}}\n"
    )
    with pytest.raises(InputError) as caught:
        load_inventory(path)
    assert "all.hosts.web2.sshd_setup.ca_path" in str(caught.value) and "outside" in str(caught.value)
    path.write_text(path.read_text().replace("/srv/other/", "/srv/gw/"))
    assert load_inventory(path).hosts["web1"].desired.ca_path == "/srv/gw/ca.pub"


# ---------------------------------------------------------------- bounded reads


def test_ca_keys_file_of_dev_zero_is_one_line(tmp_path: Path) -> None:
    path = _inventory(tmp_path, "      ca_keys_file: /dev/zero\n")
    with pytest.raises(InputError) as caught:
        load_inventory(path)
    assert "ca_keys_file" in str(caught.value) and "/dev/zero is a character device" in str(caught.value)


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "ca.fifo"
    os.mkfifo(fifo)
    path = _inventory(tmp_path, f"      ca_keys_file: {fifo}\n")
    outcome: list[BaseException] = []
    reader = threading.Thread(target=lambda: _capture(outcome, lambda: load_inventory(path)), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a named pipe hung"
    assert isinstance(outcome[0], InputError) and "is a named pipe" in str(outcome[0])


def _capture(outcome: list[BaseException], work: object) -> None:
    try:
        work()  # type: ignore[operator]
    except BaseException as exc:
        outcome.append(exc)


def test_directories_large_files_and_vars_files_are_bounded(tmp_path: Path) -> None:
    path = _inventory(tmp_path, f"      ca_keys_file: {tmp_path}\n")
    with pytest.raises(InputError, match="is a directory"):
        load_inventory(path)
    big = tmp_path / "big.pub"
    big.write_bytes(b"#" * (2 * 1024 * 1024))
    path = _inventory(tmp_path, f"      ca_keys_file: {big}\n")
    with pytest.raises(InputError, match="larger than 1 MiB"):
        load_inventory(path)
    path = _inventory(tmp_path, "")
    (tmp_path / "group_vars").mkdir()
    os.mkfifo(tmp_path / "group_vars" / "all.yml")
    with pytest.raises(InputError, match=r"all\.yml: is a named pipe"):
        load_inventory(path)


def test_private_key_file_must_be_a_regular_file(tmp_path: Path) -> None:
    path = _inventory(tmp_path, "")
    path.write_text(path.read_text().replace("192.0.2.10}", "192.0.2.10, ansible_ssh_private_key_file: /dev/zero}"))
    with pytest.raises(InputError, match="ansible_ssh_private_key_file: /dev/zero is a character device"):
        load_inventory(path)


def test_read_bounded_limits_and_kinds(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"abc")
    assert read_bounded(small, 3) == b"abc"
    with pytest.raises(NotReadable, match="larger than 2 bytes"):
        read_bounded(small, 2)
    with pytest.raises(NotReadable, match="larger than"):
        read_bounded("/proc/self/maps", 8)  # says size 0, holds more
    with pytest.raises(InputError, match="is not UTF-8"):
        (tmp_path / "bin").write_bytes(b"\xff\xfe")
        read_input_text(tmp_path / "bin", "x")


def test_token_file_and_ca_fetch_output_are_bounded_reads(tmp_path: Path) -> None:
    from sshd_setup.gateway.api import load_token
    from sshd_setup.gateway.cli import _read_keys_file

    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="token file is a named pipe"):
        load_token(fifo, {})
    with pytest.raises(InputError, match="token file is a character device"):
        load_token(Path("/dev/zero"), {})
    with pytest.raises(InputError, match="the existing file is a named pipe"):
        _read_keys_file(fifo)  # ca fetch --output FIFO
