#!/usr/bin/python
# Copyright: sshd-setup developers; MIT License (see galaxy.yml)
# This module is an action plugin (plugins/action/apply.py): it runs on the controller. This file documents it.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: apply
short_description: Make sshd trust an SSH gateway's CA, safely (sshd-setup's pipeline)
version_added: "0.1.0"
description:
  - Runs sshd-setup's per-host pipeline on the controller (or execution node) over Ansible's own connection to
    the host, with become as the play says. The host needs only a POSIX sh and sshd, no Python.
  - Facts in one script; plan and findings with sshd-setup's pure core; an error finding fails the host and
    changes nothing unless its code is in O(allow); one apply script stages every file, validates the
    assembled tree with C(sshd -t), backs up, renames atomically, reloads and waits for the new sshd.
  - The lockout guard then opens a NEW ssh login (C(ControlMaster=no), C(ControlPath=none), with the host's
    connection settings; never a channel of a ControlPersist master). If it fails, the backup is restored,
    sshd reloaded and re-checked, and the host fails with the reason.
  - With no settings given, the host's C(sshd_setup) variable is used; each option given replaces that key.
    Settings are validated exactly as the sshd-setup CLI validates its inventory.
  - Needs sshd-setup installed in the controller's Python (C(pip install sshd-setup)).
options:
  ca_keys:
    description: The gateway's CA public keys (OpenSSH lines).
    type: list
    elements: str
  ca_keys_file:
    description: A file of CA public keys on the controller, relative to the inventory's directory.
    type: str
  ca_path:
    description: Where the CA keys are written on the host (default V(/etc/ssh/ca.pub)).
    type: str
  principals:
    description:
      - "Principal mappings, as in sshd-setup's inventory, e.g. C({user: johndoe, principal: jdoe@example.com}),
        C({user: vmuser, principals: [jdoe, robin], file: /etc/ssh/vmusers-list.txt}),
        C({user: ops, any_principal: true})."
    type: list
    elements: dict
  allow_all:
    description: Any certificate signed by the CA may log in as any existing user.
    type: bool
  create_users:
    description: Create missing mapped users (never deletes users).
    type: bool
  foreign_ca_keys:
    description: What to do with an existing TrustedUserCAKeys file elsewhere.
    type: str
    choices: [refuse, merge, replace]
  backups_keep:
    description: Backups kept per host under C(/var/backups/sshd-setup/).
    type: int
  sshd_config:
    description: The main sshd configuration file (default V(/etc/ssh/sshd_config)).
    type: str
  allow:
    description: Finding codes that do not fail the host (like C(sshd-setup apply --allow CODE)).
    type: list
    elements: str
    default: []
  reload:
    description: Reload sshd after writing (V(false) is C(--no-reload)).
    type: bool
    default: true
attributes:
  check_mode:
    description: C(--check) is sshd-setup's C(--dry-run) (facts, findings, diffs; nothing written, no reload).
    support: full
  diff_mode:
    description: C(--diff) shows sshd-setup's unified diff of every file it writes.
    support: full
  platform:
    description: Hosts with a POSIX sh and OpenSSH's sshd; the plugin runs on the controller.
    support: full
    platforms: posix
notes:
  - The guard's new login uses the C(ssh) client with the connection's host, port, user, private key, ssh args
    and host key checking; connections other than C(ssh) and C(local), and password logins, are refused before
    anything is changed.
author:
  - sshd-setup developers (@sshd-setup)
"""

EXAMPLES = r"""
- name: Trust the gateway CA (settings from the sshd_setup variable)
  sshd_setup.gateway.apply:

- name: Override one key and accept a finding
  sshd_setup.gateway.apply:
    create_users: true
    allow: [PORT-NOT-22]
"""

RETURN = r"""
status:
  description: sshd-setup's status (changed, unchanged, would-change, blocked, failed, failed-rolled-back, unreachable).
  returned: always
  type: str
reason:
  description: Why, in one line.
  returned: always
  type: str
findings:
  description: Findings (code, severity, message, hint, path, line).
  returned: always
  type: list
  elements: dict
files:
  description: Every managed file with the reason it changes or not (path, reason, changed).
  returned: always
  type: list
  elements: dict
backup:
  description: The backup's name under /var/backups/sshd-setup/ (when one was made).
  returned: always
  type: str
users_created:
  description: Users created (or that would be, in check mode).
  returned: always
  type: list
  elements: str
reloaded:
  description: Whether sshd was reloaded.
  returned: always
  type: bool
"""
