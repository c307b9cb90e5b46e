"""Verification suite: testinfra checks that every host is in the state the inventory describes.

Run by `sshd-setup verify -i INV [--limit PATTERN] [--json]`, or directly with pytest by anyone who already
uses testinfra:

    pytest -p sshd_setup.verification.plugin --pyargs sshd_setup.verification --sshd-setup-inventory INV
    SSHD_SETUP_INVENTORY=INV pytest --pyargs sshd_setup.verification      # same, options from the environment

Per host: the CA file (exact keys, every line a key, root 0644), sshd_config (gateway CA block first,
principal mappings block last), principals files (exact principals, root 0644), the effective
configuration from the host's own `sshd -T` (globally and `-C user=…` for every mapping and one unmapped
user), the sshd unit active and port 22 listening, no error finding from `sshd-setup check`'s path,
nothing left to apply, and every mapped user present.
"""
