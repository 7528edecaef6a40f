"""Request bodies of the Cloud API. Unknown fields are ignored (as Bitbucket does); known
fields of the wrong type are a 400 naming the field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class WorkspaceCreate(Body):
    slug: str = Field(max_length=200)
    name: str | None = Field(default=None, max_length=255)


class MemberRole(Body):
    role: str = Field(max_length=32)


class ProjectCreate(Body):
    key: str = Field(max_length=200)
    name: str = Field(max_length=255)
    description: str | None = Field(default=None, max_length=10000)
    is_private: bool = True


class ProjectUpdate(Body):
    key: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=10000)
    is_private: bool | None = None


class ProjectRef(Body):
    key: str = Field(max_length=200)


class BranchRef(Body):
    name: str = Field(max_length=255)


class RepositoryCreate(Body):
    scm: str = "git"
    project: ProjectRef | None = None
    is_private: bool = True
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=10000)


class RepositoryUpdate(Body):
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=10000)
    is_private: bool | None = None
    project: ProjectRef | None = None
    mainbranch: BranchRef | None = None


class Permission(Body):
    permission: str = Field(max_length=32)
