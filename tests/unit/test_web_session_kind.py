"""The web session as a credential kind: its row in the kind table, how it may be presented,
the pages' `next` rule and which paths are Git's."""

from __future__ import annotations

import pytest

from gitward.credentials import codec
from gitward.credentials.registry import AuthenticationFailed, Presented, presentation_check
from gitward.credentials.session import PREFIX
from gitward.domain.identity import CREDENTIAL_KINDS, BoundBy, CredentialKind, Presentation
from gitward.web.ui.pages import safe_next


def test_the_session_row_is_interactive_unbounded_and_cookie_only():
    facts = CREDENTIAL_KINDS[CredentialKind.SESSION]
    assert facts.interactive and facts.bound_by is BoundBy.NOTHING
    assert facts.presented == frozenset({Presentation.COOKIE})
    # No other kind may come as the cookie.
    others = [k for k, f in CREDENTIAL_KINDS.items()
              if Presentation.COOKIE in f.presented and k is not CredentialKind.SESSION]
    assert others == []


@pytest.mark.parametrize("presented", [
    Presented("bearer", "x"), Presented("basic", "x", "alice"),
    Presented("basic", "x", "x-token-auth"),
])
def test_a_session_secret_is_refused_unless_it_is_the_cookie(presented):
    check = presentation_check(CredentialKind.SESSION)
    with pytest.raises(AuthenticationFailed):
        check(presented)
    check(Presented("cookie", "x"))


@pytest.mark.parametrize("kind", [k for k in CredentialKind
                                  if k not in (CredentialKind.SESSION, CredentialKind.ANONYMOUS)])
def test_no_other_kind_is_accepted_as_the_cookie(kind):
    with pytest.raises(AuthenticationFailed):
        presentation_check(kind)(Presented("cookie", "x"))


def test_session_secrets_have_the_secret_format():
    secret = codec.generate(PREFIX)
    assert codec.prefix_of(secret) == PREFIX


@pytest.mark.parametrize(("target", "expected"), [
    ("/acme/widget", "/acme/widget"),
    ("/account/sessions?x=1", "/account/sessions?x=1"),
    (None, "/"), ("", "/"), ("acme", "/"), ("//evil.example", "/"), ("/\\evil", "/"),
    ("https://evil.example/", "/"), ("/a\nb", "/"), ("/a\\b", "/"),
])
def test_next_is_a_path_on_this_site(target, expected):
    assert safe_next(target) == expected
