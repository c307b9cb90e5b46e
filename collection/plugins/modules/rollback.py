#!/usr/bin/python
# Copyright: sshd-setup developers; MIT License (see galaxy.yml)
# This module is an action plugin (plugins/action/rollback.py): it runs on the controller. This file documents it.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollback
short_description: Restore an sshd-setup backup, validated, reloaded and guarded
version_added: "0.1.0"
description:
  - Restores a backup made by M(sshd_setup.gateway.apply) or C(sshd-setup apply) (the latest, or O(to)) over
    Ansible's connection, validates it with C(sshd -t), reloads sshd and proves a NEW login works.
  - Takes the host's C(sshd_setup) variable (for the sshd_config path); options given replace its keys.
  - Needs sshd-setup installed in the controller's Python.
options:
  to:
    description: The backup to restore (its name under /var/backups/sshd-setup/), or V(latest).
    type: str
  reload:
    description: Reload sshd after restoring.
    type: bool
    default: true
  sshd_config:
    description: The main sshd configuration file.
    type: str
attributes:
  check_mode:
    description: Not supported; Ansible skips the task in check mode.
    support: none
  diff_mode:
    description: No diff.
    support: none
  platform:
    description: Hosts with a POSIX sh and sshd.
    support: full
    platforms: posix
author:
  - sshd-setup developers (@sshd-setup)
"""

EXAMPLES = r"""
- name: Undo the last apply
  sshd_setup.gateway.rollback:
"""

RETURN = r"""
status:
  description: changed when restored, else failed.
  returned: always
  type: str
reason:
  description: Why, in one line.
  returned: always
  type: str
backup:
  description: The backup restored.
  returned: always
  type: str
"""
