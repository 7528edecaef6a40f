"""Templates (Jinja2, autoescaped) and the headers every page carries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_URL = "/static/ui"

#: No inline scripts or styles, nothing from elsewhere, never framed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show one person's data (and secrets, once): never kept by a cache.
    "Cache-Control": "no-store",
}


def _when(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d")


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
             ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"),
             ("curl/", "curl"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
            ("Linux", "Linux"))


def _browser(user_agent: str) -> str:
    """A User-Agent as a person names it ("Chrome on Linux")."""
    name = next((label for token, label in _BROWSERS if token in user_agent), "")
    system = next((label for token, label in _SYSTEMS if token in user_agent), "")
    if "Headless" in user_agent and name:
        name = "Headless " + name
    if name and system:
        return f"{name} on {system}"
    return name or system or "Unknown browser"


_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(("html",), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["when"] = _when
_env.filters["day"] = _day
_env.filters["browser"] = _browser
_env.globals["static"] = lambda name: f"{STATIC_URL}/{name}"


def html(template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """The page `template` rendered with `context`, with the pages' headers."""
    body = _env.get_template(template).render(**context)
    return HTMLResponse(body, status, dict(HEADERS))


def error_page(status: int, message: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The pages' error shape: an HTML page that says what went wrong and where to go."""
    titles = {
        400: "That did not work",
        401: "Sign in needed",
        403: "Not allowed",
        404: "Page not found",
        405: "Not allowed here",
        409: "Already exists",
        413: "Too large",
        429: "Too many attempts",
        503: "Try again shortly",
    }
    response = html(
        "error.html",
        {"me": None, "csrf": "", "notice": "", "error": "", "path": "",
         "title": titles.get(status, "Something went wrong"),
         "status": status, "message": message},
        status,
    )
    response.headers.update(headers or {})
    return response
