"""What Server REST request bodies and queries may hold: checked here for their JSON types,
so that each problem gets a Server-shaped 400 naming the field."""

from __future__ import annotations

from typing import Any

from gitward.services.errors import BadRequest


def text(value: Any, what: str) -> str | None:
    """A string field, or None when it was not sent."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string.")
    return value


def flag(value: Any, what: str) -> bool | None:
    """A boolean field, or None when it was not sent."""
    if value is None:
        return None
    if not isinstance(value, bool):
        raise BadRequest(f"{what} must be true or false.")
    return value


def names(values: list[str] | None) -> list[str]:
    """The `name` query parameters of a permission change: at least one."""
    if not values or not all(values):
        raise BadRequest("Missing required parameter: name (a username).")
    return values
