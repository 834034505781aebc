"""The staff console over HTTP (a real aiohttp server on 127.0.0.1, clients that keep cookies
like a browser): sign-in and its throttles, sessions and their expiry, CSRF, headers, roles,
the feedback inbox and item actions, exports, statistics, accounts and the audit log, and
where the console is served. Browser tests are in ``test_console_browser.py``.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import hashlib
import io
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from openpyxl import load_workbook

from bot.app import create_app
from bot.console.guard import CSP, SESSION_COOKIE, secure_cookies
from bot.services import Services
from bot.settings import AdminSettings, DatabaseSettings, ServerSettings, Settings
from bot.web.keys import SERVICES
from storage.audit import AuditFilter
from storage.feedback import FACTORS, FeedbackView
from storage.models import ConsoleSession
from tests.console_support import PASSWORD, ConsoleClient, add_account, browser

DESCRIPTION = (
    'Cán bộ hẹn <b>3 lần</b> <script>alert("x")</script> & "trễ hẹn" <img src=x onerror=alert(1)>'
)


def configured(url: str, **admin: Any) -> Settings:
    return Settings(database=DatabaseSettings(url=url), admin=AdminSettings(**admin))


@pytest.fixture
async def console(sqlite_url: str) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(configured(sqlite_url)), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


def services_of(server: TestServer) -> Services:
    return server.app[SERVICES]


async def complaint(
    services: Services, description: str = DESCRIPTION, **values: Any
) -> FeedbackView:
    now = dt.datetime.now(dt.UTC)
    defaults: dict[str, Any] = {
        "deadline_at": now + dt.timedelta(days=10),
        "point_id": "so-tu-phap",
        "dossier_code": "000.00.12.H05-261201-0007",
        "phone": "0912345678",
        "contact_consent_at": now,
    }
    return await services.storage.feedback.create_complaint(
        "telegram", "218485655", description=description, **{**defaults, **values}
    )


async def survey(
    services: Services, point: str, *ratings: int | None, comment: str | None = None
) -> FeedbackView:
    now = dt.datetime.now(dt.UTC)
    started = await services.storage.feedback.start_survey(
        "zalo", "z-survey", deadline_at=now + dt.timedelta(days=15)
    )
    done = await services.storage.feedback.complete_survey(
        started.id, point_id=point, comment=comment, **dict(zip(FACTORS, ratings, strict=True))
    )
    assert done is not None
    return done


def audit_actions(rows: list[Any]) -> list[str]:
    return [r.action for r in rows]


# --- headers, sessions, sign-in -------------------------------------------------------------


async def test_every_console_response_carries_the_security_headers(console: TestServer) -> None:
    await add_account(services_of(console), "nv.xem", "viewer")
    async with browser(console) as anonymous, browser(console) as viewer:
        await viewer.sign_in("nv.xem")
        pages = [
            await anonymous.get("/admin/login"),
            await anonymous.get("/admin/feedback", allow_redirects=False),  # 303
            await anonymous.get("/admin/static/console.css"),
            await viewer.get("/admin/accounts"),  # 403
            await viewer.get("/admin/feedback/PA-NOPE9"),  # 404
            await viewer.get("/admin/no-such-page"),  # 404
        ]
    assert [p.status for p in pages] == [200, 303, 200, 403, 404, 404]
    for page in pages:
        assert page.headers["Content-Security-Policy"] == CSP
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
        assert page.headers["Cache-Control"] == "no-store"
    assert "unsafe-inline" not in CSP
    assert "script-src 'self'" in CSP
    assert "Không được phép" in pages[3].text
    assert "Không tìm thấy trang" in pages[4].text
    # No inline script or style anywhere in a page (the CSP would block it).
    for page in pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
        assert " style=" not in page.text
        assert "<style" not in page.text


async def test_a_page_needs_a_session_and_sign_in_leads_back_to_it(console: TestServer) -> None:
    services = services_of(console)
    await add_account(services, "cv.hoa", "staff", full_name="Trần Thị Hoa")
    async with browser(console) as me:
        away = await me.get("/admin/feedback?status=new", allow_redirects=False)
        assert away.status == 303
        assert away.headers["Location"] == "/admin/login?next=%2Fadmin%2Ffeedback%3Fstatus%3Dnew"
        login = await me.get(away.headers["Location"])
        assert 'name="next" value="/admin/feedback?status=new"' in login.text
        landed = await me.post(
            "/admin/login",
            {"username": "CV.Hoa", "password": PASSWORD, "next": "/admin/feedback?status=new"},
            csrf=login.csrf,
        )
        assert landed.status == 200
        assert landed.url.endswith("/admin/feedback?status=new")
        assert "Trần Thị Hoa" in landed.text
        # Signed in, the sign-in page sends home.
        assert (await me.get("/admin/login")).url.endswith("/admin/")
    async with browser(console) as other:
        login = await other.get("/admin/login")
        for target in ("//evil.example/admin/", "https://evil.example/", "/elsewhere"):
            landed = await other.post(
                "/admin/login",
                {"username": "cv.hoa", "password": PASSWORD, "next": target},
                csrf=login.csrf,
            )
            assert landed.url.endswith("/admin/"), target


async def test_the_session_cookie_is_random_http_only_and_only_its_hash_is_stored(
    console: TestServer,
) -> None:
    services = services_of(console)
    await add_account(services, "cv.hoa", "staff")
    async with browser(console) as me:
        login = await me.get("/admin/login")
        async with me.session.post(
            console.make_url("/admin/login"),
            data={"username": "cv.hoa", "password": PASSWORD, "csrf": login.csrf},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
            cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/admin"
    assert not cookie["secure"]  # the test server listens on loopback
    token = cookie.value
    assert len(token) >= 43  # 32 random bytes, base64url
    from sqlalchemy import select

    async with services.storage.db.connect() as connection:
        stored = (
            await connection.execute(select(ConsoleSession.id_hash, ConsoleSession.csrf_token))
        ).all()
    assert stored[0][0] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {stored[0][0], stored[0][1]}
    # Secure unless the console listens on loopback, or as configured.
    assert not secure_cookies(Settings(server=ServerSettings(host="127.0.0.1")))
    assert not secure_cookies(Settings(server=ServerSettings(host="localhost")))
    assert secure_cookies(Settings(server=ServerSettings(host="0.0.0.0")))
    assert secure_cookies(
        Settings(
            server=ServerSettings(host="127.0.0.1"), admin=AdminSettings(port=9000, host="10.0.0.5")
        )
    )
    assert secure_cookies(Settings(admin=AdminSettings(cookie_secure=True)))


async def test_wrong_password_and_unknown_name_get_the_same_answer(console: TestServer) -> None:
    services = services_of(console)
    await add_account(services, "cv.hoa", "staff")
    async with browser(console) as me:
        wrong = await me.sign_in("cv.hoa", "mật khẩu sai hoàn toàn")
        unknown = await me.sign_in("khong.co.ai", PASSWORD)
    assert wrong.status == unknown.status == 401
    message = "Tên đăng nhập hoặc mật khẩu không đúng."
    assert message in wrong.text
    assert message in unknown.text
    assert me.cookie(SESSION_COOKIE) is None
    rows = await services.storage.audit.page(AuditFilter())
    assert [(r.action, r.actor, r.account_id is not None) for r in rows[:2]] == [
        ("signin.failed", "khong.co.ai", False),
        ("signin.failed", "cv.hoa", True),
    ]
    assert all(r.address == "127.0.0.1" for r in rows[:2])


async def test_five_failures_lock_a_name_whether_or_not_it_exists(sqlite_url: str) -> None:
    # The address slowdown is set apart, so that only the names' lockouts show here.
    console = TestServer(create_app(configured(sqlite_url, address_failures=50)), host="127.0.0.1")
    await console.start_server()
    try:
        await _five_failures(console)
    finally:
        await console.close()


async def _five_failures(console: TestServer) -> None:
    services = services_of(console)
    await add_account(services, "cv.hoa", "staff")
    async with browser(console) as me:
        answers = [await me.sign_in("cv.hoa", f"sai mật khẩu lần {i}") for i in range(5)]
        assert [a.status for a in answers] == [401] * 5
        assert "tạm khóa" not in answers[3].text
        assert "tạm khóa" in answers[4].text
        locked = await me.sign_in("cv.hoa", PASSWORD)
        assert locked.status == 401
        assert "tạm khóa" in locked.text
        assert "15 phút" in locked.text
        ghosts = [await me.sign_in("khong.co.ai", f"sai {i} lần rồi nhé") for i in range(5)]
        assert "tạm khóa" in ghosts[-1].text  # an unknown name locks the same way
    # An admin's password reset lifts the lock.
    from bot.accounts import Accounts
    from tests.console_support import SETUP

    await Accounts(services.storage.accounts, services.storage.audit).reset_password(
        "cv.hoa", "mật khẩu tạm mới 2026", actor=SETUP
    )
    async with browser(console) as me:
        page = await me.sign_in("cv.hoa", "mật khẩu tạm mới 2026")
        assert page.url.endswith("/admin/password")  # someone else chose it: change it first


async def test_an_address_that_keeps_failing_is_slowed(sqlite_url: str) -> None:
    settings = configured(sqlite_url, address_failures=3)
    async with TestServer(create_app(settings), host="127.0.0.1") as server:
        await add_account(services_of(server), "cv.hoa", "staff")
        async with browser(server) as me:
            for name in ("a.nguyen", "b.tran", "c.le"):
                assert (await me.sign_in(name, "không đúng đâu bạn ơi")).status == 401
            slowed = await me.sign_in("cv.hoa", PASSWORD)
            assert slowed.status == 429
            assert int(slowed.headers["Retry-After"]) in (1, 2)
            assert "Vui lòng đợi" in slowed.text
            await asyncio.sleep(int(slowed.headers["Retry-After"]) + 0.2)
            assert (await me.sign_in("cv.hoa", PASSWORD)).url.endswith("/admin/")


async def test_idle_and_absolute_expiry_send_back_to_sign_in(sqlite_url: str) -> None:
    settings = configured(sqlite_url, idle_minutes=0.02, absolute_hours=0.001)  # 1.2 s, 3.6 s
    async with TestServer(create_app(settings), host="127.0.0.1") as server:
        await add_account(services_of(server), "cv.hoa", "staff")
        async with browser(server) as me:
            await me.sign_in("cv.hoa")
            await asyncio.sleep(1.5)
            page = await me.get("/admin/feedback")
            assert page.url.endswith("/admin/login?expired=1&next=/admin/feedback")
            assert "Phiên làm việc đã hết hạn" in page.text
            assert me.cookie(SESSION_COOKIE) is None
            # Active all along, a session still ends at its absolute limit.
            await me.sign_in("cv.hoa")
            for _ in range(4):
                await asyncio.sleep(0.8)
                assert (await me.get("/admin/feedback")).url.endswith("/admin/feedback")
            await asyncio.sleep(0.8)
            assert "/admin/login?expired=1" in (await me.get("/admin/feedback")).url


async def test_signing_out_ends_every_session_of_the_account(console: TestServer) -> None:
    services = services_of(console)
    await add_account(services, "cv.hoa", "staff")
    async with browser(console) as phone, browser(console) as desk:
        await phone.sign_in("cv.hoa")
        await desk.sign_in("cv.hoa")
        out = await desk.post("/admin/logout")
        assert out.url.endswith("/admin/login?bye=1")
        assert "Bạn đã đăng xuất" in out.text
        assert "/admin/login" in (await phone.get("/admin/feedback")).url
    rows = await services.storage.audit.page(AuditFilter())
    assert rows[0].action == "signout"
    assert rows[0].detail == "kết thúc 2 phiên"


async def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(
    console: TestServer,
) -> None:
    await add_account(services_of(console), "cv.hoa", "staff")
    new = "một mật khẩu mới dài hơn"
    async with browser(console) as phone, browser(console) as desk:
        await phone.sign_in("cv.hoa")
        await desk.sign_in("cv.hoa")
        mismatch = await desk.post(
            "/admin/password", {"current": PASSWORD, "new": new, "confirm": new + "x"}
        )
        assert mismatch.status == 422
        assert "không khớp" in mismatch.text
        short = await desk.post(
            "/admin/password", {"current": PASSWORD, "new": "ngắn", "confirm": "ngắn"}
        )
        assert short.status == 422
        assert "ít nhất 12 ký tự" in short.text
        named = "cv.hoa-mật-khẩu-mới"
        has_name = await desk.post(
            "/admin/password", {"current": PASSWORD, "new": named, "confirm": named}
        )
        assert has_name.status == 422
        assert "không được chứa tên đăng nhập" in has_name.text
        wrong = await desk.post(
            "/admin/password", {"current": "không phải mật khẩu", "new": new, "confirm": new}
        )
        assert wrong.status == 422
        assert "Mật khẩu hiện tại không đúng" in wrong.text
        done = await desk.post("/admin/password", {"current": PASSWORD, "new": new, "confirm": new})
        assert done.url.endswith("/admin/?ok=password")
        assert "Đã đổi mật khẩu" in done.text
        assert (await desk.get("/admin/feedback")).url.endswith("/admin/feedback")
        assert "/admin/login" in (await phone.get("/admin/feedback")).url
    async with browser(console) as again:
        assert (await again.sign_in("cv.hoa", PASSWORD)).status == 401
        assert (await again.sign_in("cv.hoa", new)).url.endswith("/admin/")


async def test_a_password_chosen_by_someone_else_must_be_changed_first(console: TestServer) -> None:
    await add_account(services_of(console), "cv.moi", "staff", must_change_password=True)
    async with browser(console) as me:
        first = await me.sign_in("cv.moi")
        assert first.url.endswith("/admin/password")
        assert "Hãy đặt mật khẩu của riêng bạn" in first.text
        for path in ("/admin/", "/admin/feedback", "/admin/stats"):
            assert (await me.get(path)).url.endswith("/admin/password"), path
        new = "mật khẩu riêng của tôi"
        await me.post("/admin/password", {"current": PASSWORD, "new": new, "confirm": new})
        assert (await me.get("/admin/feedback")).url.endswith("/admin/feedback")


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    console: TestServer,
) -> None:
    services = services_of(console)
    await add_account(services, "cv.hoa", "staff")
    item = await complaint(services)
    async with browser(console) as me:
        await me.sign_in("cv.hoa")
        path = f"/admin/feedback/{item.code}/answer"
        missing = await me.post(path, {"text": "Đã xử lý."}, csrf=None)
        forged = await me.post(path, {"text": "Đã xử lý."}, csrf="x" * 43)
        assert missing.status == forged.status == 403
        assert "thiếu mã bảo vệ" in missing.text
        still = await services.storage.feedback.get(item.code)
        assert still is not None
        assert (still.status, still.answer) == ("new", None)
        out = await me.post("/admin/logout", csrf=None)
        assert out.status == 403
        assert (await me.get("/admin/")).url.endswith("/admin/")
    async with browser(console) as stranger:
        # The sign-in form's own token must match its cookie.
        refused = await stranger.post(
            "/admin/login", {"username": "cv.hoa", "password": PASSWORD}, csrf="y" * 43
        )
        assert refused.status == 403
        assert stranger.cookie(SESSION_COOKIE) is None
    rows = await services.storage.audit.page(AuditFilter(action="csrf.refused"))
    assert len(rows) == 4


# --- roles ------------------------------------------------------------------------------------


async def test_roles_decide_what_a_person_may_read_and_do(console: TestServer) -> None:
    services = services_of(console)
    await add_account(services, "nv.xem", "viewer")
    await add_account(services, "qt.vien", "admin")
    await add_account(services, "cv.hoa", "staff")
    item = await complaint(services)
    async with browser(console) as viewer, browser(console) as admin, browser(console) as staff:
        await viewer.sign_in("nv.xem")
        await admin.sign_in("qt.vien")
        await staff.sign_in("cv.hoa")
        page = await viewer.get(f"/admin/feedback/{item.code}")
        assert page.status == 200
        assert item.code in page.text
        assert "Gửi trả lời" not in page.text
        assert "Hiện số điện thoại" not in page.text
        assert "09******78" in page.text
        assert "0912345678" not in page.text
        for action, data in (
            ("answer", {"text": "Đã xử lý."}),
            ("contact", {}),
            ("reject", {"reason": "x"}),
        ):
            refused = await viewer.post(f"/admin/feedback/{item.code}/{action}", data)
            assert refused.status == 403, action
        assert (await viewer.post("/admin/feedback/export", {"format": "csv"})).status == 403
        assert (await viewer.get("/admin/accounts")).status == 403
        assert (await viewer.get("/admin/stats")).status == 200
        assert (await admin.get("/admin/feedback")).status == 403  # admins manage accounts
        assert (await admin.get("/admin/audit")).status == 200
        assert (await staff.get("/admin/audit")).status == 403
        home = await staff.get("/admin/")
        assert "Góp ý, phản ánh" in home.text
        assert "/admin/accounts" not in home.text
    unchanged = await services.storage.feedback.get(item.code)
    assert unchanged is not None
    assert unchanged.status == "new"
    denied = await services.storage.audit.page(AuditFilter(action="access.denied"))
    assert {r.actor for r in denied} == {"nv.xem", "qt.vien", "cv.hoa"}
    assert any(r.target == f"POST /admin/feedback/{item.code}/answer" for r in denied)


# --- the inbox ------------------------------------------------------------------------------

CODE = re.compile(r'href="/admin/feedback/((?:PA|DG)-[0-9A-Z]{5})"')


def codes(page_text: str) -> list[str]:
    return CODE.findall(page_text)


@pytest.fixture
async def inbox_server(database_url: str) -> AsyncIterator[TestServer]:
    async with TestServer(create_app(configured(database_url)), host="127.0.0.1") as server:
        yield server


async def test_the_inbox_filters_counts_and_pages_by_keyset(inbox_server: TestServer) -> None:
    services = services_of(inbox_server)
    await add_account(services, "cv.hoa", "staff")
    now = dt.datetime.now(dt.UTC)
    made = [
        await complaint(services, f"Phản ánh số {i}: hồ sơ trễ hẹn", point_id="so-tu-phap")
        for i in range(57)
    ]
    late = await complaint(services, "Quá hạn lâu rồi", deadline_at=now - dt.timedelta(days=2))
    low = await survey(services, "phuong-kinh-bac", 5, 2, None, 4, 4, comment="Chờ lâu quá")
    high = await survey(services, "ttphcc", 5, 5, 5, 5, 5)
    from bot.feedback_desk import FeedbackDesk

    desk = FeedbackDesk(services.storage.feedback)
    await desk.assign(made[3].code, to="cv.hoa", actor="Trưởng phòng")
    await desk.answer(made[4].code, text="Đã trả kết quả ngày 02/12.", actor="cv.hoa")

    async with browser(inbox_server) as me:
        await me.sign_in("cv.hoa")
        first = await me.get("/admin/feedback")
        assert first.status == 200
        tabs = dict(
            re.findall(
                r'<a href="\?[^"]*"[^>]*>([^<]+?) <span class="count">([\d.]+)</span>', first.text
            )
        )
        assert tabs == {
            "Tất cả": "60",
            "Mới": "58",
            "Đang xử lý": "1",
            "Đã trả lời": "1",
            "Đã giải quyết": "0",
            "Từ chối": "0",
        }
        page1 = codes(first.text)
        assert len(page1) == 50
        assert page1[0] == high.code
        assert "Cũ hơn" in first.text
        assert "Mới hơn" not in first.text
        older = re.search(r'href="\?(older=\d+)"', first.text)
        assert older is not None
        second = await me.get(f"/admin/feedback?{older.group(1)}")
        page2 = codes(second.text)
        assert len(page2) == 10
        assert not set(page1) & set(page2)
        assert "Mới hơn" in second.text
        assert "Cũ hơn" not in second.text
        newer = re.search(r'href="\?(newer=\d+)"', second.text)
        assert newer is not None
        assert codes((await me.get(f"/admin/feedback?{newer.group(1)}")).text) == page1

        async def found(query: str) -> set[str]:
            return set(codes((await me.get(f"/admin/feedback?{query}")).text))

        assert await found("overdue=1") == {late.code}
        assert await found("kind=survey") == {low.code, high.code}
        assert await found("rating=2") == {low.code}
        assert await found("point=phuong-kinh-bac") == {low.code}
        assert await found("q=cho+lau") == {low.code}  # without diacritics
        assert await found("q=TRẢ+KẾT+QUẢ") == {made[4].code}  # the answer is searched too
        by_dossier = await me.get("/admin/feedback?q=H05-261201")  # the dossier code
        assert '>Tất cả <span class="count">58</span>' in by_dossier.text
        assert await found("mine=1") == {made[3].code}
        assert await found("status=answered") == {made[4].code}
        # Counts follow the other filters.
        filtered = await me.get("/admin/feedback?kind=survey")
        assert '>Tất cả <span class="count">2</span>' in filtered.text
        # Nonsense is ignored, not an error.
        assert (
            await me.get("/admin/feedback?kind=x&status=y&rating=9&from=bad&older=abc")
        ).status == 200
        day = now.astimezone(dt.timezone(dt.timedelta(hours=7))).date()
        assert len(await found(f"from={day}&to={day}")) == 50
        assert await found(f"to={day - dt.timedelta(days=1)}") == set()


async def test_an_item_shows_what_the_citizen_wrote_as_text_and_the_phone_only_when_asked(
    console: TestServer,
) -> None:
    services = services_of(console)
    await add_account(services, "cv.hoa", "staff", full_name="Trần Thị Hoa")
    item = await complaint(services)
    async with browser(console) as me:
        await me.sign_in("cv.hoa")
        inbox = await me.get("/admin/feedback")
        page = await me.get(f"/admin/feedback/{item.code}")
        for text in (inbox.text, page.text):
            assert "<script>alert" not in text
            assert "<img src=x" not in text
            assert "<b>3 lần</b>" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
        assert "09******78" in page.text
        assert "0912345678" not in page.text
        assert "Sở Tư pháp" in page.text
        assert "000.00.12.H05-261201-0007" in page.text
        assert "còn 10 ngày" in page.text
        shown = await me.post(f"/admin/feedback/{item.code}/contact")
        assert shown.status == 200
        assert "0912345678" in shown.text
    accessed = await services.storage.feedback_inbox.access_log()
    assert [(a.actor, a.via, a.action, a.detail) for a in accessed] == [
        ("cv.hoa", "console", "show", item.code)
    ]
    rows = await services.storage.audit.page(AuditFilter(action="feedback.contact"))
    assert [(r.actor, r.target, r.address) for r in rows] == [("cv.hoa", item.code, "127.0.0.1")]


async def test_staff_actions_call_the_desk_and_histories_say_the_console(
    inbox_server: TestServer,
) -> None:
    services = services_of(inbox_server)
    hoa = await add_account(services, "cv.hoa", "staff", full_name="Trần Thị Hoa")
    await add_account(services, "cv.binh", "staff", full_name="Lê Văn Bình")
    await add_account(services, "nv.xem", "viewer")
    first, second = await complaint(services), await complaint(services, "Lệ phí thu hai lần")
    async with browser(inbox_server) as me:
        await me.sign_in("cv.hoa")
        item_page = await me.get(f"/admin/feedback/{first.code}")
        assert '<option value="cv.binh">Lê Văn Bình (cv.binh)</option>' in item_page.text
        assert "nv.xem" not in item_page.text  # only staff can be given items
        refused = await me.post(f"/admin/feedback/{first.code}/assign", {"to": "nv.xem"})
        assert refused.status == 422
        assert "Hãy chọn một cán bộ" in refused.text
        assigned = await me.post(f"/admin/feedback/{first.code}/assign", {"to": "cv.binh"})
        assert assigned.url.endswith(f"/admin/feedback/{first.code}?ok=assigned")
        assert "Đã giao việc." in assigned.text
        assert "Lê Văn Bình" in assigned.text
        empty = await me.post(f"/admin/feedback/{first.code}/answer", {"text": "   "})
        assert empty.status == 409
        assert "không được để trống" in empty.text
        long = "Kính gửi ông/bà, " + "chi tiết " * 200
        too_long = await me.post(f"/admin/feedback/{first.code}/answer", {"text": long})
        assert too_long.status == 409
        assert "dài quá 1500 ký tự" in too_long.text
        assert long.strip() in too_long.text  # what was typed is kept, to shorten it
        answer = "Hồ sơ đã có kết quả; mời ông/bà đến nhận <ngay>."
        answered = await me.post(f"/admin/feedback/{first.code}/answer", {"text": answer})
        assert answered.url.endswith("?ok=answered")
        assert "Hồ sơ đã có kết quả; mời ông/bà đến nhận &lt;ngay&gt;." in answered.text
        twice = await me.post(f"/admin/feedback/{first.code}/answer", {"text": "Lần nữa"})
        assert twice.status == 409
        assert "đang ở trạng thái “đã trả lời”" in twice.text
        resolved = await me.post(f"/admin/feedback/{first.code}/resolve", {"text": ""})
        assert resolved.url.endswith("?ok=resolved")
        no_reason = await me.post(f"/admin/feedback/{second.code}/reject", {"reason": ""})
        assert no_reason.status == 409
        rejected = await me.post(
            f"/admin/feedback/{second.code}/reject", {"reason": "Không thuộc thẩm quyền"}
        )
        assert rejected.url.endswith("?ok=rejected")
        assert "Lý do từ chối" in rejected.text
    item = await services.storage.feedback.get(first.code)
    assert item is not None
    assert (item.status, item.assignee, item.answer, item.answered_by, item.notify_status) == (
        "resolved",
        "cv.binh",
        answer,
        "cv.hoa",
        "pending",
    )
    events = await services.storage.feedback_inbox.events(item.id)
    assert [(e.to_status, e.actor, e.via) for e in events] == [
        ("new", "citizen", "citizen"),
        ("in_progress", "cv.hoa", "console"),
        ("answered", "cv.hoa", "console"),
        ("resolved", "cv.hoa", "console"),
    ]
    async with browser(inbox_server) as me:
        await me.sign_in("cv.binh")
        history = (await me.get(f"/admin/feedback/{first.code}")).text
        assert history.count('<span class="via via-console">bảng điều khiển</span>') == 3
    rows = await services.storage.audit.page(AuditFilter(actor="cv.hoa"))
    assert [r.action for r in rows if r.action.startswith("feedback.")] == [
        "feedback.reject",
        "feedback.resolve",
        "feedback.answer",
        "feedback.assign",
    ]
    assert all(r.account_id == hoa.id and r.via == "console" for r in rows)


async def test_exports_of_the_current_filter_download_as_csv_and_xlsx(console: TestServer) -> None:
    services = services_of(console)
    await add_account(services, "cv.hoa", "staff")
    formula = await complaint(services, '=HYPERLINK("http://evil.example","bấm")')
    other = await complaint(services, "Một phản ánh khác", point_id="ttphcc")
    async with browser(console) as me:
        await me.sign_in("cv.hoa")
        token = (await me.get("/admin/feedback")).csrf
        async with me.session.post(
            console.make_url("/admin/feedback/export"),
            data={"csrf": token, "format": "csv", "point": "so-tu-phap"},
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/csv")
            assert "attachment" in response.headers["Content-Disposition"]
            assert response.headers["Cache-Control"] == "no-store"
            body = (await response.read()).decode("utf-8")
        assert body.startswith("\ufeff")
        rows = list(csv.reader(io.StringIO(body[1:])))
        assert rows[0][:3] == ["Mã", "Loại", "Trạng thái"]
        assert [r[0] for r in rows[1:]] == [formula.code]
        assert rows[1][11].startswith("'=HYPERLINK")  # never a formula in a spreadsheet
        assert rows[1][13] == "09******78"
        async with me.session.post(
            console.make_url("/admin/feedback/export"),
            data={"csrf": token, "format": "xlsx", "with_contact": "1"},
        ) as response:
            assert response.status == 200
            book = load_workbook(io.BytesIO(await response.read()))
        sheet = book.active
        assert sheet is not None
        values = list(sheet.iter_rows(values_only=True))
        assert {v[0] for v in values[1:]} == {formula.code, other.code}
        assert {v[13] for v in values[1:]} == {"0912345678"}
    accessed = await services.storage.feedback_inbox.access_log()
    assert [(a.actor, a.via, a.action) for a in accessed] == [("cv.hoa", "console", "export")]
    exports = await services.storage.audit.page(AuditFilter(action="feedback.export"))
    assert [r.detail.split(";")[0] for r in exports if r.detail] == ["kèm liên hệ", "csv, 1 mục"]


async def test_the_statistics_page_draws_the_index_in_svg_and_lists_what_is_late(
    console: TestServer,
) -> None:
    services = services_of(console)
    await add_account(services, "nv.xem", "viewer")
    await survey(services, "so-tu-phap", 5, 4, None, 2, 5)
    await survey(services, "so-tu-phap", 3, 3, 3, 3, 3)
    await survey(services, "phuong-kinh-bac", 4, 5, 4, 5, 4)
    late = await complaint(services, deadline_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    async with browser(console) as me:
        await me.sign_in("nv.xem")
        page = await me.get("/admin/stats?days=30")
        assert page.status == 200
        assert "<strong>3</strong> phiếu đánh giá" in page.text
        assert page.text.count("<svg ") == 2
        assert "<script" not in page.text.split("</head>")[1]
        # Satisfied shares: access 2/3, procedure 2/3, staff 1/2, result 1/3, feedback 2/3.
        assert '<strong class="big-inline">56,7%</strong>' in page.text
        assert "Phường Kinh Bắc" in page.text
        assert "Sở Tư pháp" in page.text
        assert late.code in page.text
        assert "quá hạn 3 ngày" in page.text
        custom = await me.get("/admin/stats?from=2020-01-01&to=2020-12-31")
        assert "<strong>0</strong> phiếu đánh giá" in custom.text


# --- accounts and the audit log -------------------------------------------------------------


async def test_admins_manage_accounts_in_the_console(console: TestServer) -> None:
    services = services_of(console)
    await add_account(services, "qt.vien", "admin", full_name="Quản Trị Viên")
    async with browser(console) as admin:
        await admin.sign_in("qt.vien")
        weak = await admin.post(
            "/admin/accounts/new",
            {
                "username": "cv.lan",
                "full_name": "Phạm Thị Lan",
                "roles": "staff",
                "password": "ngắn",
                "confirm": "ngắn",
            },
        )
        assert weak.status == 422
        assert "ít nhất 12 ký tự" in weak.text
        assert 'value="cv.lan"' in weak.text
        assert 'value="staff" checked' in weak.text
        bad_name = await admin.post(
            "/admin/accounts/new",
            {"username": "Lan <3", "roles": "staff", "password": PASSWORD, "confirm": PASSWORD},
        )
        assert bad_name.status == 422
        assert "Tên đăng nhập gồm" in bad_name.text
        temporary = "mật khẩu tạm thời 01"
        created = await admin.post(
            "/admin/accounts/new",
            {
                "username": "CV.Lan",
                "full_name": "Phạm Thị Lan",
                "roles": ["staff", "viewer"],
                "password": temporary,
                "confirm": temporary,
            },
        )
        assert created.url.endswith("/admin/accounts/cv.lan?ok=created")
        assert "Phạm Thị Lan" in created.text
        assert "phải đổi mật khẩu khi đăng nhập" in created.text
        again = await admin.post(
            "/admin/accounts/new",
            {"username": "cv.lan", "roles": "staff", "password": temporary, "confirm": temporary},
        )
        assert again.status == 422
        assert "Đã có tài khoản cv.lan" in again.text
        async with browser(console) as lan:
            assert (await lan.sign_in("cv.lan", temporary)).url.endswith("/admin/password")
            saved = await admin.post(
                "/admin/accounts/cv.lan", {"full_name": "Phạm Thị Lan", "roles": "viewer"}
            )
            assert saved.url.endswith("?ok=saved")
            disabled = await admin.post("/admin/accounts/cv.lan/disable")
            assert "Đã vô hiệu hóa" in disabled.text
            assert "/admin/login" in (await lan.get("/admin/")).url
            refused = await lan.sign_in("cv.lan", temporary)
            assert "đã bị vô hiệu hóa" in refused.text
            await admin.post("/admin/accounts/cv.lan/enable")
            assert (await lan.sign_in("cv.lan", temporary)).url.endswith("/admin/password")
        # The last active admin can neither lose the role nor be disabled (nor disable itself).
        self_demote = await admin.post(
            "/admin/accounts/qt.vien", {"full_name": "Quản Trị Viên", "roles": "staff"}
        )
        assert self_demote.status == 422
        assert "quản trị viên cuối cùng" in self_demote.text
        self_disable = await admin.post("/admin/accounts/qt.vien/disable")
        assert self_disable.status == 422
        assert "không thể tự vô hiệu hóa" in self_disable.text
        listing = await admin.get("/admin/accounts")
        assert "cv.lan" in listing.text
        assert "Chờ đổi mật khẩu" in listing.text
    lan = await services.storage.accounts.get("cv.lan")
    assert lan is not None
    assert lan.roles == ("viewer",)
    assert lan.active
    assert lan.must_change_password
    actions = [r.action for r in await services.storage.audit.page(AuditFilter(actor="qt.vien"))]
    for action in ("account.create", "account.roles", "account.disable", "account.enable"):
        assert action in actions


async def test_the_audit_log_lists_filters_and_exports_without_formulas(
    console: TestServer,
) -> None:
    services = services_of(console)
    await add_account(services, "qt.vien", "admin")
    async with browser(console) as stranger:
        await stranger.sign_in("=cmd|' /C calc'!A0", "không đúng mật khẩu")
        await stranger.sign_in("<b>ai đó</b>", "không đúng mật khẩu")
    async with browser(console) as admin:
        await admin.sign_in("qt.vien")
        page = await admin.get("/admin/audit")
        assert "&lt;b&gt;ai đó&lt;/b&gt;" in page.text
        assert "<b>ai đó</b>" not in page.text
        assert "Đăng nhập sai" in page.text
        assert "127.0.0.1" in page.text
        failed = await admin.get("/admin/audit?action=signin.failed")
        assert failed.text.count("Đăng nhập sai</td>") == 2
        mine = await admin.get("/admin/audit?actor=qt.vien")
        assert "Đăng nhập sai</td>" not in mine.text
        assert "Đăng nhập</td>" in mine.text
        async with admin.session.post(
            console.make_url("/admin/audit/export"),
            data={"csrf": page.csrf, "action": "signin.failed"},
        ) as response:
            assert response.status == 200
            assert "attachment" in response.headers["Content-Disposition"]
            body = (await response.read()).decode("utf-8")
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    assert rows[0][:5] == ["Thời điểm", "Người", "Mã tài khoản", "Qua", "Thao tác"]
    assert sorted(r[1] for r in rows[1:]) == ["'=cmd|' /c calc'!a0", "<b>ai đó</b>"]
    exported = await services.storage.audit.page(AuditFilter(action="audit.export"))
    assert exported[0].detail == "2 dòng; action=signin.failed"


async def test_the_audit_log_pages_by_keyset(console: TestServer) -> None:
    services = services_of(console)
    await add_account(services, "qt.vien", "admin")
    from tests.console_support import SETUP

    for i in range(60):
        await services.storage.audit.record(SETUP, "account.name", f"cv.{i:02d}")
    async with browser(console) as admin:
        await admin.sign_in("qt.vien")
        first = await admin.get("/admin/audit?action=account.name")
        targets = re.findall(r"cv\.\d\d", first.text)
        assert targets[0] == "cv.59"
        assert len(targets) == 50
        older = re.search(r'href="\?([^"]*before=\d+)"', first.text)
        assert older is not None
        second = await admin.get("/admin/audit?" + older.group(1).replace("&amp;", "&"))
        assert re.findall(r"cv\.\d\d", second.text) == [f"cv.{i:02d}" for i in range(9, -1, -1)]


# --- where the console is served ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_console_can_have_a_listener_of_its_own(sqlite_url: str) -> None:
    port = free_port()
    settings = configured(sqlite_url, host="127.0.0.1", port=port)
    async with (
        TestServer(create_app(settings), host="127.0.0.1") as server,
        ClientSession(cookie_jar=CookieJar(unsafe=True)) as session,
    ):
        async with session.get(server.make_url("/admin/login")) as public:
            assert public.status == 404
        async with session.get(f"http://127.0.0.1:{port}/admin/login") as own:
            assert own.status == 200
            assert "Đăng nhập" in await own.text()
            assert own.headers["X-Frame-Options"] == "DENY"
        async with session.get(server.make_url("/healthz")) as health:
            assert health.status == 200


async def test_the_console_can_be_turned_off(sqlite_url: str) -> None:
    async with (
        TestServer(create_app(configured(sqlite_url, enabled=False)), host="127.0.0.1") as server,
        browser(server) as me,
    ):
        assert (await me.get("/admin/login")).status == 404
        assert (await me.get("/")).status == 200


def test_a_host_without_a_port_is_refused() -> None:
    with pytest.raises(ValueError, match="BOT_ADMIN_HOST needs BOT_ADMIN_PORT"):
        AdminSettings(host="10.0.0.5")


async def test_without_accounts_the_sign_in_page_says_how_to_create_the_first(
    console: TestServer,
) -> None:
    async with browser(console) as me:
        page = await me.get("/admin/login")
        assert "bot users add TÊN --role admin" in page.text


_ = ConsoleClient  # the client type, for readers of the helpers
