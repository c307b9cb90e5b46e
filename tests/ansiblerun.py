"""Run the collection (collection/) with the real `ansible-playbook` against booted test hosts.

Everything Ansible writes stays in a private tmp dir: ANSIBLE_CONFIG, ANSIBLE_HOME, the collections path,
the ControlPersist sockets. Per-host results come from the `tree` callback (one JSON file per host).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def ansible_tool(name: str) -> Path:
    return BIN / name


@dataclass
class PlaybookRun:
    returncode: int
    stdout: str
    stderr: str
    tree: Path

    def host(self, name: str) -> dict[str, Any]:
        return json.loads((self.tree / name).read_text())  # type: ignore[no-any-return]

    def recap(self, name: str) -> dict[str, int]:
        """The host's PLAY RECAP counters: ok, changed, unreachable, failed, ..."""
        for line in self.stdout.splitlines():
            host, sep, counters = line.partition(" : ")
            if sep and host.strip() == name:
                return {key: int(value) for key, _, value in (item.partition("=") for item in counters.split())}
        raise AssertionError(f"no PLAY RECAP line for {name}:\n{self.stdout}")


class AnsibleHome:
    """A private Ansible setup in `root`: the collection built from collection/ and installed there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.collections = root / "collections"
        for sub in ("home", "collections", "cp", "build"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.config = root / "ansible.cfg"
        self.config.write_text(
            "[defaults]\nretry_files_enabled = False\ninterpreter_python = auto_silent\n"
            "[ssh_connection]\npipelining = True\n"
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(self.config),
            "ANSIBLE_HOME": str(self.root / "home"),
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.root / "cp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_GALAXY_SERVER_LIST": "",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        env.pop("ANSIBLE_STDOUT_CALLBACK", None)
        env.update(extra)
        return env

    def _run(
        self, argv: list[str | Path], env: dict[str, str], timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
        )

    def install_collection(self) -> Path:
        """`ansible-galaxy collection build collection/`, then install the tarball (offline, no dependencies)."""
        build = self._run(
            [
                ansible_tool("ansible-galaxy"),
                "collection",
                "build",
                REPO / "collection",
                "--output-path",
                "build",
                "--force",
            ],
            self.env(),
        )
        assert build.returncode == 0, build.stdout + build.stderr
        tarball = next((self.root / "build").glob("sshd_setup-gateway-*.tar.gz"))
        install = self._run(
            [
                ansible_tool("ansible-galaxy"),
                "collection",
                "install",
                "--offline",
                "--force",
                "-p",
                self.collections,
                tarball,
            ],
            self.env(),
        )
        assert install.returncode == 0, install.stdout + install.stderr
        return tarball

    def playbook(self, playbook: Path, inventory: Path, *args: str, **env: str) -> PlaybookRun:
        tree = self.root / f"tree-{len(list(self.root.glob('tree-*')))}"
        run = self._run(
            [ansible_tool("ansible-playbook"), "-i", inventory, playbook, *args],
            self.env(ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree", ANSIBLE_CALLBACK_TREE_DIR=str(tree), **env),
        )
        return PlaybookRun(run.returncode, run.stdout, run.stderr, tree)


def write_playbook(path: Path, task: str = "sshd_setup.gateway.apply", args: dict[str, Any] | None = None) -> Path:
    body = json.dumps(args) if args else ""
    path.write_text(
        f"- name: sshd-setup\n  hosts: all\n  gather_facts: false\n  tasks:\n    - name: {task}\n      {task}: {body}\n"
    )
    return path
