"""BBQL: parsing, checking against a listing's fields, evaluation; and fuzzing that no input
ever raises anything but QueryError.

Example queries are Bitbucket Cloud's own, from its "Filtering and sorting API responses"
documentation (`state = "OPEN"`, `(state = "OPEN" OR state = "MERGED") AND updated_on >
2015-11-01`, `reviewers.uuid = "{...}"`) and from clients that send them (Jenkins'
Bitbucket Branch Source, dependency bots: `name ~ "feature"`, `project.key = "KEY"`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitward.domain import bbql
from gitward.domain.bbql import And, Comparison, Field, FieldType, Op, Or, QueryError

FIELDS = {
    "state": Field(FieldType.TEXT),
    "name": Field(FieldType.TEXT),
    "reviewers.uuid": Field(FieldType.TEXT),
    "updated_on": Field(FieldType.DATETIME),
    "size": Field(FieldType.NUMBER),
    "is_private": Field(FieldType.BOOLEAN),
    "mainbranch.name": Field(FieldType.TEXT, nullable=True),
}


def test_documented_example_parses_into_the_tree():
    q = bbql.parse('(state = "OPEN" OR state = "MERGED") AND updated_on > 2015-11-01')
    assert q == And((
        Or((Comparison("state", Op.EQ, "OPEN", 2), Comparison("state", Op.EQ, "MERGED", 20))),
        Comparison("updated_on", Op.GT, datetime(2015, 11, 1, tzinfo=UTC), 42),
    ))


def test_precedence_and_binds_tighter_than_or():
    q = bbql.parse('name = "a" OR name = "b" AND size > 1')
    assert isinstance(q, Or)
    assert isinstance(q.parts[1], And)


@pytest.mark.parametrize("op", ["=", "!=", "~", "!~", ">", ">=", "<", "<="])
def test_every_operator(op):
    q = bbql.parse(f'name {op} "x"')
    assert isinstance(q, Comparison) and q.op is Op(op)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"a \\"quoted\\" \\\\ \\u00e9"', 'a "quoted" \\ é'),
        ("42", 42),
        ("-1.5", -1.5),
        ("true", True),
        ("FALSE", False),
        ("null", None),
        ("2015-11-01", datetime(2015, 11, 1, tzinfo=UTC)),
        ("2015-11-01T08:30:00Z", datetime(2015, 11, 1, 8, 30, tzinfo=UTC)),
        ("2015-11-01T08:30:00+02:00", datetime(2015, 11, 1, 6, 30, tzinfo=UTC)),
        ("2015-11-01T08:30:00.5-0700", datetime(2015, 11, 1, 15, 30, 0, 500000, tzinfo=UTC)),
    ],
)
def test_literals(text, value):
    q = bbql.parse(f"name = {text}")
    assert isinstance(q, Comparison) and q.value == value
    assert type(q.value) is type(value)


def test_keywords_are_case_insensitive_and_paths_dotted():
    q = bbql.parse('reviewers.uuid = "{x}" and name ~ "y" Or size < 3')
    assert isinstance(q, Or) and isinstance(q.parts[0], And)
    assert q.parts[0].parts[0].path == "reviewers.uuid"


@pytest.mark.parametrize(
    ("text", "problem", "position"),
    [
        ('name = "x', "Unterminated string", 8),
        ("name =", "Expected a value after '='", 7),
        ('name "x"', "Expected an operator after 'name'", 6),
        ('= "x"', "Expected a field name", 1),
        ('name = "x" size = 1', "Expected AND, OR or the end", 12),
        ('(name = "x"', "Expected ')'", 12),
        ('name = "x")', "Expected AND, OR or the end", 11),
        ("name = 5x", "Invalid value", 8),
        ("name = 2015-13-01", "Invalid date", 8),
        ('name = "\\q"', "Invalid escape", 9),
        ('name. = "x"', "Expected a field name after '.'", 7),
        ("name # 1", "Unexpected character '#'", 6),
        ("size > 9223372036854775808", "is too large", 8),
        ("size > 1e400", "is too large", 8),
        ('AND = "x"', "Expected a field name", 1),
        ("name = undefined", "Expected a value after '='", 8),
    ],
)
def test_errors_name_the_problem_and_position(text, problem, position):
    with pytest.raises(QueryError) as caught:
        bbql.parse(text)
    assert problem in caught.value.problem
    assert caught.value.position == position
    assert f"at position {position}" in str(caught.value)


def test_limits():
    with pytest.raises(QueryError, match="longer than"):
        bbql.parse('name = "' + "x" * bbql.MAX_QUERY_LENGTH + '"')
    with pytest.raises(QueryError, match="nested"):
        bbql.parse("(" * 40 + 'name = "x"' + ")" * 40)
    with pytest.raises(QueryError, match="empty"):
        bbql.parse("   ")


def test_check_refuses_unknown_fields_as_bitbucket_words_it():
    with pytest.raises(QueryError) as caught:
        bbql.check(bbql.parse('name = "x" AND commit.date > 2011-05-18'), FIELDS)
    assert caught.value.problem == 'Field "commit.date" does not support filtering'
    assert caught.value.position == 16


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("size ~ 5", "needs a text field"),
        ('size = "5"', "compare it with a number, not a string"),
        ("name = 5", "compare it with a string, not a number"),
        ("is_private > true", "compare it with = or !="),
        ("is_private = 1", "compare it with true or false"),
        ('updated_on > "yesterday"', "is not one"),
        ("updated_on > 5", "compare it with a datetime"),
        ("name > null", "null can only be compared"),
    ],
)
def test_check_refuses_mismatched_types(text, problem):
    with pytest.raises(QueryError, match=problem):
        bbql.check(bbql.parse(text), FIELDS)


def test_check_turns_quoted_datetimes_into_datetimes():
    q = bbql.check(bbql.parse('updated_on >= "2020-01-02T03:04:05+01:00"'), FIELDS)
    assert isinstance(q, Comparison)
    assert q.value == datetime(2020, 1, 2, 2, 4, 5, tzinfo=UTC)


def test_sort():
    assert bbql.parse_sort("-updated_on", FIELDS) == bbql.Sort("updated_on", True)
    assert bbql.parse_sort("name", FIELDS) == bbql.Sort("name", False)
    with pytest.raises(QueryError, match='Field "nope" does not support sorting'):
        bbql.parse_sort("-nope", FIELDS)


ITEM = {
    "state": "OPEN",
    "name": "Feature/Login",
    "updated_on": datetime(2020, 1, 1, tzinfo=UTC),
    "size": 10,
    "is_private": True,
    "mainbranch.name": None,
    "reviewers.uuid": "{u}",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('state = "OPEN"', True),
        ('state != "OPEN"', False),
        ('name ~ "login"', True),
        ('name !~ "LOGIN"', False),
        ("size > 9 AND size <= 10", True),
        ("size >= 11 OR is_private = false", False),
        ("updated_on > 2019-12-31T23:59:59Z", True),
        ("updated_on < 2020-01-01", False),
        ("mainbranch.name = null", True),
        ('mainbranch.name != "main"', True),
        ('mainbranch.name ~ "m"', False),
        ('(state = "MERGED" OR name ~ "feat") AND is_private = true', True),
    ],
)
def test_matches_in_memory(text, expected):
    q = bbql.check(bbql.parse(text), FIELDS)
    assert bbql.matches(q, ITEM.__getitem__) is expected


# -- fuzzing: whatever the input, a tree or a QueryError, never anything else ----------------

_pieces = st.sampled_from([
    "name", "size", "updated_on", "is_private", "mainbranch.name", "state", ".", "(", ")",
    "=", "!=", "~", "!~", ">", ">=", "<", "<=", "AND", "OR", "and", "true", "false", "null",
    "99999999999999999999", "-9223372036854775808",
    '"x"', '"a\\"b"', '"', "\\", "5", "-3.25", "1e9", "1e999", "2020-01-01", "2020-02-30",
    "2020-01-01T10:00:00+02:00", "2020-01-01T25:00", " ", "\t", "\x00", "é", "\ud800", "#",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(_pieces, max_size=25).map(" ".join))
def test_token_soup_never_raises_anything_but_query_errors(text):
    _parse_and_check(text)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_any_text_never_raises_anything_but_query_errors(text):
    _parse_and_check(text)


def _parse_and_check(text):
    try:
        q = bbql.check(bbql.parse(text), FIELDS)
    except QueryError as error:
        assert str(error)
        return
    # What parses and checks can be evaluated on an item without a type error.
    bbql.matches(q, ITEM.__getitem__)


@st.composite
def _queries(draw, depth=0):
    if depth > 2 or draw(st.booleans()):
        path, kind = draw(st.sampled_from([
            ("name", st.text(alphabet="ab\"\\ é", max_size=4)),
            ("size", st.integers(-5, 5)),
            ("is_private", st.booleans()),
        ]))
        value = draw(kind)
        ops = ["=", "!="] if path == "is_private" else ["=", "!=", ">", "<", ">=", "<="]
        if path == "name":
            ops += ["~", "!~"]
        return path, draw(st.sampled_from(ops)), value
    parts = draw(st.lists(_queries(depth + 1), min_size=2, max_size=3))
    return draw(st.sampled_from(["AND", "OR"])), parts


def _render(q):
    if isinstance(q[1], list):
        return "(" + f" {q[0]} ".join(_render(p) for p in q[1]) + ")"
    path, op, value = q
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    else:
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{path} {op} {text}"


def _oracle(q, item):
    if isinstance(q[1], list):
        results = [_oracle(p, item) for p in q[1]]
        return all(results) if q[0] == "AND" else any(results)
    path, op, value = q
    have = item[path]
    return {
        "=": have == value, "!=": have != value, ">": have > value, "<": have < value,
        ">=": have >= value, "<=": have <= value,
        "~": str(value).lower() in str(have).lower(),
        "!~": str(value).lower() not in str(have).lower(),
    }[op]


@settings(max_examples=300, deadline=None)
@given(_queries(), st.text(alphabet="ab\"\\ é", max_size=4), st.integers(-5, 5), st.booleans())
def test_rendered_queries_parse_back_and_evaluate_as_an_independent_oracle(q, name, size, private):
    item = {**ITEM, "name": name, "size": size, "is_private": private}
    parsed = bbql.check(bbql.parse(_render(q)), FIELDS)
    assert bbql.matches(parsed, item.__getitem__) is _oracle(q, item)


def test_offsets_beyond_a_day_are_refused():
    with pytest.raises(QueryError, match="Invalid date"):
        bbql.parse("updated_on > 2020-01-01T00:00:00+25:00")
    assert timezone(timedelta(hours=2))  # the offsets that exist are read (above)
