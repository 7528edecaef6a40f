"""The globs of OIDC trusts (domain/globs.py)."""

from __future__ import annotations

import pytest

from gitward.domain.globs import BadGlob, compile_glob


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("repo:acme/app:ref:refs/heads/*", "repo:acme/app:ref:refs/heads/main", True),
        ("repo:acme/app:ref:refs/heads/*", "repo:acme/app:ref:refs/heads/a/b", True),
        ("repo:acme/app:ref:refs/heads/*", "repo:acme/app:ref:refs/tags/v1", False),
        ("repo:acme/app:ref:refs/heads/*", "repo:acme/app-evil:ref:refs/heads/main", False),
        ("repo:acme/*:ref:refs/heads/main", "repo:acme/x:y:ref:refs/heads/main", True),
        ("repo:acme/app", "repo:acme/app:ref:refs/heads/main", False),  # the whole value
        ("repo:acme/app", "REPO:acme/app", False),  # case-sensitive
        ("v?", "v1", True),
        ("v?", "v12", False),
        ("a.b", "aXb", False),  # regex characters are literal
        ("{uuid}:*", "{uuid}:{step}", True),  # braces are literal
        ("[ab]", "a", False),
        ("[ab]", "[ab]", True),
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
        ("a\\\\b", "a\\b", True),
        ("a**b", "ab", True),
        ("x*", "x\nmore", True),
    ],
)
def test_matching(pattern: str, value: str, matches: bool) -> None:
    assert compile_glob(pattern).matches(value) is matches


def test_a_trailing_backslash_is_no_glob() -> None:
    with pytest.raises(BadGlob, match="lone backslash"):
        compile_glob("refs\\")
