"""The command-logging key: ``GET/PUT /accounts/{id}/gateway/audit_ssh_settings`` with ``{public_key}``.

The gateway encrypts the commands of SSH sessions (both flows) to this HPKE public key; the
answer's fields per the schema: ``public_key``, ``seed_id``, ``created_at``, ``updated_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sshd_setup.errors import InputError
from sshd_setup.gateway.client import ApiClient

PATH = "gateway/audit_ssh_settings"


@dataclass(frozen=True)
class AuditSshSettings:
    public_key: str  # "" when none is set
    seed_id: str | None
    updated_at: str | None


def _parse(result: Any, method: str) -> AuditSshSettings:
    if not isinstance(result, dict):
        raise InputError("API answer", f"{method} {PATH}: result is not an object")
    key = result.get("public_key")
    if key is not None and not isinstance(key, str):
        raise InputError("API answer", f"{method} {PATH}: public_key is not a string")

    def text(name: str) -> str | None:
        value = result.get(name)
        return value if isinstance(value, str) else None

    return AuditSshSettings((key or "").strip(), text("seed_id"), text("updated_at"))


def get_settings(api: ApiClient) -> AuditSshSettings:
    return _parse(api.call("GET", PATH), "GET")


def put_public_key(api: ApiClient, public_key: str) -> AuditSshSettings:
    settings = _parse(api.call("PUT", PATH, body={"public_key": public_key}), "PUT")
    if settings.public_key != public_key:
        raise InputError("API answer", f"PUT {PATH}: the answer holds a different public_key than the one sent")
    return settings
