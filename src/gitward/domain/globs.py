"""The globs of OIDC trusts (docs/oidc-federation.md): `*` matches any run of characters
(none included, `/` and `:` included), `?` exactly one, a backslash makes the next character
literal (`\\*`, `\\?`, `\\\\`); everything else matches itself, case-sensitively. Nothing
else is special: `{`, `}`, `[` and `]` appear literally in CI subjects (Bitbucket's
`{REPOSITORY_UUID}:{STEP_UUID}`), so they are literal here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class BadGlob(ValueError):
    """The pattern cannot be a glob; the message says why."""


@dataclass(frozen=True)
class Glob:
    pattern: str
    _regex: re.Pattern[str]

    def matches(self, value: str) -> bool:
        return self._regex.fullmatch(value) is not None


def compile_glob(pattern: str) -> Glob:
    """The glob of `pattern`; BadGlob for a trailing lone backslash."""
    parts: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            if not parts or parts[-1] != ".*":  # `**` is `*`
                parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    if escaped:
        raise BadGlob("ends with a lone backslash (write \\\\ for a backslash)")
    return Glob(pattern, re.compile("".join(parts), re.DOTALL))
