"""Notice use cases: file (with the author's consent to repair its geometry), the cell's check of each new
notice, and the reads for the map."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from fusioncell.clock import parse_time
from fusioncell.geo.models import Zone
from fusioncell.geo.rules import Rule
from fusioncell.identity import service as identity_service
from fusioncell.identity.auth import KeyEncryptionKey
from fusioncell.identity.service import Viewer
from fusioncell.notices import deconflict
from fusioncell.notices.geometry import checked, project, utm_zone, widened
from fusioncell.notices.models import Notice
from fusioncell.record import access
from fusioncell.record.followup import FollowUp
from fusioncell.record.models import Entry
from fusioncell.record.sequencer import Appended, Log

if TYPE_CHECKING:
    from fusioncell.record.commit import GroupCommitter

_RULES = TypeAdapter(list[Rule])


def file_notice(session: Session, *, log: Log, kek: KeyEncryptionKey, viewer: Viewer, body: dict[str, Any],
                repair: bool = False) -> Appended:
    """File as the member; the cell checks it right after (check_notice)."""
    body = {**body, "geometry": checked(dict(body["geometry"]), repair=repair)}
    everyone = [p.id for p in identity_service.list_parties(session)]
    return identity_service.append_as(session, log=log, kek=kek, actor=viewer, kind="notice.filed", body=body,
                                      audience=everyone)


def _shape(notice: Notice, zone: tuple[int, bool]) -> deconflict.NoticeShape:
    body = notice.body
    altitude = body.get("altitude")
    geom, radius = widened(body["geometry"], zone)  # a Point with radius_m is a disc: its centre and radius
    return deconflict.NoticeShape(
        notice.seq, notice.party, notice.activity, parse_time(notice.start_at), parse_time(notice.end_at),
        geom, dict(body.get("composition") or {}), body.get("calibre_mm"),
        (altitude["min_m"], altitude["max_m"]) if altitude else None, radius)


def findings_for(session: Session, *, notice_seq: int) -> list[deconflict.Finding]:
    notice = session.get(Notice, notice_seq)
    point = shape({k: v for k, v in notice.body["geometry"].items() if k != "radius_m"}).representative_point()
    zone_id = utm_zone(point.x, point.y)
    me = _shape(notice, zone_id)
    others = [_shape(o, zone_id) for o in session.execute(
        select(Notice).where(Notice.state == "active", Notice.seq != notice.seq, Notice.end_at > notice.start_at,
                             Notice.start_at < notice.end_at)).scalars()]
    filed_at, minimum = _filing(session, notice_seq)
    return deconflict.check(me, zones=_zone_shapes(session, zone_id), others=others, filed_at=filed_at,
                            min_notice_hours=minimum)


def _zone_shapes(session: Session, zone_id: tuple[int, bool]) -> list[deconflict.ZoneShape]:
    """The zones in effect, projected to the given UTM zone."""
    return [deconflict.ZoneShape(z.id, project(z.body["geometry"], zone_id), _RULES.validate_python(z.body["rules"]),
                                 parse_time(z.body["valid_from"]),
                                 parse_time(z.body["valid_until"]) if z.body.get("valid_until") else None)
            for z in session.execute(select(Zone).where(Zone.effective_seq.is_not(None))).scalars()]


def _filing(session: Session, notice_seq: int) -> tuple[Any, float]:
    """When the notice was sequenced, and the cell's minimum notice period in hours."""
    filed_at = parse_time(session.get(Entry, notice_seq).sequenced_at)
    return filed_at, float(identity_service.cell_setting(session, "min_notice_hours", 0))


def check_notice(session: Session, *, log: Log, notice_seq: int, live: Any = None) -> Appended:
    """The cell's signed findings for a notice (an empty list is recorded too: the check ran)."""
    found = live.findings(session, notice_seq=notice_seq) if live else findings_for(session, notice_seq=notice_seq)
    notice = session.get(Notice, notice_seq)
    leaf = session.get(Entry, notice_seq).leaf_hash.hex()
    return log.append_as_cell(session, kind="notice.findings",
                              body={"notice": notice_seq, "findings": [f.as_json() for f in found]},
                              audience=notice.audience.split(), refs=[leaf])


def active_notices(session: Session, *, viewer: Viewer) -> list[Notice]:
    rows = session.execute(select(Notice).where(Notice.state == "active").order_by(Notice.start_at)).scalars()
    return [n for n in rows if access.may_see(viewer.party, n.audience)]


def zones(session: Session) -> list[Zone]:
    return list(session.execute(select(Zone).order_by(Zone.id)).scalars())


def unchecked(session: Session) -> list[int]:
    return list(session.execute(select(Notice.seq).where(Notice.checked_seq.is_(None)).order_by(Notice.seq))
                .scalars())


def checker(committer: GroupCommitter, log: Log) -> FollowUp:
    """Checks every notice the moment its filing (or amendment) is committed, against the live index."""
    live = LiveDeconflictor(committer.db, log)
    log.listeners.append(live.on_commit)

    def work(session: Session, seq: int) -> Appended | None:
        notice = session.get(Notice, seq)
        if notice is None or notice.checked_seq is not None:
            return None
        return check_notice(session, log=log, notice_seq=seq, live=live)

    return FollowUp(committer, kinds={"notice.filed": lambda e: e.seq, "notice.amended": lambda e: e.body["notice"]},
                    work=work, pending=unchecked)


def notice_body(form: dict[str, Any]) -> dict[str, Any]:
    """The body to sign from a form: GeoJSON as given, or a position (MGRS or 'lat, lon') with a radius."""
    from fusioncell.errors import InvalidInput
    from fusioncell.geo.grid import parse_position

    geometry = form.get("geometry")
    if geometry is None and form.get("kml"):
        from fusioncell.notices.kml import geometry_from_kml

        geometry = geometry_from_kml(form["kml"])
    if geometry is None:
        if not form.get("mgrs"):
            raise InvalidInput("give the place: geometry (GeoJSON), kml, or mgrs (MGRS or 'lat, lon')",
                               code="no_geometry")
        lat, lon = parse_position(form["mgrs"])
        geometry = {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
        if form.get("radius_m"):
            geometry["radius_m"] = form["radius_m"]
    body = {k: form[k] for k in ("activity", "start", "end", "composition", "contact") if form.get(k) is not None}
    body["geometry"] = geometry
    for optional in ("altitude", "calibre_mm"):
        if form.get(optional) is not None:
            body[optional] = form[optional]
    return body


def access_notice(session: Session, *, viewer: Viewer, seq: int) -> tuple[Notice, list[Any]]:
    from fusioncell.errors import NotFound
    from fusioncell.notices.models import Finding

    notice = session.get(Notice, seq)
    if notice is None or not access.may_see(viewer.party, notice.audience):
        raise NotFound(f"no notice {seq}")
    findings = list(session.execute(select(Finding).where(Finding.notice_seq == seq).order_by(Finding.number))
                    .scalars())
    return notice, findings


def notices_with_findings(session: Session, *, viewer: Viewer) -> list[tuple[Notice, list[Any]]]:
    """The active notices the viewer's party may see, each with its findings: two queries however many."""
    from fusioncell.notices.models import Finding

    notices = active_notices(session, viewer=viewer)
    findings: dict[int, list[Any]] = {n.seq: [] for n in notices}
    for finding in session.execute(select(Finding).join(Notice, Notice.seq == Finding.notice_seq)
                                   .where(Notice.state == "active")
                                   .order_by(Finding.notice_seq, Finding.number)).scalars():
        if finding.notice_seq in findings:
            findings[finding.notice_seq].append(finding)
    return [(n, findings[n.seq]) for n in notices]


def notice_read(notice: Notice, findings: list[Any]) -> dict[str, Any]:
    return {"seq": notice.seq, "party": notice.party, "author": notice.author, "state": notice.state,
            "outcome": notice.outcome, "checked": notice.checked_seq is not None, **notice.body,
            "findings": [{"number": f.number, **f.detail, "responses": f.responses} for f in findings]}


def answer(session: Session, *, log: Log, kek: KeyEncryptionKey, viewer: Viewer, seq: int, kind: str,
           body: dict[str, Any]) -> Appended:
    notice, _ = access_notice(session, viewer=viewer, seq=seq)
    return identity_service.append_as(session, log=log, kek=kek, actor=viewer, kind=kind,
                                      body={**body, "notice": seq}, audience=notice.audience.split())


class LiveDeconflictor:
    """The server's in-memory zones and active notices, kept current by commits (its own and, on PostgreSQL,
    other workers' through the follower), so checking a notice does not read every active notice."""

    def __init__(self, db: Any, log: Log) -> None:
        import threading

        self.db = db
        self.log = log
        self._lock = threading.Lock()
        self._index: Any = None
        self._utm: tuple[int, bool] | None = None

    def _build(self, session: Session, near: dict[str, Any]) -> None:
        from fusioncell.notices.index import Deconflictor

        point = shape({k: v for k, v in near.items() if k != "radius_m"}).representative_point()
        self._utm = utm_zone(point.x, point.y)  # one projection for the whole index: the cell's area
        index = Deconflictor()
        index.set_zones(_zone_shapes(session, self._utm))
        now = self.log.clock.now()
        for notice in session.execute(select(Notice).where(Notice.state == "active")).scalars():
            if parse_time(notice.end_at) > now:
                index.add(_shape(notice, self._utm))
        self._index = index

    def findings(self, session: Session, *, notice_seq: int) -> list[deconflict.Finding]:
        notice = session.get(Notice, notice_seq)
        with self._lock:
            if self._index is None:
                self._build(session, notice.body["geometry"])
            self._index.expire(self.log.clock.now())
            me = _shape(notice, self._utm)
            self._index.add(me)
            filed_at, minimum = _filing(session, notice_seq)
            return self._index.check(me, filed_at=filed_at, min_notice_hours=minimum)

    def on_commit(self, appended: list[Appended], _head: Any) -> None:
        with self._lock:
            if self._index is None:
                return
            for entry in appended:
                if entry.kind in ("geo.zone_signed", "geo.zone_proposed"):
                    self._index = None  # zones change rarely: rebuilt at the next check
                    return
                if entry.kind in ("notice.cancelled", "notice.amended"):
                    self._index.remove(entry.body["notice"])  # an amendment is re-added when checked
