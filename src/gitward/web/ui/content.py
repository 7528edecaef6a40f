"""Rendering repository content for the pages: READMEs (Markdown, sanitised), highlighted
files and diffs. Nothing here reads a repository or decides access."""

from __future__ import annotations

from dataclasses import dataclass

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

#: Above this, a file is shown as plain text (highlighting is the slow part).
MAX_HIGHLIGHT_BYTES = 256 * 1024
#: Above this, a file is not shown at all.
MAX_SHOWN_BYTES = 2 * 1024 * 1024
README_NAMES = ("readme.md", "readme.markdown", "readme", "readme.txt", "readme.rst")

# Raw HTML in Markdown is not passed through (html=False) and the result is cleaned again by
# an allow-list sanitiser, so a README can neither script the page nor style it.
_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre",
    "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"},
               "td": {"align"}, "ol": {"start"}}
_formatter = HtmlFormatter(cssclass="highlight", linenos="inline", wrapcode=True)


def readme_name(names: list[str]) -> str | None:
    """The README among a directory's file names, if there is one."""
    by_lower = {name.lower(): name for name in names}
    return next((by_lower[n] for n in README_NAMES if n in by_lower), None)


def render_readme(name: str, text: str) -> Markup:
    if name.lower().endswith((".md", ".markdown")):
        rendered = _markdown.render(text)
    else:
        rendered = f"<pre>{Markup.escape(text)}</pre>"
    clean = nh3.clean(rendered, tags=_TAGS, attributes=_ATTRIBUTES,
                      url_schemes={"http", "https", "mailto"},
                      link_rel="noopener noreferrer nofollow")
    return Markup(clean)  # noqa: S704 - sanitised by nh3 with the allow-list above


def highlighted(path: str, text: str) -> Markup:
    """The file as highlighted HTML (Pygments' classes, styled by static/pygments.css)."""
    if len(text) > MAX_HIGHLIGHT_BYTES:
        lexer = TextLexer()
    else:
        try:
            lexer = get_lexer_for_filename(path, text)
        except ClassNotFound:
            lexer = TextLexer()
    return Markup(highlight(text, lexer, _formatter))  # noqa: S704 - Pygments escapes


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "hunk", "file" or "" (context)
    text: str


def diff_lines(patch: str) -> list[DiffLine]:
    """A unified diff as lines with their kind, for styling."""
    out: list[DiffLine] = []
    for line in patch.splitlines():
        if line.startswith(("diff --git", "index ", "--- ", "+++ ", "new file", "deleted file",
                            "similarity", "rename ", "old mode", "new mode", "Binary")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = ""
        out.append(DiffLine(kind, line))
    return out
