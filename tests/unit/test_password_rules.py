"""Which passwords may be set (services/passwords.py): the shipped list, the username, the
minimum length."""

from __future__ import annotations

from importlib import resources

import pytest

from gitward.services.passwords import common_passwords, password_problem


def test_the_list_ships_with_its_licence():
    text = resources.files("gitward.credentials").joinpath("data/common-passwords.txt").read_text()
    header = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    assert "MIT License" in header and "public domain" in header
    assert "Permission is hereby granted" in header
    words = common_passwords()
    assert isinstance(words, frozenset) and len(words) == 10_000
    assert {"123456", "password", "qwerty", "1qaz2wsx3edc"} <= words
    assert common_passwords() is words  # read once


@pytest.mark.parametrize(
    ("password", "username", "problem"),
    [
        ("a fine long passphrase", "alice", None),
        ("short", "alice", "at least 12"),
        ("x" * 1025, "alice", "at most 1024"),
        ("ALICE-is-my-password", "alice", "username"),
        ("aliceALICEalice", "alice", "username"),
        ("Bob", "bob", "at least 12"),
        ("bob", "bob", "at least 12"),
        # A one- or two-letter username is refused as the whole password only.
        ("al-the-alchemist-42", "al", None),
        ("QWERTYUIOPASDF", "alice", None),
        ("Q1W2E3R4T5Y6", "alice", "most common"),
        ("", "alice", "required"),
        (None, "alice", "required"),
        (123456789012, "alice", "required"),
    ],
)
def test_password_problem(password, username, problem):
    found = password_problem(password, username, 12)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_the_whole_username_with_a_short_minimum():
    assert "username" in (password_problem("al", "al", 1) or "")
    assert "username" in (password_problem("AL", "al", 1) or "")
