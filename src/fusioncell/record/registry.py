"""Who may sign what, as of a given seq: the cell, its parties and the key registry, replayed from identity
entries. Pure: the verifier builds it from a log or bundle, the sequencer loads it from the projections."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from fusioncell.record.canonical import b64d
from fusioncell.record.format import CELL_PARTY
from fusioncell.record.signing import key_id as compute_key_id
from fusioncell.record.signing import valid_public_key

GENESIS = "cell.genesis"
KEY_ADDED = "identity.key_added"
KEY_REVOKED = "identity.key_revoked"
IDENTITY_KINDS = frozenset({GENESIS, KEY_ADDED, KEY_REVOKED})


class SignerRefused(Exception):
    """The signer of a submission is not allowed; `code` is the stable error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class KeyInfo:
    key_id: str
    public_key: bytes
    party: str
    holder: str
    purpose: str = "sign"
    custody: str = "cell"
    added_seq: int = 0
    revoked_seq: int | None = None


@dataclass
class Registry:
    cell_id: str
    cell_key_id: str
    roles: dict[str, str]  # party id -> party | supervisor | observer
    keys: dict[str, KeyInfo] = field(default_factory=dict)
    _good_audiences: set[tuple[tuple[str, ...], str, bool]] = field(default_factory=set, init=False, repr=False,
                                                                    compare=False)

    @classmethod
    def from_genesis(cls, body: dict[str, Any]) -> Registry:
        cell = body["cell"]
        public = b64d(cell["public_key"])
        kid = compute_key_id(public)
        registry = cls(cell_id=cell["id"], cell_key_id=kid, roles={p["id"]: p["role"] for p in body["parties"]})
        registry.keys[kid] = KeyInfo(kid, public, CELL_PARTY, CELL_PARTY, purpose="sign", custody="cell")
        return registry

    @property
    def parties(self) -> list[str]:
        return sorted(self.roles)

    @cached_property
    def supervisors(self) -> list[str]:
        # Cached: checked for every append, and roles are fixed once a registry is built (a new identity entry
        # makes the sequencer build a new registry).
        return sorted(p for p, role in self.roles.items() if role == "supervisor")

    def check_identity(self, submission: dict[str, Any], body: dict[str, Any]) -> None:
        """Who may enrol or revoke which key: the cell any, a party only its own."""
        kind, author_party = submission["kind"], submission["party"]
        if kind == KEY_ADDED:
            if body["party"] not in self.roles:
                raise SignerRefused(f"no party {body['party']!r} in this cell", "bad_body")
            if author_party not in (CELL_PARTY, body["party"]):
                raise SignerRefused(f"{author_party} cannot enrol a key for {body['party']}", "not_allowed")
            public = b64d(body["public_key"])
            if not valid_public_key(public):
                raise SignerRefused("public_key is not an Ed25519 public key of prime order (it is of small order, "
                                    "has a torsion component, is not on the curve or is not canonically encoded): "
                                    "enrol one made by `fusioncell key generate` or another standard Ed25519 key "
                                    "generator", "bad_key")
            kid = compute_key_id(public)
            if kid in self.keys:
                raise SignerRefused(f"key {kid} is already enrolled", "duplicate_key")
        elif kind == KEY_REVOKED:
            info = self.keys.get(body["key_id"])
            if info is None or info.party == CELL_PARTY:
                raise SignerRefused(f"no enrolled party key {body['key_id']}", "unknown_key")
            if author_party not in (CELL_PARTY, info.party):
                raise SignerRefused(f"{author_party} cannot revoke a key of {info.party}", "not_allowed")
            if info.revoked_seq is not None:
                raise SignerRefused(f"key {info.key_id} was already revoked at seq {info.revoked_seq}", "revoked_key")

    def apply(self, seq: int, kind: str, body: dict[str, Any]) -> None:
        """Update the registry with an identity entry that has been accepted at seq."""
        if kind == KEY_ADDED:
            public = b64d(body["public_key"])
            kid = compute_key_id(public)
            self.keys[kid] = KeyInfo(
                kid, public, body["party"], body["holder"], body["purpose"], body["custody"], added_seq=seq
            )
        elif kind == KEY_REVOKED:
            info = self.keys[body["key_id"]]
            if info.revoked_seq is None:
                info.revoked_seq = seq

    def signer(self, seq: int, submission: dict[str, Any]) -> KeyInfo:
        """The key that may sign this submission at seq, or SignerRefused saying why not."""
        kid = submission["key"]
        info = self.keys.get(kid)
        if info is None or info.added_seq >= seq and seq != 0:
            raise SignerRefused(f"key {kid} is not enrolled in this cell", "unknown_key")
        if info.revoked_seq is not None and info.revoked_seq < seq:
            raise SignerRefused(f"key {kid} was revoked at seq {info.revoked_seq}", "revoked_key")
        if info.purpose != "sign":
            raise SignerRefused(f"key {kid} is a {info.purpose} key and signs no entries", "wrong_key")
        if info.party != submission["party"] or info.holder != submission["author"]:
            raise SignerRefused(
                f"key {kid} belongs to {info.holder} of {info.party}, "
                f"not to {submission['author']} of {submission['party']}",
                "wrong_author",
            )
        return info

    def check_audience(self, submission: dict[str, Any], *, full: bool) -> None:
        audience = submission["audience"]
        # The audiences already found good: a handful per cell, checked for every append. Roles are fixed once a
        # registry is built, so a good audience stays good.
        seen = (tuple(audience), submission["party"], full)
        if seen in self._good_audiences:
            return
        unknown = [p for p in audience if p not in self.roles]
        if unknown:
            raise SignerRefused(f"audience names unknown parties {unknown}; parties are {self.parties}", "bad_audience")
        party = submission["party"]
        if party != CELL_PARTY and party not in audience:
            raise SignerRefused(f"audience must include the author's party {party}", "bad_audience")
        missing = [p for p in self.supervisors if p not in audience]
        if missing:
            raise SignerRefused(f"audience must include the supervising parties {missing}", "bad_audience")
        if full and audience != self.parties:
            raise SignerRefused(
                f"{submission['kind']} is released to every party: audience must be {self.parties}", "bad_audience"
            )
        if len(self._good_audiences) < 1024:
            self._good_audiences.add(seen)
