from __future__ import annotations

from datetime import datetime

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


class UserCreated(UserRead):
    password: str


class TokenCreate(BaseModel):
    user: PlainText = Field(min_length=1, max_length=100)
    name: PlainText = Field("api", min_length=1, max_length=100)


class TokenCreated(BaseModel):
    id: int
    user: str
    name: str
    token: str
