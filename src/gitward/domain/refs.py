"""Ref-scoped write: the refs a token may update, and whether only by fast-forward.

A token's `ref_patterns` are globs over full ref names (`refs/heads/bot/*`, `refs/tags/v*`):
`*` matches any run of characters, `/` included (as in git's refspecs, so `refs/heads/bot/*`
also covers `refs/heads/bot/a/b`); every other character matches itself. A ref may be
updated when one pattern matches it. `fast_forward_only` allows creating a ref and moving it
forward, never a forced (non-fast-forward) update nor a deletion. docs/ref-scoped-tokens.md.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

#: At most this many patterns on one token (each push's refs are matched against them all).
MAX_PATTERNS = 50
#: The longest pattern taken.
MAX_PATTERN_LENGTH = 255
#: How many patterns a refusal names before it says "…".
_NAMED = 5

# Printable ASCII without space and what git never takes in a ref name (`~^:?[\`), `*` aside.
_CHARACTERS = re.compile(r"^[\x21-\x7e]+$")
_FORBIDDEN = set("~^:?[\\")


class InvalidRefPatterns(ValueError):
    """A list that is not a list of ref globs; the message names the bad entry."""


def _problem(pattern: str) -> str | None:
    """Why `pattern` is not a ref glob (None: it is one)."""
    if not pattern.startswith("refs/") or len(pattern) == len("refs/"):
        return "must start with refs/ and name something under it"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is longer than {MAX_PATTERN_LENGTH} characters"
    if not _CHARACTERS.match(pattern) or _FORBIDDEN & set(pattern):
        return "holds a character git does not allow in a ref name"
    if ".." in pattern or "//" in pattern or "@{" in pattern:
        return "holds '..', '//' or '@{', which git does not allow in a ref name"
    if pattern.endswith(("/", ".", ".lock")):
        return "ends with '/', '.' or '.lock', which git does not allow in a ref name"
    if any(part.startswith(".") for part in pattern.split("/")):
        return "has a part starting with '.', which git does not allow in a ref name"
    return None


def parse_ref_patterns(value: object, field: str = "ref_patterns") -> tuple[str, ...] | None:
    """The patterns of a request body, in their order without repeats; None when the body
    gives none (null): every ref. An empty list is refused, since it reads as "no ref"."""
    if value is None:
        return None
    example = '["refs/heads/bot/*", "refs/tags/v*"]'
    if not isinstance(value, list):
        raise InvalidRefPatterns(f"{field} must be a list of ref patterns, e.g. {example}")
    if not value:
        raise InvalidRefPatterns(
            f"{field} must hold at least one ref pattern, e.g. {example}; leave it out "
            "(or null) for a token that may update every ref"
        )
    if len(value) > MAX_PATTERNS:
        raise InvalidRefPatterns(f"{field} may hold at most {MAX_PATTERNS} patterns")
    patterns: list[str] = []
    for entry in value:
        if not isinstance(entry, str):
            raise InvalidRefPatterns(f"{field}: not a ref pattern: {entry!r:.60}")
        problem = _problem(entry)
        if problem is not None:
            shown = entry[:60].encode("ascii", "backslashreplace").decode()
            raise InvalidRefPatterns(f"{field}: {shown!r} {problem}")
        if entry not in patterns:
            patterns.append(entry)
    return tuple(patterns)


def stored(patterns: tuple[str, ...] | None) -> str | None:
    """The column value for parsed patterns (space separated: no pattern holds a space)."""
    return " ".join(patterns) if patterns else None


def patterns_of(column: str | None) -> tuple[str, ...] | None:
    """The patterns a column holds, for a bound or a response body (None: every ref)."""
    return tuple(column.split()) if column else None


def listed(column: str | None) -> list[str] | None:
    """The patterns as a response body shows them: a list, or null for every ref."""
    patterns = patterns_of(column)
    return list(patterns) if patterns is not None else None


@functools.lru_cache(maxsize=1024)
def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = ("|".join(".*".join(re.escape(piece) for piece in p.split("*"))
                             for p in patterns))
    return re.compile(f"(?:{alternatives})")


def matches(patterns: tuple[str, ...], ref: str) -> bool:
    """Does one of `patterns` match the whole of `ref`?"""
    return _matcher(patterns).fullmatch(ref) is not None


@dataclass(frozen=True)
class RefChange:
    """One update of one ref, as the policy judges it.

    `fast_forward`: whether the new value has the old one in its history (both commits);
    None when it was not worked out. It means nothing for a creation or a deletion."""

    ref: str
    created: bool = False
    deleted: bool = False
    fast_forward: bool | None = None


def _shown(patterns: tuple[str, ...]) -> str:
    named = ", ".join(patterns[:_NAMED])
    return named + (", …" if len(patterns) > _NAMED else "")


def refusal(
    patterns: tuple[str, ...] | None, fast_forward_only: bool, change: RefChange
) -> str | None:
    """Why a token so restricted may not make `change` (None: it may)."""
    if patterns is not None and not matches(patterns, change.ref):
        return f"this token may only update refs matching {_shown(patterns)}"
    if not fast_forward_only or change.created:
        return None
    if change.deleted:
        return "this token may only fast-forward refs, not delete them"
    if change.fast_forward is None:
        return "this token may only fast-forward refs, and this update could not be checked"
    if not change.fast_forward:
        return "this token may only fast-forward refs: this is a forced update"
    return None
