"""SQLAlchemy 2 models, one module per aggregate. The schema itself is owned by the Alembic
migrations (storage/migrations); importing this package registers every table on
`Base.metadata`, which is what Alembic compares against."""

from gitward.storage.models.accounts import RateLimitCounter, RecoveryCode, User
from gitward.storage.models.audit import AuditEvent, PendingPush
from gitward.storage.models.base import Base, UTCDateTime, new_uuid, utcnow
from gitward.storage.models.build_statuses import BuildStatus
from gitward.storage.models.credentials import (
    ApiToken,
    AppPassword,
    CredentialGeneration,
    PersonalAccessToken,
    ResourceAccessToken,
    WebSession,
)
from gitward.storage.models.oauth import (
    OAuthAccessToken,
    OAuthAuthorizationCode,
    OAuthConsumer,
    OAuthJwtAssertion,
    OAuthRefreshToken,
)
from gitward.storage.models.pull_requests import (
    PullRequest,
    PullRequestActivity,
    PullRequestComment,
    PullRequestCounter,
    PullRequestParticipant,
)
from gitward.storage.models.workspaces import (
    Project,
    ProjectGrant,
    Repository,
    RepositoryGrant,
    Workspace,
    WorkspaceMember,
)

__all__ = [
    "ApiToken",
    "AppPassword",
    "AuditEvent",
    "Base",
    "BuildStatus",
    "CredentialGeneration",
    "OAuthAccessToken",
    "OAuthAuthorizationCode",
    "OAuthConsumer",
    "OAuthJwtAssertion",
    "OAuthRefreshToken",
    "PendingPush",
    "PersonalAccessToken",
    "Project",
    "ProjectGrant",
    "PullRequest",
    "PullRequestActivity",
    "PullRequestComment",
    "PullRequestCounter",
    "PullRequestParticipant",
    "RateLimitCounter",
    "RecoveryCode",
    "Repository",
    "RepositoryGrant",
    "ResourceAccessToken",
    "UTCDateTime",
    "User",
    "WebSession",
    "Workspace",
    "WorkspaceMember",
    "new_uuid",
    "utcnow",
]
