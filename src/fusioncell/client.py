"""A small Python client of the fusioncell API: signs and submits on the caller's machine, reads, follows the
live stream, and verifies proofs against signed tree heads. The CLI's witness uses it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from fusioncell.clock import SystemClock, format_time
from fusioncell.errors import FusioncellError
from fusioncell.record.canonical import b64d, canonical
from fusioncell.record.format import Signer
from fusioncell.record.merkle import verify_consistency, verify_inclusion
from fusioncell.record.signing import verify


class ApiError(FusioncellError):
    """A problem+json answer from the server, with its stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.status = status


class Client:
    def __init__(self, url: str, *, token: str | None = None, http: httpx.Client | None = None,
                 timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http or httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._cell_key: bytes | None = None

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, "/api/v1" + path, **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
                raise ApiError(response.status_code, problem.get("code", "error"), problem.get("detail", ""))
            except ValueError:
                raise ApiError(response.status_code, "error", response.text[:200]) from None
        return response.json() if response.content else None

    # -- reading -----------------------------------------------------------------------------------------

    def tree(self) -> dict[str, Any]:
        return self._call("GET", "/tree")

    def records(self, *, after: int = -1, limit: int = 100) -> dict[str, Any]:
        return self._call("GET", "/records", params={"after": after, "limit": limit})

    def iter_records(self, *, after: int = -1) -> Iterator[dict[str, Any]]:
        while True:
            page = self.records(after=after, limit=1000)
            yield from page["items"]
            if page["next_after"] is None:
                return
            after = page["next_after"]

    def record(self, seq: int) -> dict[str, Any]:
        return self._call("GET", f"/records/{seq}")

    def proof(self, seq: int, size: int | None = None) -> dict[str, Any]:
        return self._call("GET", f"/records/{seq}/proof", params={"size": size} if size else None)

    def consistency(self, first: int, second: int) -> list[bytes]:
        answer = self._call("GET", "/tree/consistency", params={"first": first, "second": second})
        return [bytes.fromhex(h) for h in answer["proof"]]

    def cell_key(self) -> bytes:
        """The cell's public key, from the genesis entry (every member may read it)."""
        if self._cell_key is None:
            self._cell_key = b64d(self.record(0)["body"]["cell"]["public_key"])
        return self._cell_key

    def export(self, path: Path) -> Path:
        with self.http.stream("GET", "/api/v1/export") as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, "error", response.text[:200])
            with path.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        return path

    def stream(self, *, after: int = -1, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Follow the live stream; resumable with after=<last seq received>."""
        from websockets.sync.client import connect

        ws_url = self.url.replace("http://", "ws://").replace("https://", "wss://") + f"/api/v1/stream?after={after}"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        with connect(ws_url, additional_headers=headers, open_timeout=10) as ws:
            while True:
                yield json.loads(ws.recv(timeout=timeout))

    # -- writing -----------------------------------------------------------------------------------------

    def submit(self, signer: Signer, *, kind: str, body: dict[str, Any], audience: list[str],
               refs: list[str] | None = None) -> dict[str, Any]:
        """Sign here, with a key that never leaves this machine, and append."""
        submission, sig = signer.submit(kind=kind, body=body, audience=audience, refs=refs,
                                        created=format_time(SystemClock().now()))
        return self._call("POST", "/records", json={"submission": submission, "sig": sig, "body": body})

    def cosign(self, *, size: int, key_id: str, sig: str) -> dict[str, Any]:
        return self._call("POST", "/tree/cosignatures", json={"size": size, "key": key_id, "sig": sig})

    # -- verifying ---------------------------------------------------------------------------------------

    def verify_head(self, head: dict[str, Any]) -> bool:
        return verify(self.cell_key(), canonical(head["tree_head"]), head["sig"])

    def verify_entry(self, seq: int) -> bool:
        """The entry's inclusion proof checks out against a tree head signed by the cell."""
        answer = self.proof(seq)
        if not self.verify_head(answer):
            return False
        head = answer["tree_head"]
        return verify_inclusion(bytes.fromhex(answer["leaf_hash"]), seq, head["size"],
                                [bytes.fromhex(h) for h in answer["proof"]], bytes.fromhex(head["root"]))

    def verify_consistency(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        first, second = old["size"], new["size"]
        if first == second:
            return old["root"] == new["root"]
        return verify_consistency(first, second, bytes.fromhex(old["root"]), bytes.fromhex(new["root"]),
                                  self.consistency(first, second))
