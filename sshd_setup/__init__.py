"""sshd-setup: make OpenSSH servers trust a gateway's SSH certificate authority, safely."""

__version__ = "0.1.0"
