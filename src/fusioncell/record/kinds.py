"""The registry of kinds. A kind fixes the schema of its body, who may author it, to whom it must be released,
and how it changes the projections. Domain packages register their kinds when imported."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from fusioncell.errors import InvalidSubmission
from fusioncell.record.checks import Authors, unknown_kind

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from fusioncell.record.sequencer import Appended


class BodyModel(BaseModel):
    """Base of every body schema: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Apply = Callable[["Session", "Appended", Any], None]


@dataclass(frozen=True)
class Kind:
    name: str
    body: type[BodyModel]
    # Validates against current state and updates projections, inside the append's transaction. It sees only
    # the entry (its time, not a clock), so replaying the log rebuilds the same state.
    apply: Apply | None = None
    # Checks that need more than the log (templates, the gazetteer, what the author may see); run on every
    # live append, never on a rebuild, which replays only what was accepted.
    check: Callable[["Session", dict[str, Any], Any], None] | None = None
    by_cell: bool = False  # the cell may author it
    by_party: bool = True  # a party's member may author it
    full_audience: bool = False  # released to every party (identity: every verifier needs it)

    def parse_body(self, body: Any) -> BodyModel:
        try:
            return self.body.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
            )
            raise InvalidSubmission(f"body of {self.name} is invalid: {problems}", code="bad_body") from exc


_KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    existing = _KINDS.get(kind.name)
    if existing is not None and existing != kind:
        raise ValueError(f"kind {kind.name} registered twice")
    _KINDS[kind.name] = kind
    return kind


def get(name: str) -> Kind:
    kind = _KINDS.get(name)
    if kind is None:  # not registered yet, or not a kind: load every kind first (get runs for every submission)
        load_all()
        kind = _KINDS.get(name)
        if kind is None:
            raise unknown_kind(name)
    return kind


_AUTHORS: dict[str, Authors] = {}


def authors() -> dict[str, Authors]:
    """Who may author each kind, as record.checks takes it: {name: (by_cell, by_party)}."""
    load_all()
    if len(_AUTHORS) != len(_KINDS):
        _AUTHORS.update({name: (kind.by_cell, kind.by_party) for name, kind in _KINDS.items()})
    return _AUTHORS


def names() -> list[str]:
    load_all()
    return sorted(_KINDS)


_loaded = False


def load_all() -> None:
    """Import every domain package that registers kinds (once: `get` runs for every submission)."""
    global _loaded
    if _loaded:
        return
    import fusioncell.deadlines.engine  # noqa: F401
    import fusioncell.disputes.kinds  # noqa: F401
    import fusioncell.geo.kinds  # noqa: F401
    import fusioncell.hotline.kinds  # noqa: F401
    import fusioncell.identity.kinds  # noqa: F401
    import fusioncell.incidents.kinds  # noqa: F401
    import fusioncell.notices.kinds  # noqa: F401
    _loaded = True
