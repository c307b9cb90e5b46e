#!/usr/bin/python
# Copyright: sshd-setup developers; MIT License (see galaxy.yml)
# This module is an action plugin (plugins/action/verify.py): it runs on the controller. This file documents it.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: verify
short_description: Prove a host against the inventory with sshd-setup's testinfra suite
version_added: "0.1.0"
description:
  - Runs C(sshd-setup verify -i INVENTORY --limit HOST) on the controller, the pytest-testinfra suite shipped
    in sshd-setup (the running sshd's effective configuration, files, modes, users, a new login), and fails
    the host when a check fails.
  - The suite reaches the host with sshd-setup's own SSH connection, from the same inventory file (Ansible's
    YAML or INI inventory with its connection variables); Ansible's connection plugin is not used here.
  - Needs sshd-setup installed in the controller's Python.
options:
  inventory:
    description: The inventory file; default the one Ansible loaded this host from (C(inventory_file)).
    type: path
  allow:
    description: Finding codes accepted, as given to M(sshd_setup.gateway.apply).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds the suite may take.
    type: int
    default: 300
attributes:
  check_mode:
    description: Read-only; runs in check mode too.
    support: full
  diff_mode:
    description: No diff.
    support: none
  platform:
    description: Hosts with sshd.
    support: full
    platforms: posix
author:
  - sshd-setup developers (@sshd-setup)
"""

EXAMPLES = r"""
- name: Prove the result
  sshd_setup.gateway.verify:
"""

RETURN = r"""
status:
  description: passed, failed or unreachable.
  returned: always
  type: str
reason:
  description: The first failing check, or how many passed.
  returned: always
  type: str
checks:
  description: Every check (check, status, reason, description, detail, seconds).
  returned: always
  type: list
  elements: dict
"""
