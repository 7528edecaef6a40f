"""A user's public profile, `/users/{username}`: the page the API's `links.html` of a user
object names. As `GET /2.0/users/{user}`: for signed-in callers only (accounts cannot be
enumerated anonymously), never the email, deactivated accounts not found."""

from __future__ import annotations

from starlette.responses import Response

from gitward.services import users
from gitward.services.caller import Caller
from gitward.web.ui.pages import Pages, View

pages = Pages()

#: Where a user's profile lives (the Cloud API's user `links.html`).
PROFILE = "/users/{username}"


@pages.get(PROFILE)
def profile(view: View, caller: Caller) -> Response:
    user = users.public_profile(caller, view.params["username"])
    return view.render(caller, "user.html", title=user.display_name or user.username,
                       user=user, initial=(user.display_name or user.username)[:1].upper())
