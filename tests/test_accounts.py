"""Accounts, sign-in and identity as use cases, on SQLite and PostgreSQL: the password and
name rules, the last admin, sessions and their ends, the lockout window, the four-eyes rule
by account, and the migration that brought them (existing items folded for the search,
existing history steps marked as typed at the command line)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from bot.accounts import ROLES, AccountError, Accounts, can, check_password, hash_password
from bot.services import Storage, open_storage
from bot.settings import AdminSettings, BroadcastSettings, DatabaseSettings, Settings
from bot.signin import SignIn, SignInRefused, digest
from broadcasts.workflow import Campaigns, CampaignSpec, WorkflowError
from storage import db
from storage.audit import CLI, CONSOLE, Actor, AuditFilter
from storage.feedback import FeedbackFilter

ROOT = Actor("root", CLI)
PASSWORD = "một mật khẩu đủ dài"


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    async with open_storage(Settings(database=DatabaseSettings(url=database_url))) as opened:
        yield opened


def accounts_of(storage: Storage) -> Accounts:
    return Accounts(storage.accounts, storage.audit)


async def test_names_roles_and_passwords_follow_the_rules(storage: Storage) -> None:
    accounts = accounts_of(storage)
    for name, roles, password, message in (
        ("ab", ["staff"], PASSWORD, "Tên đăng nhập gồm 3–64 ký tự"),
        ("nguyễn.an", ["staff"], PASSWORD, "Tên đăng nhập gồm"),
        ("an nguyen", ["staff"], PASSWORD, "Tên đăng nhập gồm"),
        ("an.nguyen", [], PASSWORD, "ít nhất một vai trò"),
        ("an.nguyen", ["boss"], PASSWORD, "Vai trò không hợp lệ: boss"),
        ("an.nguyen", ["staff"], "ngắn quá", "ít nhất 12 ký tự"),
        ("an.nguyen", ["staff"], "An.Nguyen-2026!", "không được chứa tên đăng nhập"),
        ("an.nguyen", ["staff"], "x" * 257, "dài quá 256 ký tự"),
    ):
        with pytest.raises(AccountError, match=message):
            await accounts.add(name, roles=roles, password=password, actor=ROOT)
    made = await accounts.add(
        " An.Nguyen ", roles=["Staff", "viewer", "staff"], password=PASSWORD, actor=ROOT
    )
    assert (made.username, made.full_name, made.roles) == (
        "an.nguyen",
        "an.nguyen",
        ("staff", "viewer"),
    )
    with pytest.raises(AccountError, match=r"Đã có tài khoản an\.nguyen"):
        await accounts.add("AN.NGUYEN", roles=["staff"], password=PASSWORD, actor=ROOT)
    found = await storage.accounts.credentials("an.nguyen")
    assert found is not None
    assert found[1].startswith("$argon2id$")
    assert PASSWORD not in found[1]
    rows = await storage.audit.page(AuditFilter())
    assert [(r.action, r.target, r.via, r.actor) for r in rows] == [
        ("account.create", "an.nguyen", "cli", "root")
    ]


def test_each_permission_belongs_to_the_roles_the_readme_names() -> None:
    table = {
        p: sorted(r for r in ROLES if can([r], p))
        for p in (
            "accounts",
            "audit",
            "feedback.read",
            "feedback.act",
            "feedback.contact",
            "feedback.export",
            "stats",
        )
    }
    assert table == {
        "accounts": ["admin"],
        "audit": ["admin"],
        "feedback.read": ["staff", "viewer"],
        "feedback.act": ["staff"],
        "feedback.contact": ["staff"],
        "feedback.export": ["staff"],
        "stats": sorted(ROLES),
    }
    assert can(["viewer", "staff"], "feedback.act")  # a person may hold several
    check_password("an.nguyen", "mười hai ký tự")  # 12 characters are enough


async def test_the_last_active_admin_stays_an_admin(storage: Storage) -> None:
    accounts = accounts_of(storage)
    await accounts.add("qt.mot", roles=["admin"], password=PASSWORD, actor=ROOT)
    with pytest.raises(AccountError, match="quản trị viên cuối cùng"):
        await accounts.set_roles("qt.mot", ["staff"], actor=ROOT)
    with pytest.raises(AccountError, match="quản trị viên cuối cùng"):
        await accounts.disable("qt.mot", actor=ROOT)
    await accounts.add("qt.hai", roles=["admin", "staff"], password=PASSWORD, actor=ROOT)
    await accounts.disable("qt.mot", actor=ROOT)
    with pytest.raises(AccountError, match=r"qt\.hai là quản trị viên cuối cùng"):
        await accounts.set_roles("qt.hai", ["staff"], actor=ROOT)
    await accounts.enable("qt.mot", actor=ROOT)
    assert (await accounts.set_roles("qt.hai", ["staff"], actor=ROOT)).roles == ("staff",)


async def test_sessions_end_with_sign_out_password_changes_and_disabling(storage: Storage) -> None:
    accounts = accounts_of(storage)
    signin = SignIn(storage.accounts, storage.audit, AdminSettings())
    await accounts.add("cv.hoa", roles=["staff"], password=PASSWORD, actor=ROOT)
    await accounts.add("qt.vien", roles=["admin"], password=PASSWORD, actor=ROOT)
    one = await signin.sign_in("cv.hoa", PASSWORD, address="10.0.0.7")
    two = await signin.sign_in("CV.HOA", PASSWORD, address="10.0.0.8")
    assert one.token != two.token
    assert one.csrf_token != two.csrf_token
    assert (await signin.resume(one.token)) is not None
    assert await signin.resume("not-a-session") is None
    assert await signin.resume(one.token + "x") is None
    # A password change ends every session of the account.
    hoa = (await signin.resume(two.token)).account  # type: ignore[union-attr]
    changed = await accounts.change_password(
        hoa, current=PASSWORD, new="một câu mật khẩu mới", actor=Actor("cv.hoa", CONSOLE, hoa.id)
    )
    assert changed.must_change_password is False
    assert await signin.resume(one.token) is None
    assert await signin.resume(two.token) is None
    with pytest.raises(SignInRefused, match="không đúng"):
        await signin.sign_in("cv.hoa", PASSWORD, address=None)
    three = await signin.sign_in("cv.hoa", "một câu mật khẩu mới", address=None)
    # Disabling ends them too, and a disabled account cannot sign in.
    await accounts.disable("cv.hoa", actor=ROOT)
    assert await signin.resume(three.token) is None
    with pytest.raises(SignInRefused, match="vô hiệu hóa"):
        await signin.sign_in("cv.hoa", "một câu mật khẩu mới", address=None)
    await accounts.enable("cv.hoa", actor=ROOT)
    four = await signin.sign_in("cv.hoa", "một câu mật khẩu mới", address=None)
    session = await signin.resume(four.token)
    assert session is not None
    assert await signin.sign_out(session, address=None) == 1
    assert await signin.resume(four.token) is None
    actions = [r.action for r in await storage.audit.page(AuditFilter(actor="cv.hoa"))]
    assert actions[:4] == ["signout", "signin", "signin.disabled", "signin"]


async def test_a_lock_ends_with_its_window_and_failures_are_forgotten_after_it(
    storage: Storage,
) -> None:
    accounts = accounts_of(storage)
    settings = AdminSettings(lockout_failures=3, lockout_minutes=0.03)  # 1.8 s
    signin = SignIn(storage.accounts, storage.audit, settings)
    await accounts.add("cv.hoa", roles=["staff"], password=PASSWORD, actor=ROOT)
    for attempt in range(2):
        with pytest.raises(SignInRefused, match="không đúng"):
            await signin.sign_in("cv.hoa", f"sai lần thứ {attempt}", address="10.0.0.9")
    await asyncio.sleep(2.0)  # the two failures are forgotten
    for attempt in range(2):
        with pytest.raises(SignInRefused, match="không đúng"):
            await signin.sign_in("cv.hoa", f"sai thêm lần {attempt}", address="10.0.0.9")
    with pytest.raises(SignInRefused, match="tạm khóa"):
        await signin.sign_in("cv.hoa", "sai lần thứ ba rồi", address="10.0.0.9")
    with pytest.raises(SignInRefused, match="tạm khóa"):
        await signin.sign_in("cv.hoa", PASSWORD, address="10.0.0.9")
    await asyncio.sleep(2.0)
    assert (
        await signin.sign_in("cv.hoa", PASSWORD, address="10.0.0.9")
    ).account.username == "cv.hoa"
    # Expired sessions and forgotten counters are purged with the other retention work.
    from bot.services import purge_expired

    await purge_expired(
        storage, Settings(admin=settings), dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    )
    assert await storage.accounts.throttle("addr:10.0.0.9") is None


async def test_an_old_hash_is_upgraded_at_sign_in(storage: Storage) -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    made = await storage.accounts.create(
        username="cu.ngay",
        full_name="Cũ",
        roles=["viewer"],
        password_hash=weak,
        must_change_password=False,
    )
    signin = SignIn(storage.accounts, storage.audit, AdminSettings())
    await signin.sign_in("cu.ngay", PASSWORD, address=None)
    found = await storage.accounts.credentials("cu.ngay")
    assert found is not None
    assert found[1] != weak
    assert "m=65536" in found[1]
    assert found[0].id == made.id
    assert (await hash_password(PASSWORD)) != found[1]  # salted


async def test_four_eyes_compares_accounts_when_both_sides_have_one(storage: Storage) -> None:
    campaigns = Campaigns(storage.campaigns, BroadcastSettings())
    lan = Actor("lan.pham", CONSOLE, 7, "10.0.0.1")
    spec = CampaignSpec(name="Thông báo", text="Từ 01/12 nộp hồ sơ trực tuyến.")
    campaign = await campaigns.create(spec, author=lan)
    assert (campaign.author, campaign.author_account_id) == ("lan.pham", 7)
    await campaigns.submit(campaign.id, actor=lan)
    for same in (lan, Actor("LAN.PHAM", CLI), Actor("someone-renamed", CONSOLE, 7)):
        with pytest.raises(WorkflowError, match="Người duyệt phải khác người soạn"):
            await campaigns.approve(campaign.id, by=same)
    approved = await campaigns.approve(campaign.id, by=Actor("minh.tran", CONSOLE, 8))
    assert approved.approved_by == "minh.tran"
    events = await storage.campaigns.events(campaign.id)
    assert [(e.to_status, e.actor, e.via) for e in events] == [
        ("draft", "lan.pham", "console"),
        ("submitted", "lan.pham", "console"),
        ("approved", "minh.tran", "console"),
    ]
    # At the command line, names are compared as before.
    typed = await campaigns.create(spec, author="Lan")
    await campaigns.submit(typed.id, actor="Lan")
    with pytest.raises(WorkflowError):
        await campaigns.approve(typed.id, by=" lan ")
    assert (await campaigns.approve(typed.id, by="Minh")).approved_by == "Minh"


async def test_the_console_migration_folds_old_items_and_marks_old_steps(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine, "0006")
        now = dt.datetime.now(dt.UTC)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO feedback_items (code, kind, status, channel, external_id, "
                    "description, answer, deadline_at, created_at, updated_at) VALUES "
                    "('PA-ABCDE', 'complaint', 'answered', 'zalo', 'z1', 'Hồ sơ TRỄ HẸN', "
                    "'Đã xử lý xong', :now, :now, :now)"
                ),
                {"now": now},
            )
            await connection.execute(
                text(
                    "INSERT INTO feedback_events (item_id, from_status, to_status, actor, "
                    "created_at) VALUES (1, NULL, 'new', 'citizen', :now), "
                    "(1, 'new', 'answered', 'Trần Thị Bình', :now)"
                ),
                {"now": now},
            )
        await db.upgrade(engine)
    finally:
        await engine.dispose()
    async with open_storage(Settings(database=DatabaseSettings(url=database_url))) as storage:
        inbox = storage.feedback_inbox
        assert [i.code for i in await inbox.find(FeedbackFilter(text="tre hen"))] == ["PA-ABCDE"]
        assert [i.code for i in await inbox.find(FeedbackFilter(text="xu ly xong"))] == ["PA-ABCDE"]
        events = await inbox.events(1)
        assert [(e.actor, e.via) for e in events] == [
            ("citizen", "citizen"),
            ("Trần Thị Bình", "cli"),
        ]


async def test_a_session_id_is_kept_only_as_its_hash(storage: Storage) -> None:
    await accounts_of(storage).add("cv.hoa", roles=["staff"], password=PASSWORD, actor=ROOT)
    opened = await SignIn(storage.accounts, storage.audit, AdminSettings()).sign_in(
        "cv.hoa", PASSWORD, address=None
    )
    assert await storage.accounts.session(opened.token) is None
    stored = await storage.accounts.session(digest(opened.token))
    assert stored is not None
    assert stored.csrf_token == opened.csrf_token
