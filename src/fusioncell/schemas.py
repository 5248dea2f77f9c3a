"""Request and response schemas of the HTTP API. Requests refuse unknown fields."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(Schema, Generic[T]):
    items: list[T]
    next_after: int | None = Field(description="Pass as ?after= for the next page; null at the end.")


class LoginRequest(Schema):
    member: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)
    totp: str | None = Field(default=None, max_length=10)


class LoginRead(Schema):
    member: str
    party: str
    roles: list[str]
    csrf_token: str


class TokenCreate(Schema):
    scopes: list[Literal["read", "write", "witness"]] = Field(min_length=1)
    days: int = Field(default=90, ge=1, le=366)


class TokenRead(Schema):
    token: str = Field(description="Shown once. Send as 'Authorization: Bearer <token>'.")
    scopes: list[str]


class RecordCreate(Schema):
    submission: dict[str, Any]
    sig: str = Field(max_length=100)
    body: dict[str, Any]


class RecordAccepted(Schema):
    seq: int
    leaf_hash: str
    time: str


class CosignatureCreate(Schema):
    size: int = Field(ge=1)
    key: str = Field(pattern=r"^[0-9a-f]{16}$")
    sig: str = Field(max_length=100)


class MemberCreate(Schema):
    member: str = Field(min_length=3, max_length=100)
    party: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=200)
    roles: list[Literal["liaison", "supervisor", "observer", "admin"]] = Field(min_length=1)
    password: str = Field(min_length=12, max_length=1000)


class MemberDisable(Schema):
    reason: str = Field(min_length=1, max_length=500)


class MemberRead(Schema):
    member: str
    party: str
    name: str
    roles: list[str]
    disabled: bool


class TotpSetupRead(Schema):
    secret: str
    uri: str


class TotpConfirm(Schema):
    code: str = Field(min_length=6, max_length=10)
