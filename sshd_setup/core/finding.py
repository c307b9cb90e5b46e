"""A finding: something about a host's configuration an operator must know, with where and what to do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from sshd_setup.errors import InputError


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    code: str
    """Stable identifier (e.g. SSH-PORT-NOT-22) used by --allow and in --json."""
    severity: Severity
    message: str
    hint: str = ""
    path: str = ""
    line: int = 0

    @property
    def where(self) -> str:
        if not self.path:
            return ""
        return f"{self.path}:{self.line}" if self.line else self.path

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


def parse_allow(values: Iterable[str]) -> frozenset[str]:
    """The codes of --allow (repeatable, each a comma list), upper-cased; anything else is an InputError."""
    codes = {code.strip().upper() for value in values for code in value.split(",") if code.strip()}
    for code in sorted(codes):
        if not code.replace("-", "").isalnum():
            raise InputError("--allow", f"{code!r} is not a finding code")
    return frozenset(codes)
