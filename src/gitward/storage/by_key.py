"""A repository addressed as Bitbucket Server addresses it: by project key and slug.

Project keys are becoming unique across the whole site; until the schema says so, a key that
two workspaces share names no repository here (the Server API answers 404 for it), so that a
request can never reach into a workspace the caller did not name.
"""

from __future__ import annotations

from sqlalchemy import String, bindparam, func, select

from gitward.storage import views
from gitward.storage.common import storable
from gitward.storage.models import Project, Repository
from gitward.storage.store import Store
from gitward.storage.views import RepositoryView

_P = Project.__table__.c
_R = Repository.__table__.c

#: The projects again, under another name, for counting those that share the key.
_SAME_KEY = Project.__table__.alias("same_key")

#: One repository by project key (upper case) and slug (lower case), provided no other
#: workspace has a project with that key.
_BY_KEY_AND_SLUG = views.JOINED.where(
    _P.key == bindparam("key", type_=String),
    _R.slug == bindparam("slug", type_=String),
    select(func.count())
    .select_from(_SAME_KEY)
    .where(_SAME_KEY.c.key == bindparam("key", type_=String))
    .scalar_subquery()
    == 1,
)


def repository_view_by_key(store: Store, project_key: str, slug: str) -> RepositoryView | None:
    """The repository `slug` of the project whose key is `project_key` (case-insensitive),
    as a view: from the read cache while the generation is unchanged, else one statement."""
    if not storable(project_key) or not storable(slug):
        return None
    key, clean = project_key.upper(), slug.lower()
    unit = store._unit

    def read() -> RepositoryView | None:
        row = unit.session.connection().execute(
            _BY_KEY_AND_SLUG, {"key": key, "slug": clean}
        ).one_or_none()
        return views.repository_view(row) if row is not None else None

    return unit.cached(("repository-by-key", key, clean), read)
