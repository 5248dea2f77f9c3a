"""Incident use cases: report (as the member), the cell's linking of each report to the zones it falls in, the
rules it would breach and the notices active nearby at the time ("was this notified?"), answers, reads."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.clock import parse_time
from fusioncell.errors import NotFound
from fusioncell.geo.models import Zone
from fusioncell.identity import service as identity_service
from fusioncell.identity.auth import KeyEncryptionKey
from fusioncell.identity.service import Viewer
from fusioncell.incidents.models import Answer, Incident
from fusioncell.notices.geometry import checked, project, utm_zone
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
    where = project(incident.body["geometry"], zone_id)
    start, end = parse_time(incident.start_at), parse_time(incident.end_at) + timedelta(minutes=1)
    zones = []
    for zone in session.execute(select(Zone).where(Zone.effective_seq.is_not(None)).order_by(Zone.id)).scalars():
        if project(zone.body["geometry"], zone_id).intersects(where):
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
        distance = project(notice.body["geometry"], zone_id).distance(where)
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
              since: str | None = None) -> list[Incident]:
    query = select(Incident).order_by(Incident.start_at.desc())
    if category:
        query = query.where(Incident.category == category)
    if party:
        query = query.where(Incident.responsible == party)
    if since:
        query = query.where(Incident.start_at >= since)
    return [i for i in session.execute(query).scalars() if access.may_see(viewer.party, i.audience)]


def answer(session: Session, *, log: Log, kek: KeyEncryptionKey, viewer: Viewer, seq: int, kind: str,
           body: dict[str, Any]) -> Appended:
    incident, _ = access_incident(session, viewer=viewer, seq=seq)
    return identity_service.append_as(session, log=log, kek=kek, actor=viewer, kind=kind,
                                      body={**body, "incident": seq}, audience=incident.audience.split())
