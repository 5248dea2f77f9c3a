"""Zone rules and their evaluation against an activity notice. Pure: shapes come in projected metres."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

CATEGORIES = ("troops", "tanks", "artillery", "air_defence", "aircraft", "drones")
ACTIVITIES = ("ground_movement", "patrol", "exercise", "flight", "engineering", "humanitarian_convoy", "demining",
              "other")
Category = Literal["troops", "tanks", "artillery", "air_defence", "aircraft", "drones"]
Activity = Literal["ground_movement", "patrol", "exercise", "flight", "engineering", "humanitarian_convoy",
                   "demining", "other"]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoPresence(_Rule):
    type: Literal["no_presence"]
    parties: list[str] = Field(min_length=1)


class MaxCount(_Rule):
    type: Literal["max_count"]
    category: Category
    max: int = Field(ge=0)
    max_calibre_mm: int | None = None  # artillery only: pieces above this calibre are banned outright


class Banned(_Rule):
    type: Literal["banned"]
    categories: list[Category] = Field(min_length=1)


class MinNotice(_Rule):
    type: Literal["min_notice"]
    hours: float = Field(gt=0)
    activity: Activity | Literal["*"] = "*"


class MinDistance(_Rule):
    type: Literal["min_distance"]
    metres: float = Field(gt=0)


Rule = Annotated[NoPresence | MaxCount | Banned | MinNotice | MinDistance, Field(discriminator="type")]


class Breach(NamedTuple):
    """A tuple, immutable: cheaper to make than a frozen dataclass, and every check makes some."""

    rule: str
    detail: str


# A rule's class is looked up by identity: isinstance on a pydantic model goes through ABCMeta, several times
# slower, and a zone's rules are read at every check. A subclass is found by isinstance.
_KINDS = (NoPresence, Banned, MaxCount, MinNotice, MinDistance)
_KIND_SET = frozenset(_KINDS)


def _kind(rule: Any) -> type | None:
    return next((k for k in _KINDS if isinstance(rule, k)), None)


def evaluate(rules: list[Any], *, party: str, activity: str, composition: dict[str, int], calibre_mm: int | None,
             notice_hours: float, concurrent: list[dict[str, int]]) -> list[Breach]:
    """The rules of one zone a notice would break. `concurrent`: compositions of the same party's other notices
    active in the zone at overlapping times (limits apply to their sum)."""
    breaches = []
    military = any(map(composition.get, CATEGORIES))  # a category with a count other than 0
    for rule in rules:
        kind = type(rule)
        if kind not in _KIND_SET:
            kind = _kind(rule)
        if kind is NoPresence:
            if party in rule.parties and military:
                breaches.append(Breach("no_presence", f"no military presence of {party} is allowed here"))
        elif kind is Banned:
            found = [c for c in rule.categories if composition.get(c, 0)]
            if found:
                breaches.append(Breach("banned", f"banned here: {', '.join(found)}"))
        elif kind is MaxCount:
            total = composition.get(rule.category, 0) + sum(c.get(rule.category, 0) for c in concurrent)
            if total > rule.max:
                others = total - composition.get(rule.category, 0)
                breaches.append(Breach("max_count", f"{rule.category}: {total} with the party's other notices "
                                                    f"({others} already notified) over the limit of {rule.max}"))
            if (rule.category == "artillery" and rule.max_calibre_mm is not None and calibre_mm is not None
                    and composition.get("artillery", 0) and calibre_mm > rule.max_calibre_mm):
                breaches.append(Breach("max_count", f"artillery of {calibre_mm} mm over the {rule.max_calibre_mm} mm "
                                                    "allowed here"))
        elif kind is MinNotice and rule.activity in ("*", activity) and notice_hours < rule.hours:
            breaches.append(Breach("min_notice", f"notified {notice_hours:.1f} h ahead; this zone needs "
                                                 f"{rule.hours:g} h"))
    return breaches


def limits_concurrent(rules: list[Any]) -> bool:
    """Whether the rules read `evaluate`'s `concurrent` (only max_count limits do): for the others, the party's
    concurrent notices in the zone need not be found."""
    return any(isinstance(r, MaxCount) for r in rules)


def min_distance(rules: list[Any]) -> float | None:
    values = [r.metres for r in rules if isinstance(r, MinDistance)]
    return max(values) if values else None
