"""The dispute state machine. Pure: which step may follow which, and who may take it.

    raised ──answer──▶ answered ──mediate──▶ in_mediation ──rule──▶ ruled ──comply──▶ complied
       │                  │                       │                   └──refer──▶ referred
       └──────────────────┴───────────────────────┴──(any open state)── withdraw ▶ withdrawn
                                                                     └─ settle ──▶ settled
A step by the wrong actor, or not allowed from the current state, is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN = ("raised", "answered", "in_mediation", "ruled")
CLOSED = ("complied", "referred", "withdrawn", "settled")
STATES = OPEN + CLOSED

# action -> (states it may follow, who may take it, state it leads to)
#   who: raiser | respondent | supervisor | parties (both, each signing: settle needs both)
ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "answer": (("raised",), ("respondent",), "answered"),
    "mediate": (("raised", "answered"), ("supervisor",), "in_mediation"),
    "rule": (("in_mediation",), ("supervisor",), "ruled"),
    "comply": (("ruled",), ("respondent", "raiser"), "complied"),
    "refer": (("ruled", "in_mediation"), ("supervisor", "raiser", "respondent"), "referred"),
    "withdraw": (OPEN, ("raiser",), "withdrawn"),
    "settle": (OPEN, ("raiser", "respondent"), "settled"),
}


class StepRefused(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Dispute:
    state: str = "raised"
    settle_signed_by: frozenset[str] = frozenset()  # roles that agreed to settle so far


def role_of(*, party: str, raiser: str, respondent: str, supervisors: set[str]) -> str:
    if party in supervisors:
        return "supervisor"
    if party == raiser:
        return "raiser"
    if party == respondent:
        return "respondent"
    return "other"


def step(dispute: Dispute, action: str, role: str) -> Dispute:
    """The dispute after `role` takes `action`, or StepRefused saying why not."""
    if action not in ACTIONS:
        raise StepRefused(f"unknown step {action!r}; steps are {', '.join(ACTIONS)}", "unknown_step")
    allowed_from, actors, target = ACTIONS[action]
    if dispute.state not in allowed_from:
        raise StepRefused(f"cannot {action} a dispute that is {dispute.state.replace('_', ' ')}", "bad_transition")
    if role not in actors:
        raise StepRefused(f"the {role} cannot {action} this dispute", "not_allowed")
    if action == "settle":  # by agreement: each party signs; settled when both have
        signed = dispute.settle_signed_by | {role}
        if signed >= {"raiser", "respondent"}:
            return Dispute("settled", signed)
        return Dispute(dispute.state, signed)
    return Dispute(target, dispute.settle_signed_by)


def next_actions(dispute: Dispute, role: str) -> list[str]:
    """What this role may do now (the dispute page shows it as the next action)."""
    return [a for a, (states, actors, _t) in ACTIONS.items() if dispute.state in states and role in actors]


def replay(steps: list[tuple[str, str]], *, raiser: str, respondent: str, supervisors: set[str]) -> Dispute:
    """The dispute after these (party, action) steps, from raised; StepRefused at the first that is not allowed."""
    dispute = Dispute()
    for party, action in steps:
        role = role_of(party=party, raiser=raiser, respondent=respondent, supervisors=supervisors)
        dispute = step(dispute, action, role)
    return dispute
