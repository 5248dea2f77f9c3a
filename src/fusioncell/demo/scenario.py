"""The demo scenario: members' keys enrolled, a key rotated and revoked. Later modules add their acts here."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from fusioncell.cell import CellHandle
from fusioncell.clock import format_time
from fusioncell.geo import service as geo_service
from fusioncell.hotline import service as hotline_service
from fusioncell.identity import service as identity_service
from fusioncell.identity.service import SCOPES, Viewer
from fusioncell.record import signing
from fusioncell.record.sequencer import Appended, Log

# Demo logins (password = member id + "-demo-pass"); never use such passwords outside the demo.
MEMBERS = [
    ("IL", "il/liaison-1", "Noa Levi", ["liaison"]),
    ("IL", "il/admin", "Avi Cohen", ["admin", "liaison"]),
    ("SY", "sy/liaison-1", "Rami Haddad", ["liaison"]),
    ("SY", "sy/admin", "Lina Khoury", ["admin", "liaison"]),
    ("US", "us/supervisor-1", "Sam Carter", ["supervisor", "admin"]),
    ("US", "us/observer-1", "Dana Brooks", ["observer"]),
]


def demo_password(member: str) -> str:
    return f"{member}-demo-pass"


def load_places(session: Session, *, log: Log) -> None:
    """The demo gazetteer, as cell-authored entries."""
    data = tomllib.loads((Path(__file__).parent / "places.toml").read_text(encoding="utf-8"))
    for place in data["place"]:
        geo_service.add_place(session, log=log, place_id=place["id"], names=place["names"], kind=place["kind"],
                              alt_names=place.get("alt_names", []),
                              geometry={"type": "Point", "coordinates": [place["lon"], place["lat"]]})


def play(cell: CellHandle) -> None:
    log = cell.log
    with log.transaction(cell.db) as session:
        load_places(session, log=log)
    with log.transaction(cell.db) as session:
        for party, member, name, roles in MEMBERS:
            identity_service.add_member(session, log=log, kek=cell.kek, actor=None, member_id=member, party=party,
                                        name=name, roles=roles, password=demo_password(member))
    # A rotation: a device key replaced by a new one, the old one revoked.
    old_public = signing.public_bytes(signing.generate())
    with log.transaction(cell.db) as session:
        identity_service.enrol_key(session, log=log, party="SY", holder="sy/liaison-2", public_key=old_public,
                                   custody="device")
        identity_service.enrol_key(session, log=log, party="SY", holder="sy/liaison-2",
                                   public_key=signing.public_bytes(signing.generate()), custody="device")
        identity_service.revoke_key(session, log=log, key_id=signing.key_id(old_public),
                                    reason="rotated to a new device key")


def _viewer(session: Session, member: str) -> Viewer:
    row = identity_service.get_member(session, member)
    return Viewer(row.id, row.party, tuple(row.roles), "session", SCOPES)


def play_hotline(cell: CellHandle) -> None:
    """Conversations on the hotline: coded and free text, receipts, acknowledgements, a line only the
    supervisor shares, and messages left unacknowledged so their deadlines pass while the demo runs."""
    log, kek = cell.log, cell.kek

    def send(session: Session, member: str, audience: list[str], precedence: str, subject: str, *,
             template: str | None = None, fields: dict | None = None, text: str | None = None,
             lang: str = "en", thread: str | None = None) -> Appended:
        body = hotline_service.compose_body(precedence=precedence, subject=subject, thread=thread,
                                            template_code=template, fields=fields, text=text, lang=lang)
        return hotline_service.send_message(session, log=log, kek=kek, viewer=_viewer(session, member),
                                            audience=audience, body=body)

    with log.transaction(cell.db) as session:
        sy, il = _viewer(session, "sy/liaison-1"), _viewer(session, "il/liaison-1")
        convoy = send(session, "sy/liaison-1", ["IL"], "ROUTINE", "Humanitarian convoy to Quneitra",
                      template="NOTIFY-MOVE", fields={"place": "quneitra", "start": "2026-11-24T06:00:00Z",
                                                      "end": "2026-11-24T09:00:00Z", "unit": "Red Crescent convoy"},
                      text="قافلة إنسانية من ست شاحنات، بمرافقة الهلال الأحمر.", lang="ar")
        for status in ("delivered", "read"):
            hotline_service.record_receipt(session, log=log, kek=kek, viewer=il, seq=convoy.seq, status=status)
        hotline_service.acknowledge(session, log=log, kek=kek, viewer=il, seq=convoy.seq,
                                    reply="הובן. נעדכן את הכוחות באזור.", lang="he")
        patrol = send(session, "il/liaison-1", ["SY"], "IMMEDIATE", "Patrol near Khan Arnabah",
                      text="סיור רגלי של שישה לוחמים יתקרב לח'אן ארנבה הלילה בין 01:00 ל-03:00 UTC.", lang="he")
        hotline_service.record_receipt(session, log=log, kek=kek, viewer=sy, seq=patrol.seq, status="delivered")
        send(session, "il/liaison-1", ["US"], "PRIORITY", "For the supervisor only",
             text="We ask the supervisor to raise the Mount Hermon observation post at the next meeting.")
        send(session, "us/supervisor-1", ["IL", "SY"], "ROUTINE", "Clarification requested",
             template="REQ-CLARIFY", fields={"entry": patrol.seq})
        send(session, "sy/liaison-1", ["IL"], "FLASH", "Fire reported near Beit Jinn",
             template="REQ-CEASE", fields={"place": "beit-jinn", "activity": "fire"})


def play_zones_and_notices(cell: CellHandle) -> None:
    """Illustrative zones (signed by every party but one proposal), and notices the cell finds in conflict."""
    from fusioncell.notices import service as notice_service

    log, kek = cell.log, cell.kek
    data = tomllib.loads((Path(__file__).parent / "zones.toml").read_text(encoding="utf-8"))
    now = log.clock.now()
    with log.transaction(cell.db) as session:
        signers = [_viewer(session, m) for m in ("il/liaison-1", "sy/liaison-1", "us/supervisor-1")]
        for zone in data["zone"]:
            body = {"id": zone["id"], "names": zone["names"], "illustrative": True, "rules": zone["rules"],
                    "geometry": {"type": "Polygon", "coordinates": [zone["polygon"]]},
                    "valid_from": format_time(now - timedelta(days=1))}
            proposed = log.append_as_cell(session, kind="geo.zone_proposed", body=body)
            for signer in signers if zone["signed"] else signers[:1]:
                identity_service.append_as(session, log=log, kek=kek, actor=signer, kind="geo.zone_signed",
                                           body={"zone": zone["id"], "text": proposed.submission["body"]},
                                           audience=[p.id for p in identity_service.list_parties(session)])
    tomorrow = (now + timedelta(days=1)).replace(hour=1, minute=0, second=0, microsecond=0)
    window = {"start": format_time(tomorrow), "end": format_time(tomorrow + timedelta(hours=2))}
    notices = [
        ("il/liaison-1", {"activity": "patrol", "contact": "IL liaison desk, channel 3", **window,
                          "geometry": {"type": "Point", "coordinates": [35.86, 33.17], "radius_m": 500},
                          "composition": {"troops": 6}}),
        ("sy/liaison-1", {"activity": "humanitarian_convoy", "contact": "SY liaison desk", **window,
                          "geometry": {"type": "LineString", "coordinates": [[35.824, 33.126], [35.879, 33.18]]},
                          "composition": {}}),
        ("sy/liaison-1", {"activity": "exercise", "contact": "SY liaison desk", **window,
                          "geometry": {"type": "Point", "coordinates": [35.95, 33.05], "radius_m": 3000},
                          "composition": {"troops": 400, "tanks": 12, "air_defence": 2}}),
    ]
    with log.transaction(cell.db) as session:
        for member, body in notices:
            filed = notice_service.file_notice(session, log=log, kek=kek, viewer=_viewer(session, member), body=body)
            notice_service.check_notice(session, log=log, notice_seq=filed.seq)


def play_incidents_and_disputes(cell: CellHandle) -> None:
    """Incidents of the past weeks (for the statistics), one linked to a notified patrol and answered and
    graded, one shared with the supervisor only, and disputes: one in mediation, one just raised."""
    from fusioncell.disputes import service as dispute_service
    from fusioncell.incidents import service as incident_service
    from fusioncell.notices import service as notice_service
    from fusioncell.notices.models import Notice

    log, kek = cell.log, cell.kek
    now = log.clock.now()

    def text(lang: str, value: str) -> dict[str, str]:
        return {"lang": lang, "text": value}

    def at(hours_ago: float) -> str:
        return format_time(now - timedelta(hours=hours_ago))

    history = [  # (reporter, category, hours ago, lon, lat, responsible, description)
        ("sy/liaison-1", "overflight_or_drone", 1000, 35.93, 33.02, "IL", text("ar", "طائرة مسيرة فوق القنيطرة")),
        ("il/liaison-1", "fire_across_line", 900, 35.80, 33.10, "SY", text("he", "ירי נשק קל לעבר עמדה")),
        ("sy/liaison-1", "raid_or_arrest", 760, 35.87, 33.31, "IL", text("ar", "مداهمة واعتقال في بيت جن")),
        ("il/liaison-1", "construction", 600, 35.95, 33.20, "SY", text("he", "ביצורים חדשים מזרחית לקו")),
        ("sy/liaison-1", "ground_incursion", 450, 35.84, 33.15, "IL", text("ar", "توغل بري قرب خان أرنبة")),
        ("us/supervisor-1", "unexploded_ordnance", 300, 35.86, 33.05, None, text("en", "UXO found by a farmer")),
        ("sy/liaison-1", "overflight_or_drone", 200, 35.88, 33.25, "IL", text("ar", "تحليق فوق جبل الشيخ")),
        ("il/liaison-1", "unsafe_encounter", 120, 35.83, 33.12, "SY", text("he", "מפגש מסוכן בין סיורים")),
    ]
    with log.transaction(cell.db) as session:
        for member, category, hours, lon, lat, responsible, description in history:
            filed = incident_service.report_incident(session, log=log, kek=kek, viewer=_viewer(session, member), body={
                "category": category, "start": at(hours), "description": description, "responsible": responsible,
                "geometry": {"type": "Point", "coordinates": [lon, lat]}})
            incident_service.link_incident(session, log=log, incident_seq=filed.seq)
    with log.transaction(cell.db) as session:
        sy, il, us = (_viewer(session, m) for m in ("sy/liaison-1", "il/liaison-1", "us/supervisor-1"))
        # Notified late (the cell finds the notice period too short), but notified: the incident below links to it.
        patrol = notice_service.file_notice(session, log=log, kek=kek, viewer=il, body={
            "activity": "patrol", "contact": "IL liaison desk, channel 3", "start": at(3), "end": at(-1),
            "geometry": {"type": "Point", "coordinates": [35.858, 33.168], "radius_m": 800},
            "composition": {"troops": 8}})
        notice_service.check_notice(session, log=log, notice_seq=patrol.seq)
        fire = incident_service.report_incident(session, log=log, kek=kek, viewer=sy, body={
            "category": "fire_across_line", "start": at(1),
            "description": text("ar", "إطلاق نار من دورية إسرائيلية قرب خان أرنبة، إصابة مدنيَّين."),
            "casualties": {"killed": 0, "injured": 2}, "damage": "Two houses hit", "responsible": "IL",
            "geometry": {"type": "Point", "coordinates": [35.861, 33.171]}})
        incident_service.link_incident(session, log=log, incident_seq=fire.seq)
        response = incident_service.answer(session, log=log, kek=kek, viewer=il, seq=fire.seq,
                                           kind="incident.response", body={
                                               "response": "dispute_facts",
                                               "text": text("he", "הסיור הודיע מראש ולא פתח באש.")})
        incident_service.answer(session, log=log, kek=kek, viewer=us, seq=fire.seq, kind="incident.assessment",
                                body={"assessment": "confirmed", "reliability": "B", "credibility": 2,
                                      "text": text("en", "Shots heard by the observation post at the time.")})
        incident_service.report_incident(session, log=log, kek=kek, viewer=il, audience=["IL", "US"], body={
            "category": "presence_in_restricted_zone", "start": at(30), "responsible": "SY",
            "description": text("he", "כוח חמוש נצפה באזור ההפרדה (לפיקוח בלבד)."),
            "geometry": {"type": "Point", "coordinates": [35.87, 33.22]}})
    with log.transaction(cell.db) as session:
        sy, il, us = (_viewer(session, m) for m in ("sy/liaison-1", "il/liaison-1", "us/supervisor-1"))
        raised = dispute_service.raise_dispute(
            session, log=log, kek=kek, viewer=sy, about=[fire.seq, response.seq], respondent="IL",
            claim=text("ar", "الدورية أطلقت النار على مدنيين."), remedy=text("ar", "تحقيق وتعويض المصابين."))
        dispute_service.take_step(session, log=log, kek=kek, viewer=il, seq=raised.seq, action="answer",
                                  text=text("he", "הסיור פעל לפי ההודעה המוקדמת."))
        dispute_service.take_step(session, log=log, kek=kek, viewer=us, seq=raised.seq, action="mediate",
                                  text=text("en", "Both liaison officers meet at the post on Thursday."))
        exercise = session.query(Notice).filter(Notice.party == "SY", Notice.activity == "exercise").first()
        if exercise is not None:
            dispute_service.raise_dispute(
                session, log=log, kek=kek, viewer=il, about=[exercise.seq], respondent="SY",
                claim=text("he", "תרגיל עם מערכות הגנה אווירית בתוך רצועת 25 הק\"מ."),
                remedy=text("he", "ביטול התרגיל או הוצאת מערכות ההגנה האווירית."))
