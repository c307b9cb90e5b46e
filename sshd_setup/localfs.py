"""A FileSource over a local directory that stands for a host's '/' (render --root, lint)."""

from __future__ import annotations

import glob as globlib
import os
from pathlib import Path

from sshd_setup.core.tree import SourceMissing, SourceUnreadable
from sshd_setup.inputfile import NotReadable, read_bounded


class LocalRoot:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def local(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str:
        local = self.local(path)
        try:
            return read_bounded(local).decode("utf-8", errors="surrogateescape")
        except FileNotFoundError:
            raise SourceMissing(path) from None
        except NotReadable as exc:
            raise SourceUnreadable(str(exc)) from None

    def glob(self, pattern: str) -> list[str]:
        prefix = str(self.root)
        found = globlib.glob(globlib.escape(prefix) + "/" + pattern.lstrip("/"))
        return sorted("/" + os.path.relpath(p, prefix) for p in found)

    def is_dir(self, path: str) -> bool:
        return self.local(path).is_dir()
