"""Authentication over the API: passwords, TOTP, sessions, CSRF, tokens, lockout, rate limit, bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fusioncell.identity.auth import totp_now
from fusioncell.record.models import Entry
from tests.factories.identity import password_of, token_for


def login(api, member, password=None, totp=None):
    body = {"member": member, "password": password or password_of(member)}
    if totp:
        body["totp"] = totp
    return api.post("/api/v1/auth/login", json=body)


def entries_of(cell, kind):
    with cell.db.read() as session:
        return session.execute(select(Entry).where(Entry.kind == kind).order_by(Entry.seq)).scalars().all()


def size(api):
    with api.cell.db.read() as session:
        return api.cell.log.tree(session).size


def test_login_sets_a_strict_httponly_cookie_and_is_recorded(api):
    response = login(api, "il/liaison-1")
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert response.json()["party"] == "IL" and response.json()["csrf_token"]
    [entry] = entries_of(api.cell, "identity.login")
    assert entry.audience == "IL US" and entry.party == "CELL"


def test_cookie_is_secure_over_https(cell):
    from starlette.testclient import TestClient

    from fusioncell.app import create_app
    from tests.factories.identity import add_personas

    add_personas(cell)
    with TestClient(create_app(cell), base_url="https://testserver") as client:
        response = login(client, "il/liaison-1")
    assert "secure" in response.headers["set-cookie"].lower()


def test_wrong_password_is_refused_recorded_and_locks_after_five(api):
    for _ in range(5):
        response = login(api, "sy/liaison-1", password="wrong password!!")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unauthenticated"
    locked = login(api, "sy/liaison-1")
    assert locked.status_code == 429 and "locked until" in locked.json()["detail"]
    reasons = [e.leaf for e in entries_of(api.cell, "identity.login_failed")]
    assert len(reasons) == 6
    api.cell.log.clock.advance(minutes=16)
    assert login(api, "sy/liaison-1").status_code == 200


def test_unknown_member_gets_the_same_answer_as_a_wrong_password(api):
    unknown = login(api, "xx/nobody", password="whatever password")
    wrong = login(api, "il/liaison-1", password="whatever password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]


def test_login_is_rate_limited_per_address(api):
    codes = [login(api, f"il/nobody-{i}", password="x" * 12).status_code for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    assert int(login(api, "il/liaison-1").headers["retry-after"]) > 0


def test_unsafe_request_without_csrf_token_is_refused_and_changes_nothing(api):
    csrf = login(api, "il/liaison-1").json()["csrf_token"]
    before = size(api)
    response = api.post("/api/v1/auth/tokens", json={"scopes": ["read"]})
    assert response.status_code == 403 and response.json()["code"] == "csrf"
    assert size(api) == before
    ok = api.post("/api/v1/auth/tokens", json={"scopes": ["read"]}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201 and ok.json()["token"].startswith("fct_")
    assert entries_of(api.cell, "identity.token_created")


def test_bearer_token_scopes_are_enforced(api):
    token = token_for(api.cell, "il/liaison-1", ["read"])
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/records", headers=headers).status_code == 200
    response = api.post("/api/v1/records", headers=headers, json={"submission": {}, "sig": "x", "body": {}})
    assert response.status_code == 403 and "write scope" in response.json()["detail"]
    assert api.get("/api/v1/records", headers={"Authorization": "Bearer fct_0000_nope"}).status_code == 401


def test_logout_ends_the_session_on_the_server(api):
    csrf = login(api, "il/liaison-1").json()["csrf_token"]
    cookie = api.cookies.get("fc_session")
    assert api.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    api.cookies.set("fc_session", cookie)
    response = api.get("/api/v1/records")
    assert response.status_code == 401 and "ended" in response.json()["detail"]


def test_expired_session_is_refused(api):
    login(api, "il/liaison-1")
    api.cell.log.clock.advance(hours=13)
    response = api.get("/api/v1/tree")
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_disabled_member_loses_session_token_and_key_at_once(api):
    token = token_for(api.cell, "sy/liaison-1", ["read", "write"])
    login(api, "sy/liaison-1")
    admin = api.__class__(api.app)
    csrf = login(admin, "sy/admin").json()["csrf_token"]
    response = admin.post("/api/v1/members/sy/liaison-1/disable", json={"reason": "left the cell"},
                          headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200 and response.json()["disabled"] is True
    assert api.get("/api/v1/tree").status_code == 401
    assert api.get("/api/v1/tree", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert login(api, "sy/liaison-1").status_code == 401
    [disabled] = entries_of(api.cell, "identity.member_disabled")
    assert disabled.author == "sy/admin" and disabled.party == "SY"
    assert entries_of(api.cell, "identity.key_revoked")


def test_an_administrator_manages_only_their_own_party(api):
    csrf = login(api, "il/admin").json()["csrf_token"]
    before = size(api)
    response = api.post("/api/v1/members/sy/liaison-1/disable", json={"reason": "x"},
                        headers={"X-CSRF-Token": csrf})
    assert response.status_code == 404  # not "forbidden": another party's members are not probed
    response = api.post("/api/v1/members", headers={"X-CSRF-Token": csrf}, json={
        "member": "sy/mole", "party": "SY", "name": "Mole", "roles": ["liaison"], "password": "p" * 14})
    assert response.status_code == 403
    assert size(api) == before
    response = api.post("/api/v1/members", headers={"X-CSRF-Token": csrf}, json={
        "member": "il/liaison-2", "party": "IL", "name": "Second", "roles": ["liaison"], "password": "p" * 14})
    assert response.status_code == 201
    assert login(api, "il/liaison-2", password="p" * 14).status_code == 200


def test_liaison_cannot_manage_members(api):
    csrf = login(api, "il/liaison-1").json()["csrf_token"]
    response = api.post("/api/v1/members", headers={"X-CSRF-Token": csrf}, json={
        "member": "il/liaison-3", "party": "IL", "name": "X", "roles": ["liaison"], "password": "p" * 14})
    assert response.status_code == 403


def test_totp_enrolment_then_required_at_login(api):
    csrf = login(api, "il/liaison-1").json()["csrf_token"]
    secret = api.post("/api/v1/auth/totp/setup", headers={"X-CSRF-Token": csrf}).json()["secret"]
    clock = api.cell.log.clock
    bad = api.post("/api/v1/auth/totp/confirm", json={"code": "000000"}, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 400
    code = totp_now(secret, at=clock.now().timestamp())
    assert api.post("/api/v1/auth/totp/confirm", json={"code": code}, headers={"X-CSRF-Token": csrf}).status_code == 204
    assert login(api, "il/liaison-1").status_code == 401
    assert login(api, "il/liaison-1", totp="123456" if code != "123456" else "654321").status_code == 401
    ok = login(api, "il/liaison-1", totp=totp_now(secret, at=clock.now().timestamp()))
    assert ok.status_code == 200
    from fusioncell.record.models import Body

    with api.cell.db.read() as session:
        methods = session.execute(select(Body.data).join(Entry, Entry.seq == Body.seq)
                                  .where(Entry.kind == "identity.login").order_by(Entry.seq)).scalars().all()
    assert methods[-1] == b'{"member":"il/liaison-1","method":"password+totp"}'
    assert methods[0] == b'{"member":"il/liaison-1","method":"password"}'


def test_party_can_require_totp(api):
    csrf = login(api, "sy/admin").json()["csrf_token"]
    response = api.put("/api/v1/parties/SY/settings", json={"totp_required": True}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    response = login(api, "sy/liaison-1")
    assert response.status_code == 403 and "second factor" in response.json()["detail"]
    assert login(api, "il/liaison-1").status_code == 200  # another party is not affected


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"{not json", "body"),
        (b'{"member": 5, "password": "x"}', "member"),
        (b'{"member": "il/liaison-1", "password": "x", "admin": true}', "admin"),
        (b'{"member": "il/liaison-1"}', "password"),
    ],
)
def test_malformed_requests_get_problem_details_and_change_nothing(api, payload, field):
    before = size(api)
    response = api.post("/api/v1/auth/login", content=payload, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_request" and field in problem["detail"]
    assert response.headers["content-type"] == "application/problem+json"
    assert size(api) == before


def test_oversize_body_is_refused(api):
    token = token_for(api.cell, "il/liaison-1", ["read", "write"])
    before = size(api)
    response = api.post("/api/v1/records", headers={"Authorization": f"Bearer {token}"},
                        json={"submission": {}, "sig": "x", "body": {"text": "x" * (2 << 20)}})
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert size(api) == before


def test_unauthenticated_reads_are_refused(api):
    for path in ("/api/v1/records", "/api/v1/records/0", "/api/v1/tree", "/api/v1/export", "/api/v1/members"):
        response = api.get(path)
        assert response.status_code == 401, path
        assert response.json()["code"] == "unauthenticated"


def test_openapi_and_security_headers(api):
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200 and "/api/v1/records" in response.json()["paths"]
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
