"""The hotline on both databases: precedence and acknowledgement deadlines, receipts, acknowledgements,
the deadline engine moving through a fake clock, coded messages in three languages, attachments."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from fusioncell.deadlines import engine
from fusioncell.deadlines.models import Deadline
from fusioncell.errors import (
    Forbidden,
    FusioncellError,
    InvalidInput,
    NotFound,
    TooLarge,
)
from fusioncell.hotline import service as hotline_service
from fusioncell.hotline import templates
from fusioncell.record.models import Entry
from fusioncell.record.rebuild import projection_digest, rebuild
from tests.factories.hotline import ack, places, receipt, send, viewer
from tests.factories.identity import add_personas


@pytest.fixture
def people(cell):
    add_personas(cell)
    places(cell)
    return {name: viewer(cell, member) for name, member in {
        "il": "il/liaison-1", "sy": "sy/liaison-1", "us": "us/supervisor-1", "obs": "us/observer-1"}.items()}


def log_size(cell):
    with cell.db.read() as session:
        return session.execute(select(func.count()).select_from(Entry)).scalar_one()


def deadlines_of(cell, seq):
    with cell.db.read() as session:
        return {d.party: d for d in session.execute(select(Deadline).where(Deadline.source_seq == seq)).scalars()}


def fire(cell):
    with cell.log.transaction(cell.db) as session:
        return engine.fire_due(session, log=cell.log, now=cell.log.clock.now())


def test_a_message_owes_an_acknowledgement_from_each_addressed_party_only(cell, people):
    message = send(cell, people["il"], precedence="IMMEDIATE")
    owed = deadlines_of(cell, message.seq)
    assert set(owed) == {"SY"}  # not the author's party, not the supervisor
    assert owed["SY"].due_at > message.time and owed["SY"].state == "open"
    from_supervisor = send(cell, people["us"], precedence="ROUTINE")
    assert set(deadlines_of(cell, from_supervisor.seq)) == {"IL", "SY"}


def test_receipts_are_signed_entries_and_repeats_add_nothing(cell, people):
    message = send(cell, people["il"])
    delivered = receipt(cell, people["sy"], message.seq, "delivered")
    assert delivered.kind == "hotline.receipt" and delivered.submission["author"] == "sy/liaison-1"
    assert delivered.submission["refs"] == [message.leaf_hash.hex()]
    before = log_size(cell)
    assert receipt(cell, people["sy"], message.seq, "delivered") is None
    assert log_size(cell) == before
    assert receipt(cell, people["sy"], message.seq, "read").submission["key"] != ""


def test_acknowledgement_meets_the_deadline_once(cell, people, clock):
    message = send(cell, people["sy"], precedence="FLASH")
    clock.advance(minutes=2)
    done = ack(cell, people["il"], message.seq, reply="Understood, holding position")
    assert deadlines_of(cell, message.seq)["IL"].met_seq == done.seq
    before = log_size(cell)
    with pytest.raises(InvalidInput, match="already acknowledged"):
        ack(cell, people["il"], message.seq)
    clock.advance(minutes=30)
    assert fire(cell) == []  # met in time: nothing to escalate
    assert log_size(cell) == before


@pytest.mark.parametrize("who", ["us", "sy_own", "obs"])
def test_acknowledgement_by_a_party_not_addressed_is_refused_and_leaves_no_trace(cell, people, who):
    message = send(cell, people["sy"])
    before = log_size(cell)
    actor = {"us": people["us"], "sy_own": people["sy"], "obs": people["obs"]}[who]
    with pytest.raises(Forbidden):
        ack(cell, actor, message.seq)
    assert log_size(cell) == before


def test_a_party_outside_the_audience_cannot_find_the_message(cell, people):
    private = send(cell, people["il"], audience=["IL", "US"], subject="Only for the supervisor")
    for action in (lambda: ack(cell, people["sy"], private.seq), lambda: receipt(cell, people["sy"], private.seq, "read")):
        with pytest.raises(NotFound):
            action()
    with cell.db.read() as session:
        threads = hotline_service.inbox(session, viewer=people["sy"])
    assert all(t.thread.subject != "Only for the supervisor" for t in threads)


def test_missed_flash_deadline_is_recorded_then_escalates_again_at_twice_the_deadline(cell, people, clock):
    message = send(cell, people["sy"], precedence="FLASH")
    clock.advance(minutes=4, seconds=59)
    assert fire(cell) == []
    clock.advance(seconds=2)
    [missed] = fire(cell)
    assert missed.kind == "deadline.missed" and missed.party == "CELL"
    assert missed.body["party"] == "IL" and missed.submission["audience"] == ["IL", "SY", "US"]
    assert fire(cell) == []  # recorded once
    clock.advance(minutes=5)
    [escalated] = fire(cell)
    assert escalated.kind == "deadline.escalated"
    clock.advance(hours=1)
    assert fire(cell) == []
    # A late acknowledgement is still recorded, and meets the deadline.
    late = ack(cell, people["il"], message.seq)
    row = deadlines_of(cell, message.seq)["IL"]
    assert (row.state, row.met_seq, row.missed_seq) == ("met", late.seq, missed.seq)


def test_routine_deadline_escalates_once(cell, people, clock):
    send(cell, people["il"], precedence="ROUTINE")
    clock.advance(hours=24, seconds=1)
    assert [e.kind for e in fire(cell)] == ["deadline.missed"]
    clock.advance(hours=48)
    assert fire(cell) == []


def test_deadlines_survive_a_restart_and_a_rebuild(cell, people, clock):
    send(cell, people["sy"], precedence="IMMEDIATE")
    with cell.db.read() as session:
        live = projection_digest(session)
    with cell.db.write() as session:
        rebuild(session)
        assert projection_digest(session) == live
    cell.log.forget()  # as after a restart: nothing in memory
    clock.advance(minutes=31)
    assert [e.kind for e in fire(cell)] == ["deadline.missed"]


def test_supervisor_sees_every_missed_deadline_parties_see_theirs(cell, people, clock):
    send(cell, people["sy"], precedence="FLASH", audience=["SY", "IL", "US"])
    clock.advance(minutes=6)
    fire(cell)
    with cell.db.read() as session:
        assert len(hotline_service.missed_for(session, viewer=people["us"])) == 1
        assert [d.party for d in hotline_service.owed_by(session, viewer=people["il"])] == ["IL"]


def test_coded_message_reads_the_same_in_three_languages(cell, people):
    message = send(cell, people["sy"], template="NOTIFY-MOVE", text=None, fields={
        "place": "quneitra", "start": "2026-11-23T06:00:00Z", "end": "2026-11-23T08:00:00Z"})
    with cell.db.read() as session:
        texts = {lang: hotline_service.render_body(session, message.body, lang) for lang in ("en", "ar", "he")}
    assert texts["en"] == "We notify a movement at Quneitra between 2026-11-23 06:00 UTC and 2026-11-23 08:00 UTC."
    assert "القنيطرة" in texts["ar"] and "06:00 UTC" in texts["ar"]
    assert "קוניטרה" in texts["he"] and "08:00 UTC" in texts["he"]


@pytest.mark.parametrize(("template", "fields", "code"), [
    ("NO-SUCH", {}, "unknown_template"),
    ("NOTIFY-MOVE", {"place": "quneitra", "start": "2026-11-23T06:00:00Z", "end": "2026-11-23T08:00:00Z",
                     "colour": "red"}, "unknown_field"),
    ("NOTIFY-MOVE", {"place": "atlantis", "start": "2026-11-23T06:00:00Z", "end": "2026-11-23T08:00:00Z"},
     "unknown_place"),
    ("NOTIFY-MOVE", {"place": "quneitra", "start": "tomorrow", "end": "2026-11-23T08:00:00Z"}, "bad_field"),
    ("REQ-CLARIFY", {"entry": 99999}, "bad_field"),
    ("REQ-CEASE", {"place": "quneitra", "activity": "dancing"}, "bad_field"),
])
def test_bad_coded_messages_are_refused_and_nothing_is_recorded(cell, people, template, fields, code):
    before = log_size(cell)
    with pytest.raises(FusioncellError) as info:
        send(cell, people["il"], template=template, fields=fields, text=None)
    assert info.value.code == code
    assert log_size(cell) == before


def test_a_template_cannot_cite_an_entry_the_author_cannot_see(cell, people):
    private = send(cell, people["il"], audience=["IL", "US"])
    with pytest.raises(FusioncellError) as info:
        send(cell, people["sy"], template="REQ-CLARIFY", fields={"entry": private.seq}, text=None)
    assert info.value.code == "bad_field"


def test_device_signed_message_meets_the_same_checks(cell, people):
    from tests.factories.identity import device_member

    signer = device_member(cell, "sy/device-1", "SY", ["liaison"])
    body = {"thread": None, "precedence": "ROUTINE", "subject": "x", "attachments": [],
            "template": {"code": "REQ-CEASE", "fields": {"place": "atlantis", "activity": "fire"}}}
    submission, sig = signer.submit(kind="hotline.message", body=body, audience=["IL", "SY", "US"],
                                    created="2026-11-22T10:00:00.000Z")
    before = log_size(cell)
    with pytest.raises(FusioncellError) as info, cell.log.transaction(cell.db) as session:
        cell.log.append(session, submission=submission, sig=sig, body=body)
    assert info.value.code == "unknown_place" and log_size(cell) == before


def test_replies_stay_in_the_threads_audience(cell, people):
    first = send(cell, people["il"], audience=["IL", "US"])
    thread = first.leaf_hash.hex()
    reply = send(cell, people["us"], thread=thread, audience=["IL", "SY", "US"], text="Seen")
    assert reply.submission["audience"] == ["IL", "US"]
    with cell.db.read() as session:
        _thread, views = hotline_service.thread_view(session, viewer=people["il"], thread_id=thread, language="en")
    assert [v.message.seq for v in views] == [first.seq, reply.seq]
    with pytest.raises(NotFound), cell.db.read() as session:
        hotline_service.thread_view(session, viewer=people["sy"], thread_id=thread, language="en")


def test_attachments_are_limited_typed_and_released_with_their_message(cell, people):
    with cell.log.transaction(cell.db) as session:
        with pytest.raises(TooLarge):
            hotline_service.store_file(session, viewer=people["il"], data=b"x" * 20, media_type="text/plain",
                                       clock_now="2026-11-22T10:00:00.000Z", limit=10)
        with pytest.raises(InvalidInput, match="refused"):
            hotline_service.store_file(session, viewer=people["il"], data=b"MZ", media_type="application/x-msdownload",
                                       clock_now="2026-11-22T10:00:00.000Z")
        stored = hotline_service.store_file(session, viewer=people["il"], data=b"photo of the crater",
                                            media_type="image/png", clock_now="2026-11-22T10:00:00.000Z")
    attachment = {"sha256": stored.sha256, "name": "crater.png", "media_type": "image/png", "size": stored.size}
    body = hotline_service.compose_body(precedence="PRIORITY", subject="Evidence", thread=None, template_code=None,
                                        fields=None, text="See the photo", lang="en", attachments=[attachment])
    with cell.log.transaction(cell.db) as session:
        message = hotline_service.send_message(session, log=cell.log, kek=cell.kek, viewer=people["il"],
                                               audience=["IL", "US"], body=body)
    assert message.body["attachments"][0]["sha256"] == stored.sha256  # the hash is in the signed body
    with cell.db.read() as session:
        assert hotline_service.access_file(session, viewer=people["us"], sha256=stored.sha256).data
        with pytest.raises(NotFound):
            hotline_service.access_file(session, viewer=people["sy"], sha256=stored.sha256)


def test_every_template_renders_in_every_language():
    samples = {"entry": 3, "place": "quneitra", "time": "2026-11-23T06:00:00.000Z", "text": "x", "number": 2}
    for template in templates.catalog().values():
        fields = {f.name: (next(iter(f.choices)) if f.type == "choice" else samples[f.type]) for f in template.fields}
        for language in templates.LANGUAGES:
            text = templates.render(template.code, fields, language, place_name=lambda p, lang: f"<{p}:{lang}>")
            assert "{" not in text and text.strip()
            if any(f.type == "place" for f in template.fields):
                assert f"<quneitra:{language}>" in text


def test_the_ticker_records_each_deadline_on_its_own(cell, people, clock):
    from fusioncell.record.commit import GroupCommitter

    first = send(cell, people["sy"], precedence="FLASH")
    second = send(cell, people["il"], precedence="FLASH")
    clock.advance(minutes=6)
    committer = GroupCommitter(cell.db, cell.log)
    ticker = engine.Ticker(committer, cell.log, interval=3600)
    try:
        fired = ticker.tick()
        assert sorted(e.body["source"] for e in fired) == [first.seq, second.seq]
        assert ticker.tick() == []  # each passing is recorded once
    finally:
        ticker.close()
        committer.close()
