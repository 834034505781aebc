"""The staff console in a real browser: Debian's Chromium, driven by Playwright, against the
whole application (``create_app``) served by aiohttp on 127.0.0.1, on SQLite.

What a person sees is what is asserted: headings, messages, table rows, the file that
downloads, the message the citizen receives on (fake) Telegram; the database is read only to
show that a refused action changed nothing. Every page a test looks at is saved as a
full-page screenshot under ``var/screenshots/<test>/`` (see ``tests/browser.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import re
import sys
import unicodedata
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Locator, Page, Response, expect
from pydantic import SecretStr

from bot import cli
from bot.accounts import Accounts
from bot.app import create_app
from bot.services import Services
from bot.settings import AdminSettings, Settings, TelegramSettings
from bot.web.keys import SERVICES
from storage.accounts import AccountView
from storage.audit import Actor, AuditFilter, AuditView
from storage.feedback import FeedbackView
from storage.models import utcnow
from tests.browser import PHONE, BrowserSession, chromium_path
from tests.fakes.telegram_api import FakeTelegram
from tests.test_feedback_channels import CHAT, SECRET, TOKEN, fast, tg_complaint, visible

Client = TestClient[web.Request, web.Application]
PREFIX = "/admin"

STAFF, STAFF_NAME, STAFF_PASSWORD = "cv.tran.thi.hoa", "Trần Thị Hoa", "Một-cửa Bắc Ninh 2026"
VIEWER, VIEWER_NAME, VIEWER_PASSWORD = "xem.pham.van.duc", "Phạm Văn Đức", "chỉ xem thôi, 2026!"
ADMIN, ADMIN_NAME, ADMIN_PASSWORD = "quantri.le.minh", "Lê Văn Minh", "Quản trị CCHC-2026 #1"
WRONG = "Tên đăng nhập hoặc mật khẩu không đúng."
EXPIRED = "Phiên làm việc đã hết hạn. Vui lòng đăng nhập lại."
FORBIDDEN = "Không được phép"
NO_RIGHT = "Tài khoản của bạn không có quyền thực hiện việc này."
# What the console says when a form comes without its protection token (in part: the
# wording around it may change).
NO_TOKEN = "thiếu mã bảo vệ"

LAND = (
    "Hồ sơ cấp đổi giấy chứng nhận quyền sử dụng đất nộp ngày 03/11 đã quá hẹn 5 ngày nhưng "
    "chưa được trả kết quả, cán bộ một cửa không giải thích lý do."
)
LAND_DOSSIER = "H05.22-251103-0041"
FEE = (
    "Cổng dịch vụ công báo lỗi khi thanh toán lệ phí cấp lại căn cước: tiền đã bị trừ nhưng "
    "hồ sơ vẫn báo chưa nộp phí."
)
SURVEY_COMMENT = "Cán bộ hướng dẫn tận tình, nhưng phải chờ gần một tiếng mới đến lượt."
TELEGRAM_COMPLAINT = (
    "Tôi nộp hồ sơ đăng ký biến động đất đai từ ngày 20/10, hẹn trả ngày 10/11 nhưng đến nay "
    "vẫn chưa có kết quả, gọi điện thì không ai nghe máy."
)
ANSWER = (
    "Chào bạn, Văn phòng Đăng ký đất đai đã kiểm tra: hồ sơ của bạn bị chậm do phải xác minh "
    "ranh giới thửa đất. Kết quả sẽ được trả ngày 25/11 tại bộ phận một cửa; bạn mang theo "
    "giấy hẹn và căn cước khi đến nhận. Xin lỗi bạn vì sự chậm trễ."
)

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
# Closes the search box's value="…" and opens an element, if the value were not escaped.
ATTRIBUTE_BREAK = '"><img src=x onerror="window.__pwned=3">'
# Runs in every page before the page's own scripts: collects what the CSP had to block.
WATCH_CSP = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""
# Whether the page is wider than the window (it would scroll sideways), and what sticks out.
SIDEWAYS = """
() => ({
  window: window.innerWidth,
  page: document.documentElement.scrollWidth,
  over: [...document.body.querySelectorAll("*")]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
    .map((e) => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""))
    .slice(0, 8),
})
"""
POST_FORM = """
({action, fields}) => {
  const form = document.createElement("form");
  form.method = "post";
  form.action = action;
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.append(input);
  }
  document.body.append(form);
  form.submit();
}
"""


# --- the application and the browser ----------------------------------------------------


@dataclass
class Console:
    """The whole application on a real aiohttp server on 127.0.0.1."""

    client: Client

    @property
    def services(self) -> Services:
        return self.client.app[SERVICES]

    def url(self, path: str = "/") -> str:
        return str(self.client.make_url(PREFIX + path))

    async def account(
        self, username: str, password: str, *roles: str, full_name: str
    ) -> AccountView:
        storage = self.services.storage
        return await Accounts(storage.accounts, storage.audit).add(
            username,
            roles=roles,
            password=password,
            actor=Actor("test", "cli"),
            full_name=full_name,
            must_change_password=False,
        )

    async def complaint(
        self,
        description: str,
        *,
        point_id: str = "van-phong-dang-ky-dat-dai",
        dossier_code: str | None = None,
        phone: str | None = None,
        channel: str = "zalo",
        external_id: str = "6142494823001112223",
    ) -> FeedbackView:
        now = utcnow()
        return await self.services.storage.feedback.create_complaint(
            channel,
            external_id,
            description=description,
            deadline_at=now + dt.timedelta(days=10),
            point_id=point_id,
            dossier_code=dossier_code,
            phone=phone,
            contact_consent_at=now if phone else None,
        )

    async def survey(self, comment: str) -> FeedbackView:
        feedback = self.services.storage.feedback
        started = await feedback.start_survey(
            "web", "web-citizen-3f9a1c7e", deadline_at=utcnow() + dt.timedelta(days=15)
        )
        done = await feedback.complete_survey(
            started.id,
            point_id="phuong-vo-cuong",
            r_access=5,
            r_procedure=4,
            r_staff=5,
            r_result=4,
            r_feedback=3,
            comment=comment,
        )
        assert done is not None
        return done

    async def item(self, code: str) -> FeedbackView:
        item = await self.services.storage.feedback.get(code)
        assert item is not None, code
        return item

    async def audit(self, action: str) -> list[AuditView]:
        return await self.services.storage.audit.page(AuditFilter(action=action))


class Rig:
    """One test's servers (closed last) and browser (closed first)."""

    def __init__(self, servers: contextlib.AsyncExitStack, browser: BrowserSession) -> None:
        self._servers = servers
        self._browser = browser

    async def console(self, settings: Settings) -> Console:
        server = TestServer(create_app(settings), host="127.0.0.1")
        client = await self._servers.enter_async_context(TestClient(server))
        return Console(client)

    async def telegram(self) -> FakeTelegram:
        """The fake Bot API; start it before the console that talks to it."""
        return await self._servers.enter_async_context(FakeTelegram(TOKEN))

    async def page(self, device: dict[str, Any] | None = None) -> Page:
        return await self._browser.page(device)

    async def shot(self, page: Page, what: str) -> None:
        """Save the page as it looks; on a phone, also check that it fits the screen's width
        (nothing cut off, nothing to scroll sideways)."""
        await self._browser.shot(page, what)
        size = await page.evaluate(SIDEWAYS)
        if size["window"] < 600:
            assert size["page"] <= size["window"], f"{what}: wider than the phone: {size}"


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    chromium_path()  # skip (or fail) before starting anything
    # Servers started during the test are closed after the browser that talks to them.
    async with (
        contextlib.AsyncExitStack() as servers,
        BrowserSession(request.node.name) as browser,
    ):
        yield Rig(servers, browser)
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftovers, f"tasks left running: {leftovers}"


def with_telegram(settings: Settings, api: FakeTelegram) -> Settings:
    """Telegram against the fake Bot API; answers are pushed within 0.2 s."""
    config = TelegramSettings(
        token=SecretStr(TOKEN), webhook_secret=SecretStr(SECRET), api_url=api.url
    )
    return fast(settings).model_copy(update={"telegram": config})


# --- what a person does -----------------------------------------------------------------


def path_of(page: Page) -> str:
    return urllib.parse.urlsplit(page.url).path


def query_of(page: Page) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))


async def follow(page: Page, target: Locator) -> Response:
    """Click a link or a form's button; the response of the page the browser lands on
    (after redirects: a form that worked lands on a page answered 200)."""
    async with page.expect_navigation() as navigation:
        await target.click()
    response = await navigation.value
    assert response is not None
    return response


async def sign_in(
    page: Page,
    console: Console,
    username: str,
    password: str,
    *,
    rig: Rig | None = None,
    what: str = "",
) -> Response:
    """Fill in the sign-in form (opened first unless on it) and send it; with ``rig``,
    a screenshot of the page it leads to."""
    if await page.locator("#username").count() == 0:
        await page.goto(console.url("/login"))
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(password)
    landed = await follow(page, page.get_by_role("button", name="Đăng nhập", exact=True))
    if rig is not None:
        await rig.shot(page, what or f"signed in as {username}")
    return landed


async def session_cookie(page: Page) -> dict[str, Any] | None:
    cookies = [c for c in await page.context.cookies() if c["name"] == "cchc_console"]
    return dict(cookies[0]) if cookies else None


async def alert(page: Page) -> str:
    return (await page.get_by_role("alert").inner_text()).strip()


async def notice(page: Page) -> str:
    return (await page.get_by_role("status").first.inner_text()).strip()


async def heading(page: Page) -> str:
    return (await page.locator("h1").first.inner_text()).strip()


async def csrf_of(page: Page) -> str:
    """The session's token, as every console page carries it (the sign-out form)."""
    token = await page.locator('header form input[name="csrf"]').input_value()
    assert len(token) >= 32
    return token


async def open_item_from_inbox(rig: Rig, page: Page, code: str, what: str) -> None:
    """From anywhere in the console: the inbox, the row of ``code``, its page."""
    await follow(page, page.get_by_role("link", name="Góp ý, phản ánh", exact=True))
    assert path_of(page) == f"{PREFIX}/feedback"
    row = page.locator("tbody tr").filter(has_text=code)
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Mới")
    await rig.shot(page, f"inbox {what}")
    await follow(page, row.get_by_role("link", name=code))
    assert path_of(page) == f"{PREFIX}/feedback/{code}"
    assert await heading(page) == f"Phản ánh {code} Mới"


async def answer_on_item_page(rig: Rig, page: Page, code: str, answer: str, what: str) -> None:
    """On the item's page: type the answer and send it; the page then shows it as sent."""
    box = page.locator("#a-text")
    await box.fill(answer)
    limit = int(await box.get_attribute("maxlength") or 0)
    await expect(page.locator("#a-count")).to_have_text(f"Còn {limit - len(answer)} ký tự.")
    await rig.shot(page, f"answer typed {what}")
    landed = await follow(page, page.get_by_role("button", name="Gửi trả lời"))
    assert landed.status == 200
    assert path_of(page) == f"{PREFIX}/feedback/{code}"
    assert query_of(page) == {"ok": "answered"}
    assert await notice(page) == (
        "Đã gửi câu trả lời. Bot sẽ chuyển tới người dân trên kênh họ đã dùng."
    )
    assert await heading(page) == f"Phản ánh {code} Đã trả lời"
    await expect(page.locator(".citizen-text").last).to_have_text(answer)
    await expect(page.locator("#a-text")).to_have_count(0)  # answered: no second answer
    await rig.shot(page, f"answer sent {what}")


async def citizen_receives(api: FakeTelegram, before: int, code: str, answer: str) -> None:
    sent = await api.wait_sent(before + 1, CHAT, seconds=5)
    assert len(sent) == before + 1
    assert sent[before]["parse_mode"] == "HTML"
    assert visible(sent[before]) == f"Trả lời cho phản ánh, góp ý {code} của bạn:\n\n{answer}"


# --- 1. signing in and out --------------------------------------------------------------


async def test_sign_in_then_sign_out_ends_the_session(rig: Rig, settings: Settings) -> None:
    console = await rig.console(settings)
    await console.account(STAFF, STAFF_PASSWORD, "staff", full_name=STAFF_NAME)
    page = await rig.page()

    await page.goto(console.url("/"))
    assert path_of(page) == f"{PREFIX}/login"
    assert await heading(page) == "Đăng nhập"
    await expect(page.get_by_role("button", name="Đăng xuất")).to_have_count(0)
    await rig.shot(page, "sign-in page")

    landed = await sign_in(page, console, STAFF, STAFF_PASSWORD)
    assert landed.status == 200
    assert path_of(page) == f"{PREFIX}/"
    assert await heading(page) == f"Xin chào, {STAFF_NAME}"
    await expect(page.locator("header .me")).to_have_text(STAFF_NAME)
    cookie = await session_cookie(page)
    assert cookie is not None
    assert (cookie["httpOnly"], cookie["path"], cookie["sameSite"]) == (True, PREFIX, "Lax")
    await rig.shot(page, "home after sign-in")

    await follow(page, page.get_by_role("button", name="Đăng xuất"))
    assert path_of(page) == f"{PREFIX}/login"
    assert await notice(page) == "Bạn đã đăng xuất."
    await expect(page.get_by_role("button", name="Đăng xuất")).to_have_count(0)
    assert await session_cookie(page) is None
    await rig.shot(page, "signed out")

    # The back button asks the server again (no-store): the home page is not shown again.
    await page.go_back()
    await page.wait_for_load_state()
    assert path_of(page) == f"{PREFIX}/login"
    assert await heading(page) == "Đăng nhập"
    await expect(page.get_by_text(STAFF_NAME)).to_have_count(0)
    await rig.shot(page, "back button after sign-out")

    await page.goto(console.url("/"))
    assert path_of(page) == f"{PREFIX}/login"
    await page.goto(console.url("/feedback"))
    assert path_of(page) == f"{PREFIX}/login"
    assert query_of(page) == {"next": f"{PREFIX}/feedback"}
    await rig.shot(page, "inbox asked after sign-out")

    # The old session cookie, had someone kept a copy, opens nothing: it ended on the server.
    await page.context.add_cookies([cookie])
    await page.goto(console.url("/feedback"))
    assert path_of(page) == f"{PREFIX}/login"
    assert await heading(page) == "Đăng nhập"
    await expect(page.get_by_text(STAFF_NAME)).to_have_count(0)
    await rig.shot(page, "old session cookie replayed")


# --- 2. lockout -------------------------------------------------------------------------


async def five_failures(page: Page, console: Console, username: str) -> list[str]:
    """Five wrong passwords for ``username``; the message shown after each."""
    messages = []
    for attempt in range(5):
        await sign_in(page, console, username, f"sai mật khẩu lần {attempt + 1}")
        assert path_of(page) == f"{PREFIX}/login"
        messages.append(await alert(page))
    return messages


async def test_five_failures_lock_a_name_whether_or_not_it_exists(
    rig: Rig, settings: Settings
) -> None:
    console = await rig.console(settings)
    await console.account(STAFF, STAFF_PASSWORD, "staff", full_name=STAFF_NAME)
    page = await rig.page()

    known = await five_failures(page, console, STAFF)
    assert known[:4] == [WRONG] * 4
    assert "tạm khóa" in known[4]
    assert "15 phút" in known[4]
    await rig.shot(page, "locked after five wrong passwords")

    # Now even the right password is refused, with the same message.
    await sign_in(page, console, STAFF, STAFF_PASSWORD)
    assert path_of(page) == f"{PREFIX}/login"
    assert await alert(page) == known[4]
    assert await session_cookie(page) is None
    await rig.shot(page, "right password refused while locked")

    # A name nobody has gets exactly the same answers: nothing tells which names exist.
    unknown = await five_failures(page, console, "khong.co.ai")
    assert unknown == known
    assert await session_cookie(page) is None
    await rig.shot(page, "unknown name locked the same way")


# --- 3. idle timeout --------------------------------------------------------------------

IDLE_MINUTES = 0.05  # 3 seconds


async def test_an_idle_session_expires_back_to_sign_in(rig: Rig, settings: Settings) -> None:
    idle = settings.model_copy(update={"admin": AdminSettings(idle_minutes=IDLE_MINUTES)})
    console = await rig.console(idle)
    await console.account(STAFF, STAFF_PASSWORD, "staff", full_name=STAFF_NAME)
    page = await rig.page()
    await sign_in(page, console, STAFF, STAFF_PASSWORD)
    assert path_of(page) == f"{PREFIX}/"
    await rig.shot(page, "signed in")

    await asyncio.sleep(IDLE_MINUTES * 60 + 0.5)
    await follow(page, page.get_by_role("link", name="Góp ý, phản ánh", exact=True))
    assert path_of(page) == f"{PREFIX}/login"
    assert query_of(page) == {"expired": "1", "next": f"{PREFIX}/feedback"}
    assert await notice(page) == EXPIRED
    await expect(page.get_by_role("button", name="Đăng xuất")).to_have_count(0)
    assert await session_cookie(page) is None
    await rig.shot(page, "expired session sent to sign-in")

    # Signing in again leads back to the page that was asked for.
    await sign_in(page, console, STAFF, STAFF_PASSWORD)
    assert path_of(page) == f"{PREFIX}/feedback"
    assert await heading(page) == "Góp ý, phản ánh"
    await rig.shot(page, "back where the person was going")


# --- 4. CSRF ----------------------------------------------------------------------------


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    rig: Rig, settings: Settings
) -> None:
    console = await rig.console(settings)
    await console.account(STAFF, STAFF_PASSWORD, "staff", full_name=STAFF_NAME)
    item = await console.complaint(LAND, dossier_code=LAND_DOSSIER, phone="0912345678")
    page = await rig.page()

    # The sign-in form carries a token too: without it nobody is signed in.
    await page.goto(console.url("/login"))
    await page.locator("#username").fill(STAFF)
    await page.locator("#password").fill(STAFF_PASSWORD)
    await page.evaluate("document.querySelector('form input[name=csrf]').remove()")
    refused = await follow(page, page.get_by_role("button", name="Đăng nhập", exact=True))
    assert refused.status == 403
    assert await heading(page) == FORBIDDEN
    await expect(page.locator("main")).to_contain_text(NO_TOKEN)
    assert await session_cookie(page) is None
    await rig.shot(page, "sign-in without token refused")

    await sign_in(page, console, STAFF, STAFF_PASSWORD, rig=rig)
    assert path_of(page) == f"{PREFIX}/"
    await page.goto(console.url(f"/feedback/{item.code}"))
    await expect(page.locator(".citizen-text")).to_have_text(LAND)
    await rig.shot(page, "item page")

    answer_form = 'form[action$="/answer"]'
    for what, tamper in (
        ("without token", f"document.querySelector('{answer_form} input[name=csrf]').remove()"),
        (
            "with a made-up token",
            f"document.querySelector('{answer_form} input[name=csrf]').value = "
            "'bWFkZS11cC10b2tlbi1vZi10aGUtcmlnaHQtbGVuZ3RoLTQz'",
        ),
    ):
        await page.goto(console.url(f"/feedback/{item.code}"))
        await page.locator("#a-text").fill(ANSWER)
        await page.evaluate(tamper)
        refused = await follow(page, page.get_by_role("button", name="Gửi trả lời"))
        assert refused.status == 403, what
        assert path_of(page) == f"{PREFIX}/feedback/{item.code}/answer"
        assert await heading(page) == FORBIDDEN
        await expect(page.locator("main")).to_contain_text(NO_TOKEN)
        await rig.shot(page, f"answer {what} refused")

        unchanged = await console.item(item.code)
        assert (unchanged.status, unchanged.answer, unchanged.answered_by) == ("new", None, None)
        assert unchanged.updated_at == item.updated_at

    # Still signed in; the item still waits for its answer.
    await page.goto(console.url(f"/feedback/{item.code}"))
    assert await heading(page) == f"Phản ánh {item.code} Mới"
    await expect(page.locator("#a-text")).to_have_value("")
    await expect(page.get_by_role("heading", name="Trả lời", exact=True)).to_have_count(0)
    await rig.shot(page, "item unchanged")
    assert len(await console.audit("csrf.refused")) == 3
    assert await console.audit("feedback.answer") == []

    # The same page's forms, left as they are, work.
    await page.locator("#a-to").select_option("me")
    await follow(page, page.get_by_role("button", name="Giao việc"))
    assert query_of(page) == {"ok": "assigned"}
    assert await notice(page) == "Đã giao việc."
    assert await heading(page) == f"Phản ánh {item.code} Đang xử lý"
    history = page.get_by_role("region", name="Lịch sử")
    await expect(history).to_contain_text(f"Mới → Đang xử lý, bởi {STAFF_NAME}")
    await rig.shot(page, "item assigned with the form as it came")
    assert (await console.item(item.code)).assignee == STAFF


# --- 5. markup in citizens' text --------------------------------------------------------


async def no_markup_ran(page: Page) -> None:
    assert await page.evaluate("() => window.__pwned") is None
    assert await page.locator('img[src="x"]').count() == 0
    scripts = "() => [...document.scripts].filter((s) => s.text.includes('__pwned')).length"
    assert await page.evaluate(scripts) == 0
    # Nothing was blocked by the CSP either: there was nothing to block.
    assert await page.evaluate("() => window.__violations") == []


def watch(page: Page) -> list[str]:
    """Collect the page's script errors and console errors, from now on."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems


async def test_markup_in_citizens_and_strangers_text_is_shown_as_text(
    rig: Rig, settings: Settings
) -> None:
    console = await rig.console(settings)
    await console.account(STAFF, STAFF_PASSWORD, "staff", full_name=STAFF_NAME)
    await console.account(ADMIN, ADMIN_PASSWORD, "admin", full_name=ADMIN_NAME)
    description = f"{SCRIPT} {IMG} Hồ sơ trễ hẹn & không ai trả lời"
    item = await console.complaint(description)

    # A stranger types markup as a user name: the sign-in form shows it back as typed …
    stranger = await rig.page()
    await stranger.context.add_init_script(WATCH_CSP)
    typed = IMG.replace("__pwned=2", "__pwned=4")
    refused = await sign_in(stranger, console, typed, "mật khẩu đoán bừa")
    assert refused.status == 401
    assert await alert(stranger) == WRONG
    await expect(stranger.locator("#username")).to_have_value(typed)
    await no_markup_ran(stranger)
    await rig.shot(stranger, "sign-in form repeats a typed name as text")

    staff = await rig.page()
    await staff.context.add_init_script(WATCH_CSP)
    staff_problems = watch(staff)
    await sign_in(staff, console, STAFF, STAFF_PASSWORD, rig=rig)
    await staff.goto(console.url("/feedback"))
    row = staff.locator("tbody tr").filter(has_text=item.code)
    await expect(row.locator(".excerpt")).to_have_text(description)
    await no_markup_ran(staff)
    await rig.shot(staff, "inbox shows the markup as text")

    await follow(staff, row.get_by_role("link", name=item.code))
    await expect(staff.locator(".citizen-text")).to_have_text(description)
    await no_markup_ran(staff)
    await rig.shot(staff, "item page shows the markup as text")

    # Text the page repeats from its address (the search box) is text as well.
    await staff.goto(console.url("/feedback?" + urllib.parse.urlencode({"q": ATTRIBUTE_BREAK})))
    await expect(staff.locator("#f-q")).to_have_value(ATTRIBUTE_BREAK)
    await no_markup_ran(staff)
    await rig.shot(staff, "search for markup")

    # … and the admin reads the stranger's attempt in the log, as text.
    admin = await rig.page()
    await admin.context.add_init_script(WATCH_CSP)
    admin_problems = watch(admin)
    await sign_in(admin, console, ADMIN, ADMIN_PASSWORD)
    recent = admin.get_by_role("table", name="Hoạt động gần đây")
    await expect(recent.locator("tr").filter(has_text=typed)).to_have_count(1)
    await no_markup_ran(admin)
    await rig.shot(admin, "admin home lists the typed name as text")
    await admin.goto(console.url("/audit"))
    attempt = admin.locator("tbody tr").filter(has_text=typed)
    await expect(attempt).to_have_count(1)
    await expect(attempt).to_contain_text("Đăng nhập sai")
    await no_markup_ran(admin)
    await rig.shot(admin, "audit log lists the typed name as text")
    assert (staff_problems, admin_problems) == ([], [])


# --- 6. an answer reaches Telegram -------------------------------------------------------


async def test_staff_answer_on_a_phone_reaches_the_citizen_on_telegram(
    rig: Rig, settings: Settings
) -> None:
    api = await rig.telegram()
    console = await rig.console(with_telegram(settings, api))
    await console.account(STAFF, STAFF_PASSWORD, "staff", full_name=STAFF_NAME)
    # Other work in the inbox, as on any day.
    await console.complaint(LAND, dossier_code=LAND_DOSSIER, phone="0987654321")
    await console.complaint(FEE, point_id="cong-dvc", channel="web", external_id="web-3f9a1c7e")
    await console.survey(SURVEY_COMMENT)
    code = await tg_complaint(console.client, api, TELEGRAM_COMPLAINT)
    before = len(api.sent(CHAT))

    page = await rig.page(PHONE)
    await sign_in(page, console, STAFF, STAFF_PASSWORD)
    assert await heading(page) == f"Xin chào, {STAFF_NAME}"
    await rig.shot(page, "home on a phone")
    await open_item_from_inbox(rig, page, code, "on a phone")
    await expect(page.locator(".citizen-text")).to_have_text(TELEGRAM_COMPLAINT)
    await expect(page.locator(".phone")).to_have_text("09******78")
    await rig.shot(page, "item on a phone")

    # The number the citizen left, shown on request (and logged).
    await follow(page, page.get_by_role("button", name="Hiện số điện thoại"))
    await expect(page.locator(".phone.shown")).to_have_text("0912345678")
    await rig.shot(page, "phone number shown")
    shown = await console.audit("feedback.contact")
    assert [(e.actor, e.via) for e in shown] == [(STAFF, "console")]

    await answer_on_item_page(rig, page, code, ANSWER, "on a phone")
    await citizen_receives(api, before, code, ANSWER)
    answered = await console.item(code)
    assert (answered.status, answered.answered_by, answered.answer) == ("answered", STAFF, ANSWER)

    await page.reload()
    said = page.get_by_role("region", name="Người dân viết")
    await expect(said.locator(".hint")).to_contain_text("đã gửi tới người dân")
    await rig.shot(page, "answer delivered")


# --- 7. a viewer may read, not act -------------------------------------------------------


async def test_a_viewer_reads_but_is_refused_every_action(rig: Rig, settings: Settings) -> None:
    console = await rig.console(settings)
    await console.account(VIEWER, VIEWER_PASSWORD, "viewer", full_name=VIEWER_NAME)
    item = await console.complaint(LAND, dossier_code=LAND_DOSSIER, phone="0912345678")
    page = await rig.page()
    await sign_in(page, console, VIEWER, VIEWER_PASSWORD, rig=rig)

    await page.goto(console.url("/feedback"))
    await expect(page.locator("tbody tr").filter(has_text=item.code)).to_have_count(1)
    await expect(page.get_by_role("heading", name="Xuất danh sách đang lọc")).to_have_count(0)
    await rig.shot(page, "inbox for a viewer")

    await page.goto(console.url(f"/feedback/{item.code}"))
    await expect(page.locator(".citizen-text")).to_have_text(LAND)
    await expect(page.get_by_role("heading", name="Xử lý")).to_have_count(0)
    await expect(page.locator("form[action*='/feedback/']")).to_have_count(0)
    await expect(page.get_by_role("button", name="Hiện số điện thoại")).to_have_count(0)
    await expect(page.locator(".phone")).to_have_text("09******78")
    await rig.shot(page, "item for a viewer")

    # A form made by hand, with this session's real token: refused all the same.
    token = await csrf_of(page)
    async with page.expect_navigation() as navigation:
        await page.evaluate(
            POST_FORM,
            {
                "action": f"{PREFIX}/feedback/{item.code}/answer",
                "fields": {"csrf": token, "text": ANSWER},
            },
        )
    refused = await navigation.value
    assert refused is not None
    assert refused.status == 403
    assert await heading(page) == FORBIDDEN
    await expect(page.locator("main")).to_contain_text(NO_RIGHT)
    await rig.shot(page, "answer by a viewer refused")

    for action, fields in (
        ("contact", {}),
        ("assign", {"to": "me"}),
        ("resolve", {"text": "Đã xong."}),
        ("reject", {"reason": "Không thuộc thẩm quyền."}),
    ):
        response = await page.request.post(
            console.url(f"/feedback/{item.code}/{action}"), form={"csrf": token, **fields}
        )
        assert response.status == 403, action
        assert NO_RIGHT in await response.text()
    exported = await page.request.post(
        console.url("/feedback/export"), form={"csrf": token, "format": "xlsx"}
    )
    assert exported.status == 403
    assert exported.headers["content-type"].startswith("text/html")

    unchanged = await console.item(item.code)
    assert (unchanged.status, unchanged.assignee, unchanged.answer) == ("new", None, None)
    assert unchanged.updated_at == item.updated_at
    denied = await console.audit("access.denied")
    assert len(denied) == 6
    assert {e.actor for e in denied} == {VIEWER}
    assert await console.audit("feedback.contact") == []


# --- 8. export --------------------------------------------------------------------------


async def test_staff_downloads_the_inbox_as_a_spreadsheet(
    rig: Rig, settings: Settings, tmp_path: Path
) -> None:
    console = await rig.console(settings)
    await console.account(STAFF, STAFF_PASSWORD, "staff", full_name=STAFF_NAME)
    land = await console.complaint(LAND, dossier_code=LAND_DOSSIER, phone="0912345678")
    survey = await console.survey(SURVEY_COMMENT)
    page = await rig.page()
    await sign_in(page, console, STAFF, STAFF_PASSWORD, rig=rig)
    await page.goto(console.url("/feedback"))
    land_row = page.locator("tbody tr").filter(has_text=land.code)
    place = (await land_row.locator('td[data-label="Nơi giải quyết"]').inner_text()).strip()
    assert place == "Văn phòng Đăng ký đất đai"
    await rig.shot(page, "inbox before export")

    await page.locator("#x-format").select_option("xlsx")
    async with page.expect_download() as downloading:
        await page.get_by_role("button", name="Tải xuống").click()
    download = await downloading.value
    assert re.fullmatch(r"gop-y-phan-anh-\d{8}-\d{4}\.xlsx", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    assert path_of(page) == f"{PREFIX}/feedback"  # the page stays where it was
    await rig.shot(page, "inbox after export")

    sheet = openpyxl.load_workbook(saved).worksheets[0]
    assert sheet.title == "Góp ý, phản ánh"
    rows = list(sheet.iter_rows(values_only=True))
    headers = rows[0]
    assert headers[:4] == ("Mã", "Loại", "Trạng thái", "Nơi giải quyết")
    for name in ("Nội dung phản ánh", "Mã hồ sơ", "Điện thoại", "Ý kiến", "Hạn xử lý"):
        assert name in headers, name
    by_code = {row[0]: dict(zip(headers, row, strict=True)) for row in rows[1:]}
    assert set(by_code) == {land.code, survey.code}
    complaint = by_code[land.code]
    assert (complaint["Loại"], complaint["Trạng thái"]) == ("Phản ánh", "Mới")
    assert complaint["Nơi giải quyết"] == place
    assert complaint["Nội dung phản ánh"] == LAND
    assert complaint["Mã hồ sơ"] == LAND_DOSSIER
    assert complaint["Điện thoại"] == "09******78"  # not asked for with the numbers
    assert isinstance(complaint["Hạn xử lý"], dt.datetime)
    rated = by_code[survey.code]
    assert (rated["Loại"], rated["Ý kiến"]) == ("Đánh giá", SURVEY_COMMENT)
    exports = await console.audit("feedback.export")
    assert [(e.actor, (e.detail or "").split(";")[0]) for e in exports] == [(STAFF, "xlsx, 2 mục")]


# --- 9. the whole journey ----------------------------------------------------------------


async def test_done_when_cli_admin_creates_staff_who_answers_a_telegram_complaint_on_a_phone(
    rig: Rig, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first admin, made on the server with `bot users add … --password-stdin`.
    monkeypatch.setenv("BOT_DATABASE_URL", settings.database.url)
    monkeypatch.setattr(sys, "stdin", io.StringIO(ADMIN_PASSWORD + "\n"))
    command = ["users", "add", ADMIN, "--role", "admin", "--full-name", ADMIN_NAME]
    assert await asyncio.to_thread(cli.main, [*command, "--password-stdin"]) == 0

    api = await rig.telegram()
    console = await rig.console(with_telegram(settings, api))
    code = await tg_complaint(console.client, api, TELEGRAM_COMPLAINT)
    before = len(api.sent(CHAT))

    # The admin signs in at a desk and creates the staff member's account.
    admin = await rig.page()
    await sign_in(admin, console, ADMIN, ADMIN_PASSWORD)
    assert await heading(admin) == f"Xin chào, {ADMIN_NAME}"
    await rig.shot(admin, "admin home")
    await follow(admin, admin.get_by_role("link", name="Tài khoản", exact=True))
    assert path_of(admin) == f"{PREFIX}/accounts"
    await rig.shot(admin, "accounts")
    await follow(admin, admin.get_by_role("link", name="Tạo tài khoản"))
    assert path_of(admin) == f"{PREFIX}/accounts/new"
    temporary = "Tạm thời-2026-đổi ngay"
    await admin.locator("#n-user").fill(STAFF)
    await admin.locator("#n-name").fill(STAFF_NAME)
    await admin.get_by_label("Xử lý góp ý, phản ánh").check()
    await admin.locator("#n-pass").fill(temporary)
    await admin.locator("#n-confirm").fill(temporary)
    await rig.shot(admin, "new account form")
    await follow(admin, admin.get_by_role("button", name="Tạo tài khoản"))
    assert path_of(admin) == f"{PREFIX}/accounts/{STAFF}"
    assert (await notice(admin)).startswith("Đã tạo tài khoản.")
    assert await heading(admin) == f"{STAFF_NAME} ({STAFF})"
    await expect(admin.locator("dl.facts")).to_contain_text("phải đổi mật khẩu khi đăng nhập")
    await rig.shot(admin, "account created")

    # The staff member, on a phone: the temporary password must be changed first.
    staff = await rig.page(PHONE)
    await sign_in(staff, console, STAFF, temporary)
    assert path_of(staff) == f"{PREFIX}/password"
    await expect(staff.get_by_role("status")).to_contain_text("Mật khẩu của bạn do người khác đặt")
    await rig.shot(staff, "forced password change")
    await staff.goto(console.url("/feedback"))
    assert path_of(staff) == f"{PREFIX}/password"  # nothing else until it is changed
    await staff.locator("#current").fill(temporary)
    await staff.locator("#new").fill(STAFF_PASSWORD)
    await staff.locator("#confirm").fill(STAFF_PASSWORD)
    await follow(staff, staff.get_by_role("button", name="Đổi mật khẩu"))
    assert path_of(staff) == f"{PREFIX}/"
    assert (await notice(staff)).startswith("Đã đổi mật khẩu.")
    assert await heading(staff) == f"Xin chào, {STAFF_NAME}"
    await rig.shot(staff, "password changed")

    await open_item_from_inbox(rig, staff, code, "staff on a phone")
    await expect(staff.locator(".citizen-text")).to_have_text(TELEGRAM_COMPLAINT)
    await rig.shot(staff, "complaint on a phone")
    await answer_on_item_page(rig, staff, code, ANSWER, "staff on a phone")
    await citizen_receives(api, before, code, ANSWER)

    # What happened is in the log the admin reads.
    await follow(admin, admin.get_by_role("link", name="Nhật ký", exact=True))
    assert path_of(admin) == f"{PREFIX}/audit"
    rows = admin.locator("tbody tr")
    await expect(rows.filter(has_text="Tạo tài khoản").filter(has_text=STAFF)).to_have_count(1)
    await expect(rows.filter(has_text="Đổi mật khẩu").filter(has_text=STAFF)).to_have_count(1)
    await expect(rows.filter(has_text="Trả lời góp ý").filter(has_text=code)).to_have_count(1)
    await rig.shot(admin, "audit log")


# --- text as browsers and Vietnamese keyboards send it ------------------------------------


def answer_in_paragraphs(limit: int) -> str:
    """A reply in paragraphs, exactly ``limit`` characters long as the page counts them."""
    paragraph = (
        "Văn phòng Đăng ký đất đai đã kiểm tra hồ sơ của bạn và sẽ trả kết quả đúng hẹn. " * 3
    ).strip()
    text = ("Chào bạn,\n\n" + "\n\n".join([paragraph] * 20))[:limit]
    return text[:-1] + "." if text[-1].isspace() else text


async def test_an_answer_in_paragraphs_as_long_as_the_page_allows_is_sent(
    rig: Rig, settings: Settings
) -> None:
    """The answer box allows ``maxlength`` characters and counts down to "Còn 0 ký tự.";
    a line break counts as one there. Browsers send each line break as CR LF, so the answer
    arrives longer than it was typed; it must still be accepted, and kept as typed."""
    console = await rig.console(settings)
    await console.account(STAFF, STAFF_PASSWORD, "staff", full_name=STAFF_NAME)
    item = await console.complaint(LAND, dossier_code=LAND_DOSSIER)
    page = await rig.page()
    await sign_in(page, console, STAFF, STAFF_PASSWORD, rig=rig)
    await page.goto(console.url(f"/feedback/{item.code}"))
    box = page.locator("#a-text")
    answer = answer_in_paragraphs(int(await box.get_attribute("maxlength") or 0))
    assert answer.count("\n") >= 10
    await box.fill(answer)
    await expect(page.locator("#a-count")).to_have_text("Còn 0 ký tự.")
    assert await box.evaluate("(box) => box.checkValidity()") is True  # the page accepts it
    await rig.shot(page, "long answer typed, the page says it fits")

    landed = await follow(page, page.get_by_role("button", name="Gửi trả lời"))
    await rig.shot(page, "long answer sent")
    refusal = await page.get_by_role("alert").all_inner_texts()
    assert landed.status == 200, f"POST {path_of(page)} answered {landed.status}: {refusal}"
    assert refusal == []
    assert await notice(page) == (
        "Đã gửi câu trả lời. Bot sẽ chuyển tới người dân trên kênh họ đã dùng."
    )
    assert (await console.item(item.code)).answer == answer  # line breaks as typed


async def test_a_vietnamese_password_signs_in_whichever_keyboard_typed_it(
    rig: Rig, settings: Settings
) -> None:
    """Vietnamese keyboards send accented letters either precomposed ("ộ") or as a letter
    followed by combining marks (Unikey's "Unicode tổ hợp", some phone keyboards). User names
    are compared after NFC normalisation; the same password, typed on the other kind of
    keyboard, must open the console too (NIST SP 800-63B 5.1.1.2: normalise Unicode
    secrets)."""
    console = await rig.console(settings)
    await console.account(STAFF, STAFF_PASSWORD, "staff", full_name=STAFF_NAME)
    decomposed = unicodedata.normalize("NFD", STAFF_PASSWORD)
    assert decomposed != STAFF_PASSWORD
    page = await rig.page(PHONE)
    landed = await sign_in(page, console, STAFF, decomposed, rig=rig, what="after sign-in")
    refusal = await page.get_by_role("alert").all_inner_texts()
    assert landed.status == 200, f"sign-in answered {landed.status}: {refusal}"
    assert path_of(page) == f"{PREFIX}/"
    assert await heading(page) == f"Xin chào, {STAFF_NAME}"
