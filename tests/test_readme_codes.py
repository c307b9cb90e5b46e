"""Every finding code the code can emit is in the README's findings table (a new check must document its code)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _emitted_codes() -> set[str]:
    """The first argument of every Finding(...) call in sshd_setup/, and codes passed to a helper that builds one."""
    codes: set[str] = set()
    for path in (ROOT / "sshd_setup").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            for arg in node.args:
                text = arg.value if isinstance(arg, ast.Constant) else None
                if isinstance(text, str) and re.fullmatch(r"[A-Z][A-Z0-9]+(-[A-Z0-9]+)+", text):
                    codes.add(text)
    return codes


def _readme_table_codes() -> set[str]:
    text = (ROOT / "README.md").read_text()
    table = text.split("## Findings", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"\b[A-Z][A-Z0-9]+(?:-[A-Z0-9]+)+\b", table))


def test_every_emitted_finding_code_is_in_the_readme_table() -> None:
    emitted = _emitted_codes()
    assert len(emitted) > 40  # the scan found the checks; an empty set would pass vacuously
    not_findings = {"RESTORE-INCOMPLETE"}  # a record kind of the apply script, not a finding
    missing = sorted(emitted - not_findings - _readme_table_codes())
    assert not missing, f"finding codes missing from the README's findings table: {missing}"
