"""The one door for reads: what a party may see of an entry. Every read route, stream and export asks here."""

from __future__ import annotations

from typing import Any


def may_see(party: str, audience: list[str] | str) -> bool:
    """A party sees an entry and its body only when it is in the entry's audience."""
    parties = audience.split() if isinstance(audience, str) else audience
    return party in parties


def redacted(seq: int, leaf_hash: bytes) -> dict[str, Any]:
    """What a party outside the audience receives: enough to verify the tree, nothing of the content."""
    return {"seq": seq, "leaf_hash": leaf_hash.hex()}
