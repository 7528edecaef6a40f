"""`GET /rest/api/1.0/application-properties`: which Bitbucket Server this is.

Clients decide from `version` which calls the server supports (Renovate requires a semver
there), so it names the Bitbucket Server release whose REST API Gitward follows, not
Gitward's own version, which `displayName` carries.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gitward.web.pipeline import CallerDep, UnitRoute

router = APIRouter(route_class=UnitRoute, prefix="/api/1.0", tags=["server"])

#: The Bitbucket Server release whose REST API the Server surface follows.
SERVER_API_VERSION = "8.19.0"
BUILD_NUMBER = "8019000"
#: When that release was built (epoch milliseconds, as Server gives it: a string).
BUILD_DATE = "1715644800000"
GITWARD_VERSION = "0.1.0"


@router.get("/application-properties")
def application_properties(caller: CallerDep) -> dict[str, Any]:
    """Answered to anyone, as Bitbucket Server does (with `X-AUSERNAME` when signed in)."""
    return {
        "version": SERVER_API_VERSION,
        "buildNumber": BUILD_NUMBER,
        "buildDate": BUILD_DATE,
        "displayName": f"Gitward {GITWARD_VERSION}",
    }
