"""Ref-scoped write in the policy: ref patterns and fast-forward only decide each ref update
in the credential-bound gate, never allow what the bound without them refuses, and do not
touch anything but ref updates. Also the patterns' parsing and matching, and the rewriting
of receive-pack's report that shows each refused ref's reason to `git push`."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitward.credentials.personal import PatPermissions
from gitward.domain.identity import (
    AuthContext,
    Bound,
    CredentialKind,
    Reach,
    TokenPrincipal,
    UserPrincipal,
)
from gitward.domain.permissions import (
    ACTIONS,
    Action,
    Level,
    ResourceKind,
    Scope,
    WorkspaceRole,
    implied_scopes,
)
from gitward.domain.policy import DenialCode, Denied, LiveGrants, Target, authorize
from gitward.domain.refs import (
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    InvalidRefPatterns,
    RefChange,
    matches,
    parse_ref_patterns,
)
from gitward.gitstore.pktline import FLUSH, ReportRewriter, pkt

REPO = Target(ResourceKind.REPOSITORY, workspace_id=1, project_id=2, repository_id=3)
ALICE = UserPrincipal(1, "alice")
WRITER = LiveGrants(repository_grant=Level.WRITE)


def pat(**bound: object) -> AuthContext:
    return AuthContext(ALICE, CredentialKind.PERSONAL_ACCESS_TOKEN,
                       replace(PatPermissions(Level.WRITE).bound(), **bound),  # type: ignore[arg-type]
                       credential_id=5)


def repo_token(**bound: object) -> AuthContext:
    return AuthContext(
        TokenPrincipal(9, "bot", CredentialKind.REPOSITORY_ACCESS_TOKEN),
        CredentialKind.REPOSITORY_ACCESS_TOKEN,
        Bound(scopes=implied_scopes(frozenset({Scope.REPOSITORY_WRITE})),
              reach=Reach(1, 2, 3), **bound),  # type: ignore[arg-type]
        credential_id=9,
    )


def on(ref: str, **how: object) -> Target:
    return replace(REPO, ref=RefChange(ref, **how))  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [pat, repo_token], ids=["pat", "repository-token"])
def test_patterns_allow_their_refs_only(make) -> None:
    ctx = make(ref_patterns=("refs/heads/bot/*", "refs/tags/v*"))
    for ref in ("refs/heads/bot/x", "refs/heads/bot/a/b", "refs/tags/v1.2", "refs/tags/v"):
        assert authorize(ctx, Action.REPO_WRITE, on(ref, fast_forward=True), WRITER), ref
    for ref in ("refs/heads/main", "refs/heads/bot", "refs/heads/botx/y", "refs/tags/1.0",
                "refs/notes/bot/x"):
        decision = authorize(ctx, Action.REPO_WRITE, on(ref), WRITER)
        assert isinstance(decision, Denied) and decision.code is DenialCode.FORBIDDEN, ref
        assert decision.reason == ("this token may only update refs matching "
                                   "refs/heads/bot/*, refs/tags/v*")
    # The repository itself (git's check before the push starts, other writes): allowed.
    assert authorize(ctx, Action.REPO_WRITE, REPO, WRITER)


def test_fast_forward_only_allows_creating_and_moving_forward() -> None:
    ctx = pat(fast_forward_only=True)
    allowed = [on("refs/heads/a", created=True), on("refs/heads/a", fast_forward=True)]
    for target in allowed:
        assert authorize(ctx, Action.REPO_WRITE, target, WRITER)
    refused = {
        "this token may only fast-forward refs: this is a forced update":
            on("refs/heads/a", fast_forward=False),
        "this token may only fast-forward refs, not delete them": on("refs/heads/a", deleted=True),
        "this token may only fast-forward refs, and this update could not be checked":
            on("refs/heads/a"),
    }
    for reason, target in refused.items():
        decision = authorize(ctx, Action.REPO_WRITE, target, WRITER)
        assert isinstance(decision, Denied) and decision.reason == reason


def test_a_restriction_does_not_lend_what_the_owner_lacks() -> None:
    ctx = pat(ref_patterns=("refs/heads/*",))
    reader = LiveGrants(repository_grant=Level.READ)
    decision = authorize(ctx, Action.REPO_WRITE, on("refs/heads/x", fast_forward=True), reader)
    assert isinstance(decision, Denied) and "write permission" in decision.reason


def test_other_actions_are_untouched_by_ref_restrictions() -> None:
    plain = pat()
    restricted = pat(ref_patterns=("refs/heads/bot/*",), fast_forward_only=True)
    owner = LiveGrants(workspace_role=WorkspaceRole.OWNER)
    for action, rule in ACTIONS.items():
        if rule.resource is ResourceKind.REPOSITORY:
            assert bool(authorize(plain, action, REPO, owner)) == bool(
                authorize(restricted, action, REPO, owner)), action


BOUNDS = [PatPermissions(Level.WRITE).bound(), PatPermissions(Level.ADMIN, Level.ADMIN).bound(),
          PatPermissions(Level.READ).bound()]
_PIECES = st.sampled_from(["refs/", "heads/", "tags/", "bot", "main", "v1", "/", "*", "x"])
_REFS = st.lists(_PIECES, min_size=1, max_size=6).map(lambda p: "refs/" + "".join(p))
_PATTERNS = st.one_of(
    st.none(), st.lists(_REFS, min_size=1, max_size=3).map(lambda p: tuple(dict.fromkeys(p)))
)
_GRANTS = st.builds(
    LiveGrants,
    workspace_role=st.sampled_from([None, WorkspaceRole.MEMBER, WorkspaceRole.OWNER]),
    project_grant=st.sampled_from(list(Level)),
    repository_grant=st.sampled_from([Level.NONE, Level.READ, Level.WRITE, Level.ADMIN]),
    is_site_admin=st.booleans(),
    active=st.booleans(),
)


@given(
    bound=st.sampled_from(BOUNDS),
    patterns=_PATTERNS,
    fast_forward_only=st.booleans(),
    ref=_REFS,
    how=st.sampled_from([{"created": True}, {"deleted": True}, {"fast_forward": True},
                         {"fast_forward": False}, {}]),
    live=_GRANTS,
    public=st.booleans(),
    kind=st.sampled_from([CredentialKind.PERSONAL_ACCESS_TOKEN,
                          CredentialKind.REPOSITORY_ACCESS_TOKEN]),
)
def test_no_restriction_ever_widens(bound, patterns, fast_forward_only, ref, how, live, public,
                                    kind) -> None:
    """With ref patterns or fast-forward only, the allowed set is a subset of without: for
    every credential, target, update and standing. And without them the ref changes
    nothing, which is why `check_push` asks about each ref only for a restricted bound."""
    if kind is CredentialKind.REPOSITORY_ACCESS_TOKEN:
        bound = Bound(scopes=implied_scopes(frozenset({Scope.REPOSITORY_WRITE})),
                      reach=Reach(1, 2, 3))
        principal: UserPrincipal | TokenPrincipal = TokenPrincipal(9, "bot", kind)
    else:
        principal = ALICE
    target = replace(REPO, is_public=public, ref=RefChange(ref, **how))
    free = AuthContext(principal, kind, bound, credential_id=4)
    restricted = AuthContext(principal, kind,
                             replace(bound, ref_patterns=patterns,
                                     fast_forward_only=fast_forward_only), credential_id=4)
    for action in (Action.REPO_WRITE, Action.REPO_READ, Action.REPO_ADMIN):
        if authorize(restricted, action, target, live):
            assert authorize(free, action, target, live)
        assert bool(authorize(free, action, target, live)) == bool(
            authorize(free, action, replace(target, ref=None), live))


# -- the patterns -------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "ref", "expected"), [
    ("refs/heads/bot/*", "refs/heads/bot/x", True),
    ("refs/heads/bot/*", "refs/heads/bot/x/y", True),
    ("refs/heads/bot/*", "refs/heads/bot/", True),
    ("refs/heads/bot/*", "refs/heads/bot", False),
    ("refs/tags/v*", "refs/tags/v1.0", True),
    ("refs/heads/main", "refs/heads/main", True),
    ("refs/heads/main", "refs/heads/main2", False),
    ("refs/heads/a.b", "refs/heads/axb", False),  # `.` is itself, not any character
    ("refs/*/release", "refs/heads/release", True),
    ("refs/*/release", "refs/heads/release/x", False),
    ("refs/heads/+x", "refs/heads/+x", True),
])
def test_matching(pattern: str, ref: str, expected: bool) -> None:
    assert matches((pattern,), ref) is expected


def test_parsing_keeps_order_without_repeats() -> None:
    assert parse_ref_patterns(None) is None
    assert parse_ref_patterns(["refs/tags/v*", "refs/heads/*", "refs/tags/v*"]) == (
        "refs/tags/v*", "refs/heads/*")


@pytest.mark.parametrize(("value", "message"), [
    ("refs/heads/*", "must be a list of ref patterns"),
    ([], "must hold at least one ref pattern"),
    ([1], "not a ref pattern: 1"),
    (["heads/main"], "must start with refs/"),
    (["refs/"], "must start with refs/"),
    (["refs/heads/a b"], "character git does not allow"),
    (["refs/heads/a~1"], "character git does not allow"),
    (["refs/heads/\x00"], "character git does not allow"),
    (["refs/heads/\ud800"], "character git does not allow"),
    (["refs/heads/../x"], "'..'"),
    (["refs/heads//x"], "'//'"),
    (["refs/heads/x/"], "ends with"),
    (["refs/heads/x.lock"], "ends with"),
    (["refs/heads/.x"], "starting with '.'"),
    (["refs/heads/" + "x" * MAX_PATTERN_LENGTH], "longer than"),
    ([f"refs/heads/{n}" for n in range(MAX_PATTERNS + 1)], f"at most {MAX_PATTERNS}"),
])
def test_bad_patterns_name_the_problem(value: object, message: str) -> None:
    with pytest.raises(InvalidRefPatterns, match=None) as raised:
        parse_ref_patterns(value, "refPatterns")
    assert message in str(raised.value) and str(raised.value).startswith("refPatterns")


# -- receive-pack's report --------------------------------------------------------------


def _report(*lines: str) -> bytes:
    return b"".join(pkt(line.encode()) for line in lines) + FLUSH


REASONS = {"refs/heads/main": "this token may only update refs matching refs/heads/bot/*",
           "refs/heads/bot/x": "not applied: another ref of this push was refused"}
DECLINED = ("unpack ok\n", "ng refs/heads/bot/x pre-receive hook declined\n",
            "ng refs/heads/main pre-receive hook declined\n")
GIVEN = ("unpack ok\n", f"ng refs/heads/bot/x {REASONS['refs/heads/bot/x']}\n",
         f"ng refs/heads/main {REASONS['refs/heads/main']}\n")


def _fed(rewriter: ReportRewriter, data: bytes, size: int) -> bytes:
    out = b"".join(rewriter.feed(data[i:i + size]) for i in range(0, len(data), size))
    return out + rewriter.finish()


def _demux(data: bytes) -> tuple[bytes, bytes]:
    """Side-band channels 1 and 2 of `data`."""
    bands = {1: b"", 2: b""}
    pos = 0
    while pos < len(data):
        length = int(data[pos:pos + 4], 16)
        if length < 4:
            pos += 4
            continue
        payload = data[pos + 4:pos + length]
        bands[payload[0]] += payload[1:]
        pos += length
    return bands[1], bands[2]


@pytest.mark.parametrize("size", [1, 3, 7, 4096])
def test_the_report_gets_each_refs_reason_without_sideband(size: int) -> None:
    out = _fed(ReportRewriter(lambda: REASONS), _report(*DECLINED), size)
    assert out == _report(*GIVEN)


@pytest.mark.parametrize("size", [1, 5, 4096])
def test_the_report_gets_each_refs_reason_in_sideband(size: int) -> None:
    report = _report(*DECLINED)
    progress = pkt(b"\x02remote: push refused\n")
    # The report split over two channel-1 packets, in the middle of a line.
    data = (progress + pkt(b"\x01" + report[:17]) + progress + pkt(b"\x01" + report[17:])
            + FLUSH)
    channel1, channel2 = _demux(_fed(ReportRewriter(lambda: REASONS), data, size))
    assert channel1 == _report(*GIVEN)
    assert channel2 == b"remote: push refused\n" * 2


def test_without_reasons_everything_passes_unchanged() -> None:
    report = _report(*DECLINED, "ok refs/heads/x\n")
    sideband = pkt(b"\x02hello\n") + pkt(b"\x01" + report) + FLUSH
    for data in (report, sideband, b"not pkt-lines at all", report[:-3]):
        assert _fed(ReportRewriter(lambda: {}), data, 2) == data


def test_a_channel_that_is_not_a_report_passes_unchanged() -> None:
    data = (pkt(b"\x01zzzz not a report") + pkt(b"\x01" + _report(*DECLINED))
            + pkt(b"\x02progress\n") + FLUSH)
    assert _fed(ReportRewriter(lambda: REASONS), data, 3) == data


def test_a_reason_stays_on_one_line() -> None:
    reasons = {"refs/heads/main": "first line\nsecond\tline " + "x" * 1000}
    out = _fed(ReportRewriter(lambda: reasons),
               _report("ng refs/heads/main pre-receive hook declined\n"), 4096)
    line = out[4:-4]
    assert line.startswith(b"ng refs/heads/main first line second line x")
    assert line.count(b"\n") == 1 and len(line) < 500


def test_every_combination_of_restrictions_is_a_distinct_context_key() -> None:
    keys = {
        pat(ref_patterns=patterns, fast_forward_only=forward).key
        for patterns, forward in itertools.product([None, ("refs/heads/*",)], [False, True])
    }
    assert len(keys) == 4
