"""A party's witness: follows the cell's signed tree heads, checks each is consistent with the last one it
saw (kept on its own disk), countersigns it, and raises an alarm on any fork or rewrite of history."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fusioncell.client import Client
from fusioncell.errors import FusioncellError
from fusioncell.record.canonical import b64d, b64e, canonical
from fusioncell.record.signing import SigningKey, key_id, public_bytes, sign


class WitnessAlarm(FusioncellError):
    code = "witness_alarm"


def describe(head: dict[str, Any]) -> str:
    return f"size {head['size']}, root {head['root']}, signed {head['time']}"


class Witness:
    def __init__(self, client: Client, *, party: str, key: SigningKey, state_path: Path) -> None:
        self.client = client
        self.party = party
        self.key = key
        self.key_id = key_id(public_bytes(key))
        self.state_path = state_path
        self.state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}

    def _save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(self.state_path)

    def check_once(self) -> dict[str, Any]:
        """Check the current head against the last one seen; countersign it; return it. Raises WitnessAlarm."""
        signed = self.client.tree()
        head = signed["tree_head"]
        # The cell key is pinned on first use and never taken from the server again.
        if "cell_key" not in self.state:
            self.state["cell_key"] = b64e(self.client.cell_key())
            self.state["cell"] = head["cell"]
        self.client._cell_key = b64d(self.state["cell_key"])
        if head["cell"] != self.state["cell"]:
            raise WitnessAlarm(f"ALARM: the server now speaks for cell {head['cell']!r}, not {self.state['cell']!r}")
        if not self.client.verify_head(signed):
            raise WitnessAlarm(f"ALARM: tree head ({describe(head)}) is not signed by the pinned cell key")
        last = self.state.get("head")
        if last is not None:
            if head["size"] < last["size"]:
                raise WitnessAlarm(f"ALARM: the log shrank: now {describe(head)}; before {describe(last)}")
            if not self.client.verify_consistency(last, head):
                raise WitnessAlarm(
                    f"ALARM: history was rewritten: tree head ({describe(head)}) is not consistent with the "
                    f"head this witness saw before ({describe(last)})"
                )
        if not any(c["party"] == self.party and c["key"] == self.key_id for c in signed["cosignatures"]):
            self.client.cosign(size=head["size"], key_id=self.key_id, sig=sign(self.key, canonical(head)))
        self.state["head"] = head
        self._save()
        return head
