"""The body and answer of a repository's push-protection setting, shared by the Cloud
(`/2.0/repositories/{workspace}/{repo_slug}/push-protection`) and Server
(`/rest/api/1.0/projects/{key}/repos/{slug}/settings/push-protection`) surfaces: the same
JSON on both (docs/push-protection.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from gitward.services.errors import BadRequest
from gitward.services.repositories import PushProtection


class PushProtectionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    enabled: Any = None


def push_protection_json(state: PushProtection) -> dict[str, Any]:
    return {"enabled": state.enabled, "effective": state.effective}


def push_protection_setting(body: PushProtectionBody) -> bool | None:
    """`enabled`: true or false for this repository, null to follow the site."""
    if "enabled" not in body.model_fields_set:
        raise BadRequest("enabled is required: true, false, or null to follow the site.")
    return _flag(body.enabled)


def _flag(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise BadRequest("enabled must be true, false, or null to follow the site.")
    return value
