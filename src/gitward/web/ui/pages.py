"""How a page runs: form, CSRF, then the pipeline with the session cookie, then the answer.

Every page is a sync handler `(view, caller) -> Response` registered with `Pages.get` or
`Pages.post`; it runs inside `Pipeline.run` (one unit of work, in a worker thread), like every
REST endpoint, with the caller the session cookie authenticates (or anonymous). Before that,
on every POST and with no way to opt out, the form is read and its `csrf_token` checked
(web/ui/csrf.py): a POST without a valid one is a 403 and the session is never looked at.

Access is never decided here or in a handler: handlers call the services, which ask
`Caller.require`. A ServiceError becomes an HTML error page (404 for what the caller may not
see); an anonymous caller who needs to sign in is sent to /login and back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gitward.credentials.registry import (
    AuthenticationFailed,
    AuthenticationThrottled,
    Presented,
)
from gitward.credentials.session import COOKIE as SESSION_COOKIE
from gitward.credentials.session import ENDED
from gitward.domain.identity import CredentialKind
from gitward.runtime import Runtime
from gitward.services.caller import Caller
from gitward.services.errors import ServiceError, Unauthenticated
from gitward.web.hosts import base_url
from gitward.web.pipeline import SAFE_METHODS, Ingress, Pipeline, pipeline_of
from gitward.web.ui import csrf
from gitward.web.ui.render import error_page, html

PASSWORD_PAGE = "/account/password"
#: The pages a session with a temporary password may open (the policy allows it nothing but
#: changing the password).
BEFORE_PASSWORD_CHANGE = frozenset({PASSWORD_PAGE, "/logout", "/login"})
MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 200
FORM_TYPE = "application/x-www-form-urlencoded"


class SignInFailed(AuthenticationFailed):
    """A password typed into a page (sign-in, or again for a fresh session) was refused.

    Raised out of the unit of work, so that `Pipeline.run` audits it and counts it against
    guessing as it does every failed authentication; the page then shows its form again."""

    @classmethod
    def of(cls, failure: AuthenticationFailed) -> SignInFailed:
        return cls(failure.message, audit_subject=failure.audit_subject,
                   password_attempt=failure.password_attempt)


class BadForm(Exception):
    pass


@dataclass
class View:
    """What a handler knows of its request besides the caller."""

    request: Request
    runtime: Runtime
    pipeline: Pipeline
    # The form carries passwords, and the token is a secret: both out of any repr.
    form: dict[str, list[str]] = field(repr=False)
    csrf: str = field(repr=False)
    params: dict[str, str]
    #: Cookies to set (name, value, max_age) or delete (value None) on the answer.
    cookies: list[tuple[str, str | None, int]] = field(default_factory=list)

    def field(self, name: str) -> str:
        values = self.form.get(name)
        return values[0].strip() if values else ""

    def raw(self, name: str) -> str:
        """A field as typed (passwords are not stripped)."""
        values = self.form.get(name)
        return values[0] if values else ""

    def fields(self, name: str) -> list[str]:
        return [value.strip() for value in self.form.get(name, []) if value.strip()]

    @property
    def client_ip(self) -> str | None:
        return self.request.client.host if self.request.client else None

    @property
    def path(self) -> str:
        return self.request.url.path

    def query(self, name: str) -> str:
        return self.request.query_params.get(name, "")

    def render(
        self, caller: Caller, template: str, status: int = 200, **context: Any
    ) -> Response:
        """The page with the context every page shares: who is signed in, the CSRF token."""
        me = caller.ctx.user if caller.ctx.credential is CredentialKind.SESSION else None
        base = {"me": me, "csrf": self.csrf, "path": self.path, "notice": "", "error": "",
                "fresh_minutes": self.runtime.settings.session_fresh_seconds // 60}
        return html(template, {**base, **context}, status)

    def sign_in(self, caller: Caller, username: str, password: str, otp: str) -> Caller:
        """The caller of a password typed into a page, through the pipeline's sign-in, or
        SignInFailed. A token, app password or OAuth token typed as a password is refused
        before anything authenticates it: none of them may sign in to the pages."""
        if _looks_like_token(password):
            raise SignInFailed(
                "Tokens, app passwords and OAuth tokens cannot sign in to the web interface: "
                "use your account password.",
                audit_subject=f"user:{username[:64]}",
            )
        presented = Presented("basic", password, username, self.client_ip, otp or None)
        try:
            signed = self.pipeline.sign_in(caller, presented)
        except AuthenticationThrottled:
            raise
        except AuthenticationFailed as failure:
            raise SignInFailed.of(failure) from None
        if signed.ctx.credential is not CredentialKind.PASSWORD:
            raise SignInFailed("Sign in with your account password.",
                               audit_subject=f"user:{username[:64]}")
        return signed

    def set_session(self, secret: str) -> None:
        lifetime = self.runtime.settings.session_lifetime_seconds
        self.cookies.append((SESSION_COOKIE, secret, lifetime))

    def clear_session(self) -> None:
        self.cookies.append((SESSION_COOKIE, None, 0))


def _looks_like_token(secret: str) -> bool:
    return secret.startswith("gw") and "_" in secret[2:7]


Handler = Callable[[View, Caller], Response]
#: Shows the form again after SignInFailed (in a read-only unit of its own).
Failed = Callable[[View, Caller, str], Response]


def safe_next(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site (never another host, scheme or `//`)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ord(c) < 32 or c == "\\" for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def login_url(path: str, query: str = "", *, ended: bool = False) -> str:
    target = path + ("?" + query if query else "")
    url = "/login?next=" + quote(target, safe="/")
    return url + ("&ended=1" if ended else "")


async def _read_form(request: Request) -> dict[str, list[str]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadForm("The form is too large.")
    if not body:
        return {}
    if content_type != FORM_TYPE:
        raise BadForm(f"Forms are sent as {FORM_TYPE}.")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadForm("The form could not be read.") from None
    form: dict[str, list[str]] = {}
    for name, value in pairs:
        if "\x00" in value or "\x00" in name:
            raise BadForm("The form holds a NUL character.")
        form.setdefault(name, []).append(value)
    return form


class Pages:
    """The routes of the pages."""

    def __init__(self) -> None:
        self.routes: list[BaseRoute] = []

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self._add(path, "GET", None, True)

    def post(
        self, path: str, *, failed: Failed | None = None, session: bool = True
    ) -> Callable[[Handler], Handler]:
        """A state-changing page: CSRF-checked before anything else. `session=False` for
        sign-in, which starts from no session whatever cookie the browser still has."""
        return self._add(path, "POST", failed, session)

    def _add(
        self, path: str, method: str, failed: Failed | None, session: bool
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            async def endpoint(request: Request) -> Response:
                return await _serve(request, handler, failed, session)

            endpoint.__name__ = handler.__name__
            self.routes.append(Route(path, endpoint, methods=[method], name=handler.__name__))
            return handler

        return register


async def _serve(
    request: Request, handler: Handler, failed: Failed | None, use_session: bool
) -> Response:
    runtime: Runtime = request.app.state.runtime
    pipeline = pipeline_of(request)
    key = runtime.secret_key
    write = request.method not in SAFE_METHODS
    form: dict[str, list[str]] = {}
    if write:
        try:
            form = await _read_form(request)
        except BadForm as error:
            return error_page(400, str(error))
        # NOTE: before the session is looked at (see web/ui/csrf.py).
        tokens = form.get(csrf.FIELD, [])
        refusal = csrf.check(key, request, tokens[0] if len(tokens) == 1 else None)
        if refusal is not None:
            return error_page(403, refusal)
    browser, new_browser = csrf.browser_secret(request)
    cookie = request.cookies.get(SESSION_COOKIE) or None
    view = View(
        request, runtime, pipeline, form,
        csrf.token_for(key, browser, cookie), dict(request.path_params),
    )
    ingress = Ingress(
        client_ip=request.client.host if request.client else None,
        write=write,
        cookie=cookie if use_session else None,
        base_url=base_url(request),
    )
    def work(caller: Caller) -> Response:
        if caller.ctx.must_change_password and request.url.path not in BEFORE_PASSWORD_CHANGE:
            # A temporary password: the policy refuses everything else, so go there first.
            return RedirectResponse(PASSWORD_PAGE, 303)
        return handler(view, caller)

    try:
        response = await pipeline.call(ingress, work)
    except SignInFailed as failure:
        if failed is None:
            raise
        message = failure.message

        def again(caller: Caller) -> Response:
            return failed(view, caller, message)

        response = await pipeline.call(replace(ingress, write=False), again)
    except AuthenticationThrottled as throttled:
        response = error_page(429, throttled.message, {"Retry-After": str(throttled.retry_after)})
    except AuthenticationFailed:
        # The session cookie itself: ended, expired or of a deactivated account.
        view.clear_session()
        response = RedirectResponse(login_url(request.url.path, request.url.query, ended=True),
                                    303)
    except Unauthenticated:
        response = RedirectResponse(login_url(request.url.path, request.url.query), 303)
    except ServiceError as error:
        response = error_page(error.status, error.message)
    if new_browser:
        view.cookies.append((csrf.COOKIE, browser, 400 * 24 * 3600))
    secure = request.url.scheme == "https"
    for name, value, max_age in view.cookies:
        if value is None:
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
        else:
            response.set_cookie(name, value, max_age=max_age, path="/", secure=secure,
                                httponly=True, samesite="lax")
    return response


__all__ = ["ENDED", "Pages", "SignInFailed", "View", "login_url", "safe_next"]
