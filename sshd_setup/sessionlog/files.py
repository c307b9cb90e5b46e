"""Output files that appear whole or not at all (the package's one atomic writer, mode 0600)."""

from __future__ import annotations

from sshd_setup.atomicfile import atomic_file

__all__ = ["atomic_file"]
