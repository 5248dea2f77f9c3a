"""Dispute use cases: raise about entries, take a step, and the reads through the access layer."""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.deadlines import engine as deadlines
from fusioncell.deadlines.models import Deadline
from fusioncell.disputes import machine
from fusioncell.disputes.models import Dispute, Step
from fusioncell.errors import InvalidInput, NotFound, VerificationFailed
from fusioncell.identity import service as identity_service
from fusioncell.identity.auth import KeyEncryptionKey
from fusioncell.identity.service import Viewer
from fusioncell.record import access, proofs
from fusioncell.record.models import Entry
from fusioncell.record.sequencer import Appended, Log


def raise_dispute(session: Session, *, log: Log, kek: KeyEncryptionKey, viewer: Viewer, about: list[int],
                  respondent: str, claim: dict[str, str], remedy: dict[str, str]) -> Appended:
    """About entries the raiser's party can see; released to both parties and the supervisor."""
    refs = []
    for seq in about:
        entry = session.get(Entry, seq)
        if entry is None or not access.may_see(viewer.party, entry.audience):
            raise NotFound(f"no entry {seq} that your party can see")
        refs.append(entry.leaf_hash.hex())
    if not refs:
        raise InvalidInput("name the entries the dispute is about", code="no_refs")
    audience = sorted({viewer.party, respondent} | identity_service.supervising_parties(session))
    return identity_service.append_as(session, log=log, kek=kek, actor=viewer, kind="dispute.raised",
                                      body={"respondent": respondent, "claim": claim, "remedy": remedy},
                                      audience=audience, refs=refs)


def access_dispute(session: Session, *, viewer: Viewer, seq: int) -> tuple[Dispute, list[Step]]:
    dispute = session.get(Dispute, seq)
    if dispute is None or not access.may_see(viewer.party, dispute.audience):
        raise NotFound(f"no dispute {seq}")
    steps = list(session.execute(select(Step).where(Step.dispute_seq == seq).order_by(Step.seq)).scalars())
    return dispute, steps


def take_step(session: Session, *, log: Log, kek: KeyEncryptionKey, viewer: Viewer, seq: int, action: str,
              text: dict[str, str]) -> Appended:
    dispute, steps = access_dispute(session, viewer=viewer, seq=seq)
    refs = [session.get(Entry, dispute.seq).leaf_hash.hex()] + [session.get(Entry, s.seq).leaf_hash.hex()
                                                                for s in steps[-1:]]
    return identity_service.append_as(session, log=log, kek=kek, actor=viewer, kind="dispute.step",
                                      body={"dispute": seq, "action": action, "text": text},
                                      audience=dispute.audience.split(), refs=refs)


def disputes(session: Session, *, viewer: Viewer) -> list[Dispute]:
    rows = session.execute(select(Dispute).order_by(Dispute.seq.desc())).scalars()
    return [d for d in rows if access.may_see(viewer.party, d.audience)]


def next_actions(session: Session, *, viewer: Viewer, dispute: Dispute, supervisors: set[str] | None = None,
                 ) -> list[str]:
    """What this member may do next in the dispute; supervisors, where the caller has them, saves a query."""
    role = machine.role_of(party=viewer.party, raiser=dispute.raiser, respondent=dispute.respondent,
                           supervisors=(identity_service.supervising_parties(session) if supervisors is None
                                        else supervisors))
    return machine.next_actions(machine.Dispute(dispute.state, frozenset(dispute.settle_signed_by)), role)


def read(session: Session, *, viewer: Viewer, dispute: Dispute, steps: list[Step],
         supervisors: set[str] | None = None) -> dict[str, Any]:
    return {"seq": dispute.seq, "raiser": dispute.raiser, "respondent": dispute.respondent, "state": dispute.state,
            **dispute.body, "next_actions": next_actions(session, viewer=viewer, dispute=dispute,
                                                         supervisors=supervisors),
            "steps": [{"seq": s.seq, "party": s.party, "action": s.action, "state_after": s.state_after,
                       **s.body} for s in steps]}


def read_all(session: Session, *, viewer: Viewer) -> list[dict[str, Any]]:
    """Every dispute the viewer's party may see, as `read` gives one without its steps: two queries however
    many disputes there are."""
    supervisors = identity_service.supervising_parties(session)
    return [read(session, viewer=viewer, dispute=d, steps=[], supervisors=supervisors)
            for d in disputes(session, viewer=viewer)]


def dispute_rows(session: Session, *, viewer: Viewer) -> list[dict[str, Any]]:
    """Every dispute the viewer's party may see, as the list of disputes shows it: the dispute, the steps owed now
    (open deadlines, earliest due first), what this member may do next, whether it is closed. Three queries
    however many disputes there are."""
    supervisors = identity_service.supervising_parties(session)
    owed: dict[int, list[Deadline]] = {}
    for deadline in session.execute(select(Deadline).where(Deadline.rule == "dispute.step",
                                                           Deadline.met_seq.is_(None))
                                    .order_by(Deadline.due_at, Deadline.id)).scalars():
        owed.setdefault(deadlines.subject_seq(deadline.id), []).append(deadline)
    return [{"dispute": d, "owed": owed.get(d.seq, []), "closed": d.state in machine.CLOSED,
             "next_actions": next_actions(session, viewer=viewer, dispute=d, supervisors=supervisors)}
            for d in disputes(session, viewer=viewer)]


def write_bundle(session: Session, *, log: Log, party: str, seq: int, out: BinaryIO) -> dict[str, Any]:
    """The dispute, its steps and every entry they cite, with inclusion proofs, as `party` may see them."""
    dispute = session.get(Dispute, seq)
    if dispute is None or not access.may_see(party, dispute.audience):
        raise NotFound(f"no dispute {seq} that {party} can see")
    steps = list(session.execute(select(Step.seq).where(Step.dispute_seq == seq).order_by(Step.seq)).scalars())
    subject = [seq, *steps]
    tree = log.tree(session)
    cited = proofs.cited_seqs(session, subject, tree=tree)
    return proofs.write_proof_bundle(session, tree=tree, party=party, out=out,
                                     subject={"kind": "dispute", "seq": seq, "seqs": subject},
                                     seqs=[*subject, *cited])


def verified_state(report: proofs.ProofReport) -> machine.Dispute:
    """Replay a verified dispute bundle's steps through the state machine: the state they prove."""
    seq = report.subject["seq"]
    raised = report.entries[seq]
    if raised.submission is None or raised.submission["kind"] != "dispute.raised" or raised.body is None:
        raise VerificationFailed(f"entry {seq} is not a dispute", seq=seq, reason="not_a_dispute")
    steps = []
    for step_seq in sorted(report.subject["seqs"][1:]):  # the log's order, whatever the header says
        entry = report.entries[step_seq]
        sub, body = entry.submission or {}, entry.body or {}
        if sub.get("kind") != "dispute.step" or body.get("dispute") != seq:
            raise VerificationFailed(f"entry {step_seq} is not a step of dispute {seq}", seq=step_seq,
                                     reason="not_a_step")
        steps.append((sub["party"], body["action"]))
    assert report.registry is not None
    try:
        return machine.replay(steps, raiser=raised.submission["party"], respondent=raised.body["respondent"],
                              supervisors=set(report.registry.supervisors))
    except machine.StepRefused as exc:
        raise VerificationFailed(f"the steps do not follow the dispute rules: {exc}", seq=seq,
                                 reason=exc.code) from exc


def disputes_about(session: Session, *, viewer: Viewer, seq: int) -> list[Dispute]:
    """The disputes the member may see that cite entry seq."""
    entry = session.get(Entry, seq)
    if entry is None:
        return []
    cited = entry.leaf_hash.hex()
    found = []
    for dispute in disputes(session, viewer=viewer):
        raised = session.get(Entry, dispute.seq)
        if cited in json.loads(raised.leaf)["submission"]["refs"]:
            found.append(dispute)
    return sorted(found, key=lambda d: d.seq)


def dispute_view(session: Session, *, log: Log, viewer: Viewer, seq: int) -> dict[str, Any]:
    """What the dispute page shows: the dispute, its steps, the entries it is about, the step owed now and by
    whom with its deadline, and what this member may do next."""
    dispute, steps = access_dispute(session, viewer=viewer, seq=seq)
    refs = json.loads(session.get(Entry, seq).leaf)["submission"]["refs"]
    tree = log.tree(session)
    about = []
    for ref in refs:
        i = tree.index_of(bytes.fromhex(ref))
        cited = None if i is None else session.get(Entry, i)
        if cited is not None:
            about.append({"seq": cited.seq, "kind": cited.kind if access.may_see(viewer.party, cited.audience)
                          else None, "leaf_hash": ref})
    owed = list(session.execute(select(Deadline).where(
        Deadline.rule == "dispute.step", Deadline.id.startswith(f"dispute:{seq}:"), Deadline.met_seq.is_(None))
        .order_by(Deadline.due_at)).scalars())
    times = dict(session.execute(select(Entry.seq, Entry.sequenced_at)
                                 .where(Entry.seq.in_([seq, *(s.seq for s in steps)]))).all())
    return {"dispute": dispute, "steps": steps, "about": about, "owed": owed, "times": times,
            "next_actions": next_actions(session, viewer=viewer, dispute=dispute),
            "closed": dispute.state in machine.CLOSED}
