"""Incident use cases: report (as the member), the cell's linking of each report to the zones it falls in, the
rules it would breach and the notices active nearby at the time ("was this notified?"), answers, reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.clock import format_time, parse_time
from fusioncell.errors import NotFound
from fusioncell.geo.models import Zone
from fusioncell.identity import service as identity_service
from fusioncell.identity.auth import KeyEncryptionKey
from fusioncell.identity.service import Viewer
from fusioncell.incidents.models import Answer, Incident
from fusioncell.notices.deconflict import distance_m, meets
from fusioncell.notices.geometry import checked, project, utm_zone, widened
from fusioncell.notices.models import Notice
from fusioncell.record import access
from fusioncell.record.followup import FollowUp
from fusioncell.record.models import Entry
from fusioncell.record.sequencer import Appended, Log

if TYPE_CHECKING:
    from fusioncell.record.commit import GroupCommitter

NEARBY_M = 5000.0


def report_incident(session: Session, *, log: Log, kek: KeyEncryptionKey, viewer: Viewer, body: dict[str, Any],
                    audience: list[str] | None = None) -> Appended:
    body = {**body, "geometry": checked(dict(body["geometry"]), repair=False)}
    parties = [p.id for p in identity_service.list_parties(session)]
    return identity_service.append_as(session, log=log, kek=kek, actor=viewer, kind="incident.reported", body=body,
                                      audience=sorted(set(audience or parties) | {viewer.party}))


def links_for(session: Session, *, incident_seq: int) -> dict[str, list[dict[str, Any]]]:
    """Zones the incident falls in (and their rules), and notices active nearby at its time."""
    from fusioncell.geo.rules import NoPresence
    from fusioncell.notices.service import _RULES

    incident = session.get(Incident, incident_seq)
    plain = {k: v for k, v in incident.body["geometry"].items() if k != "radius_m"}
    point = shape(plain).representative_point()
    zone_id = utm_zone(point.x, point.y)
    where, radius = widened(incident.body["geometry"], zone_id)  # exact for a disc, as deconfliction has it
    start, end = parse_time(incident.start_at), parse_time(incident.end_at) + timedelta(minutes=1)
    zones = []
    for zone in session.execute(select(Zone).where(Zone.effective_seq.is_not(None)).order_by(Zone.id)).scalars():
        if meets(project(zone.body["geometry"], zone_id), where, radius):
            rules = _RULES.validate_python(zone.body["rules"])
            breaches = [f"no military presence of {incident.responsible} is allowed here" for r in rules
                        if isinstance(r, NoPresence) and incident.responsible in r.parties]
            zones.append({"zone": zone.id, "rules": zone.body["rules"], "breaches": breaches})
    notices = []
    for notice in session.execute(select(Notice).where(Notice.start_at <= incident.end_at,
                                                       Notice.end_at > incident.start_at)
                                  .order_by(Notice.seq)).scalars():
        if not (parse_time(notice.start_at) < end and start < parse_time(notice.end_at)):
            continue
        distance = distance_m(*widened(notice.body["geometry"], zone_id), where, radius)
        if distance <= NEARBY_M:
            notices.append({"notice": notice.seq, "party": notice.party, "activity": notice.activity,
                            "state": notice.state, "distance_m": round(distance, 1)})
    return {"zones": zones, "notices": notices}


def link_incident(session: Session, *, log: Log, incident_seq: int) -> Appended:
    incident = session.get(Incident, incident_seq)
    leaf = session.get(Entry, incident_seq).leaf_hash.hex()
    return log.append_as_cell(session, kind="incident.linked", body={"incident": incident_seq,
                                                                     **links_for(session, incident_seq=incident_seq)},
                              audience=incident.audience.split(), refs=[leaf])


def unlinked(session: Session) -> list[int]:
    return list(session.execute(select(Incident.seq).where(Incident.linked_seq.is_(None)).order_by(Incident.seq))
                .scalars())


def linker(committer: GroupCommitter, log: Log) -> FollowUp:
    def work(session: Session, seq: int) -> Appended | None:
        incident = session.get(Incident, seq)
        if incident is None or incident.linked_seq is not None:
            return None
        return link_incident(session, log=log, incident_seq=seq)

    return FollowUp(committer, kinds={"incident.reported": lambda e: e.seq}, work=work, pending=unlinked)


def access_incident(session: Session, *, viewer: Viewer, seq: int) -> tuple[Incident, list[Answer]]:
    incident = session.get(Incident, seq)
    if incident is None or not access.may_see(viewer.party, incident.audience):
        raise NotFound(f"no incident {seq}")
    answers = list(session.execute(select(Answer).where(Answer.incident_seq == seq).order_by(Answer.seq)).scalars())
    return incident, answers


def incidents(session: Session, *, viewer: Viewer, category: str | None = None, party: str | None = None,
              since: str | None = None, until: str | None = None, zone: str | None = None) -> list[Incident]:
    """The incidents the member may see, newest first; filters: category, party held responsible, a time range
    (ISO 8601 dates or times, UTC), a zone the cell found the incident in."""
    query = select(Incident).order_by(Incident.start_at.desc(), Incident.seq.desc())
    if category:
        query = query.where(Incident.category == category)
    if party:
        query = query.where(Incident.responsible == party)
    if since:
        query = query.where(Incident.end_at >= format_time(parse_time(since)))
    if until:
        query = query.where(Incident.start_at < format_time(parse_time(until)))
    rows = [i for i in session.execute(query).scalars() if access.may_see(viewer.party, i.audience)]
    if zone:
        rows = [i for i in rows if zone in zones_of(i)]
    return rows


def zones_of(incident: Incident) -> list[str]:
    return [z["zone"] for z in (incident.links or {}).get("zones", [])]


def week_of(when: str) -> str:
    """The Monday (UTC) of the week an ISO time falls in, as YYYY-MM-DD."""
    day = parse_time(when)
    return (day - timedelta(days=day.weekday())).strftime("%Y-%m-%d")


def statistics(session: Session, *, viewer: Viewer, now: datetime, weeks: int = 12) -> dict[str, list[tuple[str, int]]]:
    """Counts of the incidents the member may see: by week (the last `weeks`, empty weeks included), category,
    zone (an incident may fall in several) and party held responsible."""
    from collections import Counter

    rows = incidents(session, viewer=viewer)
    by_week = Counter(week_of(i.start_at) for i in rows)
    monday = now - timedelta(days=now.weekday())
    week_keys = [(monday - timedelta(weeks=n)).strftime("%Y-%m-%d") for n in range(weeks - 1, -1, -1)]
    by_zone = Counter(z for i in rows for z in zones_of(i))
    by_party = Counter(i.responsible or "unknown" for i in rows)
    by_category = Counter(i.category for i in rows)
    return {"week": [(w, by_week.get(w, 0)) for w in week_keys],
            "category": by_category.most_common(), "zone": by_zone.most_common(), "party": by_party.most_common()}


def timeline(session: Session, *, viewer: Viewer, seq: int) -> tuple[Incident, list[dict[str, Any]]]:
    """The incident and what followed it, in the order of the record: the report, the cell's linking, the
    responses and assessments, and the disputes about it with their steps."""
    from fusioncell.disputes import service as dispute_service

    incident, answers = access_incident(session, viewer=viewer, seq=seq)
    events: list[dict[str, Any]] = [{"seq": seq, "kind": "incident.reported", "party": incident.party,
                                     "body": incident.body}]
    if incident.linked_seq is not None:
        events.append({"seq": incident.linked_seq, "kind": "incident.linked", "party": "CELL",
                       "body": incident.links})
    events += [{"seq": a.seq, "kind": f"incident.{a.kind}", "party": a.party, "body": a.body} for a in answers]
    for dispute in dispute_service.disputes_about(session, viewer=viewer, seq=seq):
        events.append({"seq": dispute.seq, "kind": "dispute.raised", "party": dispute.raiser,
                       "body": dispute.body, "dispute": dispute})
    times = dict(session.execute(select(Entry.seq, Entry.sequenced_at)
                                 .where(Entry.seq.in_([e["seq"] for e in events]))).all())
    for event in events:
        event["time"] = times.get(event["seq"], "")
    return incident, sorted(events, key=lambda e: e["seq"])


def answer(session: Session, *, log: Log, kek: KeyEncryptionKey, viewer: Viewer, seq: int, kind: str,
           body: dict[str, Any]) -> Appended:
    incident, _ = access_incident(session, viewer=viewer, seq=seq)
    return identity_service.append_as(session, log=log, kek=kek, actor=viewer, kind=kind,
                                      body={**body, "incident": seq}, audience=incident.audience.split())
