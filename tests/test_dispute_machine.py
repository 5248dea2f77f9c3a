"""The dispute state machine (pure), exhaustively and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fusioncell.disputes.machine import (
    ACTIONS,
    CLOSED,
    STATES,
    Dispute,
    StepRefused,
    next_actions,
    step,
)

ROLES = ("raiser", "respondent", "supervisor", "other")


def test_the_main_path_to_a_ruling_and_compliance():
    d = Dispute()
    for action, role, state in [("answer", "respondent", "answered"), ("mediate", "supervisor", "in_mediation"),
                                ("rule", "supervisor", "ruled"), ("comply", "respondent", "complied")]:
        d = step(d, action, role)
        assert d.state == state


def test_settlement_needs_both_parties():
    d = step(Dispute("in_mediation"), "settle", "raiser")
    assert d.state == "in_mediation"
    assert step(d, "settle", "respondent").state == "settled"


@pytest.mark.parametrize(("state", "action", "role", "code"), [
    ("raised", "rule", "supervisor", "bad_transition"),
    ("answered", "answer", "respondent", "bad_transition"),
    ("in_mediation", "rule", "raiser", "not_allowed"),
    ("raised", "answer", "raiser", "not_allowed"),
    ("complied", "withdraw", "raiser", "bad_transition"),
    ("raised", "appeal", "raiser", "unknown_step"),
])
def test_refused_steps_say_why(state, action, role, code):
    with pytest.raises(StepRefused) as info:
        step(Dispute(state), action, role)
    assert info.value.code == code


@given(st.lists(st.tuples(st.sampled_from(sorted(ACTIONS) + ["appeal"]), st.sampled_from(ROLES)), max_size=30))
def test_any_sequence_stays_in_known_states_and_closed_disputes_stay_closed(steps):
    d = Dispute()
    for action, role in steps:
        before = d
        try:
            d = step(d, action, role)
        except StepRefused:
            assert d == before  # a refused step changes nothing
            continue
        assert d.state in STATES
        assert before.state not in CLOSED  # nothing moves a closed dispute
        assert role != "other"  # a party outside the dispute never moves it


def test_next_actions_are_exactly_the_allowed_steps():
    for state in STATES:
        for role in ROLES:
            for action in ACTIONS:
                allowed = action in next_actions(Dispute(state), role)
                try:
                    step(Dispute(state), action, role)
                    assert allowed
                except StepRefused:
                    assert not allowed
