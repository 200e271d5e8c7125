from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import Role
from app.ops.errors import PlainText


class UserCreate(BaseModel):
    name: PlainText = Field(min_length=1, max_length=100)
    role: Role
    password: PlainText | None = Field(None, min_length=8, max_length=200)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    role: Role
    active: bool
    created_at: datetime


class UserListed(UserRead):
    tokens: int = Field(description="live API tokens (not revoked, not expired)")


class UserCreated(UserRead):
    password: str


class UserUpdate(BaseModel):
    """Fields to change; either ends the user's sessions and cached credentials."""

    model_config = ConfigDict(extra="forbid")
    active: bool | None = None
    role: Role | None = None


class PasswordSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: PlainText | None = Field(
        None, min_length=8, max_length=200, description="omit to generate one"
    )


class PasswordOut(BaseModel):
    user: str
    password: str = Field(description="the new password (shown only now)")


class TokenCreate(BaseModel):
    user: PlainText = Field(min_length=1, max_length=100)
    name: PlainText = Field("api", min_length=1, max_length=100)
    expires_in: str | None = Field(
        None, max_length=20, description="e.g. 90d, 12h, 2w; omitted: never expires"
    )


class TokenCreated(BaseModel):
    id: int
    user: str
    name: str
    token: str
    expires_at: datetime | None = None


class TokenRead(BaseModel):
    id: int
    user: str
    name: str
    prefix: str
    state: Literal["active", "revoked", "expired"]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
