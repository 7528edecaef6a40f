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
    NarrowedRevocation,
    PersonalAccessToken,
    ResourceAccessToken,
    WebSession,
)
from gitward.storage.models.notices import CredentialSighting, Notification
from gitward.storage.models.oauth import (
    OAuthAccessToken,
    OAuthAuthorizationCode,
    OAuthConsumer,
    OAuthJwtAssertion,
    OAuthRefreshToken,
)
from gitward.storage.models.oidc import OidcMintedToken, OidcTrust, OidcUsedJti
from gitward.storage.models.pull_requests import (
    PullRequest,
    PullRequestActivity,
    PullRequestComment,
    PullRequestCounter,
    PullRequestParticipant,
)
from gitward.storage.models.usage import CredentialUse
from gitward.storage.models.webhooks import Webhook, WebhookAttempt, WebhookDelivery
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
    "CredentialSighting",
    "CredentialUse",
    "NarrowedRevocation",
    "Notification",
    "OAuthAccessToken",
    "OAuthAuthorizationCode",
    "OAuthConsumer",
    "OAuthJwtAssertion",
    "OAuthRefreshToken",
    "OidcMintedToken",
    "OidcTrust",
    "OidcUsedJti",
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
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "Workspace",
    "WorkspaceMember",
    "new_uuid",
    "utcnow",
]
