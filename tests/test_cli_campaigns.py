"""``bot campaign …`` as communicators use it: the workflow, list/show/report/plan output,
the quiet-hours rules and the report's arithmetic, on a fresh SQLite file per test.

Most tests call ``bot.cli.main`` in this process (capsys). The last tests
(``test_send_wait_*``) send for real through the broadcast engine and the Telegram courier
to the fake Bot API, running ``bot`` in a subprocess as an operator would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest

import storage.campaigns
from bot.cli import main
from bot.services import open_services, open_storage
from bot.settings import BroadcastSettings, DatabaseSettings, Settings
from broadcasts.quiet import in_quiet_hours, parse_hhmm, quiet_resume_at
from broadcasts.report import achieved_rate, duration, eta
from broadcasts.workflow import STATUS_LABELS
from storage.campaigns import FAILED, SENT, Outcome
from tests.fakes.telegram_api import FakeTelegram, parse_html

VN = ZoneInfo("Asia/Ho_Chi_Minh")
T = TypeVar("T")
Cli = Callable[..., tuple[int, str, str]]
TOPIC = "thu-tuc-moi"
OTHER_TOPIC = "tin-tuc-cchc"


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'campaigns.db'}"
    for name in list(os.environ):
        if name.startswith(("BOT_TELEGRAM", "BOT_ZALO", "BOT_BROADCAST")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOT_DATABASE_URL", url)
    # Round rates make the durations easy to check by hand.
    monkeypatch.setenv("BOT_BROADCAST_TELEGRAM_RATE", "2")
    monkeypatch.setenv("BOT_BROADCAST_ZALO_RATE", "0.5")
    return url


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Cli:
    def call(*args: str) -> tuple[int, str, str]:
        code = main(["campaign", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def future_local(days: int, hour: int) -> str:
    """A local time ``days`` from today at ``hour``:00, as communicators type it."""
    day = dt.datetime.now(VN).date() + dt.timedelta(days=days)
    return f"{day.isoformat()} {hour:02d}:00"


def create(cli: Cli, *extra: str, by: str = "Nguyễn Văn An") -> int:
    code, out, err = cli(
        "create",
        "--name",
        "Dịch vụ công tháng 12",
        "--text",
        "Từ 01/12, nộp hồ sơ cấp đổi giấy phép lái xe trực tuyến.",
        "--by",
        by,
        "--json",
        *extra,
    )
    assert code == 0, err
    return int(json.loads(out)["id"])


def approved(cli: Cli, *extra: str) -> int:
    campaign = create(cli, *extra)
    assert cli("submit", str(campaign), "--by", "Nguyễn Văn An")[0] == 0
    assert cli("approve", str(campaign), "--by", "Trần Thị Bình")[0] == 0
    return campaign


def show(cli: Cli, campaign: int) -> dict[str, Any]:
    code, out, err = cli("show", str(campaign), "--json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def settings_for(url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=url))


async def seed(url: str, people: list[tuple[str, str, list[str], dt.datetime | None]]) -> None:
    """(channel, external id, topics, last interaction) → active subscribers."""
    async with open_storage(settings_for(url)) as opened:
        for channel, external_id, topics, seen in people:
            await opened.subscribers.subscribe(channel, external_id, topics, source="test")
            if seen is not None:
                await opened.subscribers.touch(channel, external_id, at=seen)


# --- the workflow ---------------------------------------------------------------------------


def test_create_submit_approve_schedule_with_four_eyes(cli: Cli) -> None:
    at = future_local(10, 9)
    campaign = create(cli, "--at", at, "--topics", f"{TOPIC},{OTHER_TOPIC}")
    code, out, _ = cli("submit", str(campaign), "--by", "Nguyễn Văn An")
    assert code == 0
    assert "Chờ duyệt" in out

    code, out, err = cli("approve", str(campaign), "--by", "  nguyễn văn  AN ")
    assert code == 2
    assert out == ""
    assert "Người duyệt phải khác người soạn (nguyên tắc bốn mắt)" in err
    assert show(cli, campaign)["status"] == "submitted"

    code, out, _ = cli("approve", str(campaign), "--by", "Trần Thị Bình")
    assert code == 0
    assert "Đã duyệt (bởi Trần Thị Bình)" in out
    code, out, _ = cli("schedule", str(campaign), "--by", "Trần Thị Bình")
    assert code == 0
    local = dt.datetime.strptime(at, "%Y-%m-%d %H:%M").strftime("%d/%m/%Y %H:%M")
    assert f"Sẽ gửi lúc {local}" in out

    data = show(cli, campaign)
    assert data["status"] == "scheduled"
    assert data["status_label"] == "Đã lên lịch"
    assert data["approved_by"] == "Trần Thị Bình"
    assert data["topics"] == [TOPIC, OTHER_TOPIC]
    assert data["schedule"]["kind"] == "at"
    assert data["schedule"]["at"] == at.replace(" ", "T") + ":00+07:00"
    assert data["next_occurrences"] == [data["schedule"]["at"]]
    assert [(e["from"], e["to"], e["actor"]) for e in data["history"]] == [
        (None, "draft", "Nguyễn Văn An"),
        ("draft", "submitted", "Nguyễn Văn An"),
        ("submitted", "approved", "Trần Thị Bình"),
        ("approved", "scheduled", "Trần Thị Bình"),
    ]
    # Scheduling twice is refused, in Vietnamese.
    code, _, err = cli("schedule", str(campaign), "--by", "Trần Thị Bình")
    assert code == 2
    assert "đang ở trạng thái đã lên lịch" in err


def test_reject_sends_back_to_draft_with_the_reason(cli: Cli) -> None:
    campaign = create(cli)
    cli("submit", str(campaign), "--by", "Nguyễn Văn An")
    code, out, _ = cli(
        "reject", str(campaign), "--by", "Trần Thị Bình", "--reason", "Thiếu đường dẫn"
    )
    assert code == 0
    assert "Nháp" in out
    last = show(cli, campaign)["history"][-1]
    assert (last["from"], last["to"], last["actor"], last["note"]) == (
        "submitted",
        "draft",
        "Trần Thị Bình",
        "Thiếu đường dẫn",
    )


def test_edit_of_an_approved_campaign_goes_back_to_draft_and_history_says_who(
    cli: Cli,
) -> None:
    at = future_local(5, 8)
    campaign = approved(cli, "--at", at, "--link-url", "https://dichvucong.gov.vn")
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    code, out, err = cli("edit", str(campaign), "--text", "Nội dung đã sửa.", "--by", "Lê Chi")
    assert code == 0, err
    assert "trở về trạng thái Nháp" in out

    data = show(cli, campaign)
    assert data["status"] == "draft"
    assert data["approved_by"] is None
    assert data["text"] == "Nội dung đã sửa."
    # What the edit did not name stays as it was.
    assert data["name"] == "Dịch vụ công tháng 12"
    assert data["link_url"] == "https://dichvucong.gov.vn"
    assert data["schedule"]["at"] == at.replace(" ", "T") + ":00+07:00"
    last = data["history"][-1]
    assert (last["from"], last["to"], last["actor"], last["note"]) == (
        "approved",
        "draft",
        "Lê Chi",
        "sửa nội dung",
    )
    when = dt.datetime.fromisoformat(last["at"])
    assert when.utcoffset() == dt.timedelta(hours=7)
    assert before <= when <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)

    code, out, _ = cli("show", str(campaign))
    assert code == 0
    assert (
        f"{when.strftime('%d/%m/%Y %H:%M')}  Đã duyệt → Nháp, bởi Lê Chi (dòng lệnh) — sửa nội dung"
        in out
    )
    # It must be approved again: straight to schedule is refused.
    code, _, err = cli("schedule", str(campaign), "--by", "Trần Thị Bình")
    assert code == 2
    assert "nháp" in err

    # Switching to a repeating schedule clears the one-off time; --now clears both.
    code, _, err = cli(
        "edit", str(campaign), "--cron", "0 8 * * mon", "--until", "2099-03-31", "--by", "Lê Chi"
    )
    assert code == 0, err
    schedule = show(cli, campaign)["schedule"]
    assert (schedule["kind"], schedule["at"], schedule["cron"]) == ("cron", None, "0 8 * * mon")
    assert schedule["until"] == "2099-03-31T23:59:59+07:00"
    assert cli("edit", str(campaign), "--now", "--by", "Lê Chi")[0] == 0
    schedule = show(cli, campaign)["schedule"]
    assert (schedule["kind"], schedule["at"], schedule["cron"]) == ("now", None, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cron", "0 25 * * *"), "Lịch lặp '0 25 * * *' không hợp lệ"),
        (("--cron", "mỗi thứ hai"), "Dạng crontab 5 trường"),
        (("--at", "hôm qua"), "Không hiểu thời điểm 'hôm qua'"),
        (("--at", "2099-12-01 08:00", "--cron", "0 8 * * *"), "Chọn một trong hai"),
        (("--until", "2099-12-01"), "Ngày kết thúc chỉ dùng cho lịch gửi lặp lại"),
        (("--topics", "khong-co"), "Không có chủ đề khong-co"),
        (("--channels", "facebook"), "Kênh gửi phải là telegram, zalo hoặc cả hai"),
        (("--link-url", "http://example.vn"), "Liên kết phải là địa chỉ https://"),
        (("--text-file", "/nonexistent/tin.txt"), "Không đọc được tệp nội dung"),
    ],
)
def test_invalid_input_is_exit_2_with_a_vietnamese_message(
    cli: Cli, args: tuple[str, ...], message: str
) -> None:
    base = ["create", "--name", "Tin", "--by", "An"]
    if "--text-file" not in args:
        base += ["--text", "Nội dung"]
    code, out, err = cli(*base, *args)
    assert code == 2
    assert out == ""
    assert message in err
    assert "Traceback" not in err
    assert cli("list", "--json")[1].strip() == "[]"


def test_unknown_campaign_nothing_to_edit_and_missing_by(cli: Cli) -> None:
    code, _, err = cli("show", "999")
    assert (code, err.strip()) == (2, "Không có chiến dịch số 999.")
    campaign = create(cli)
    code, _, err = cli("edit", str(campaign), "--by", "An")
    assert code == 2
    assert "Không có gì để sửa" in err
    code, _, err = cli("submit", str(campaign), "--by", "   ")
    assert code == 2
    assert "Cần ghi rõ người thực hiện" in err
    # --by is required by every action that changes a campaign.
    for action in ("submit", "approve", "schedule", "send", "pause", "resume", "cancel"):
        with pytest.raises(SystemExit) as exit_info:
            main(["campaign", action, str(campaign)])
        assert exit_info.value.code == 2


def test_text_file_and_send_pause_resume_cancel(cli: Cli, tmp_path: Path) -> None:
    text = tmp_path / "tin.txt"
    text.write_text("Thông báo:\n\n- Nộp hồ sơ trực tuyến\n", encoding="utf-8")
    code, out, err = cli("create", "--name", "Tệp", "--text-file", str(text), "--by", "An")
    assert code == 0, err
    campaign = int(out.split("số ")[1].split()[0])
    assert show(cli, campaign)["text"] == "Thông báo:\n\n- Nộp hồ sơ trực tuyến"
    assert cli("submit", str(campaign), "--by", "An")[0] == 0
    assert cli("approve", str(campaign), "--by", "Bình")[0] == 0

    code, out, err = cli("send", str(campaign), "--by", "Bình", "--json")
    assert code == 0, err
    sent = json.loads(out)
    assert sent["campaign_id"] == campaign
    assert sent["wait"] is False
    assert show(cli, campaign)["status"] == "sending"
    code, out, _ = cli("send", str(campaign), "--by", "Bình")
    assert code == 2
    for action, status in (("pause", "paused"), ("resume", "sending"), ("cancel", "cancelled")):
        code, out, err = cli(action, str(campaign), "--by", "Bình")
        assert code == 0, err
        assert STATUS_LABELS[status] in out
        assert show(cli, campaign)["status"] == status
    runs = show(cli, campaign)["runs"]
    assert [(r["id"], r["status"], r["test"]) for r in runs] == [
        (sent["run_id"], "cancelled", False)
    ]
    code, _, err = cli("resume", str(campaign), "--by", "Bình")
    assert code == 2
    assert "đã hủy" in err


def test_send_without_wait_says_bot_serve_delivers_it(cli: Cli) -> None:
    campaign = approved(cli)
    code, out, err = cli("send", str(campaign), "--by", "Trần Thị Bình")
    assert code == 0, err
    assert "`bot serve`" in out
    assert f"bot campaign report {campaign}" in out


# --- list, show, plan, report ---------------------------------------------------------------


def test_list_json_shape_and_status_filter(cli: Cli) -> None:
    first = create(cli, "--cron", "0 8 * * mon", "--until", "2099-03-31")
    second = approved(cli, "--urgent", "--channels", "zalo", "--image-url", "https://x.vn/a.png")
    code, out, err = cli("list", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [first, second]
    assert set(rows[0]) == {
        "id",
        "name",
        "status",
        "status_label",
        "status_reason",
        "text",
        "channels",
        "topics",
        "link_title",
        "link_url",
        "image_url",
        "schedule",
        "urgent",
        "author",
        "approved_by",
        "created_at",
        "updated_at",
    }
    assert set(rows[0]["schedule"]) == {"kind", "at", "cron", "until", "timezone"}
    assert rows[1]["channels"] == ["zalo"]
    assert rows[1]["urgent"] is True
    assert rows[1]["image_url"] == "https://x.vn/a.png"
    code, out, _ = cli("list", "--status", "approved", "--json")
    assert [r["id"] for r in json.loads(out)] == [second]
    code, out, _ = cli("list", "--status", "approved")
    assert code == 0
    assert "Đã duyệt" in out
    assert "Dịch vụ công tháng 12" in out
    code, out, _ = cli("list", "--status", "done")
    assert "Chưa có chiến dịch nào ở trạng thái này." in out
    # The parser's statuses are the workflow's.
    from bot.cli.campaigns import STATUSES

    assert set(STATUSES) == set(STATUS_LABELS)


def test_show_of_a_recurring_campaign_lists_the_next_mondays(cli: Cli) -> None:
    campaign = create(cli, "--cron", "0 8 * * 1")
    data = show(cli, campaign)
    upcoming = [dt.datetime.fromisoformat(m) for m in data["next_occurrences"]]
    assert len(upcoming) == 5
    assert all(m.weekday() == 0 and (m.hour, m.minute) == (8, 0) for m in upcoming)
    assert all(b - a == dt.timedelta(days=7) for a, b in itertools.pairwise(upcoming))


def _plan_people(now: dt.datetime) -> list[tuple[str, str, list[str], dt.datetime | None]]:
    recent, old = now - dt.timedelta(days=1), now - dt.timedelta(days=10)
    return [
        ("telegram", "1001", [TOPIC], None),
        ("telegram", "1002", [TOPIC, OTHER_TOPIC], None),
        ("telegram", "1003", [TOPIC], None),
        ("telegram", "1004", [OTHER_TOPIC], None),  # another topic
        ("zalo", "z1", [TOPIC], recent),
        ("zalo", "z2", [TOPIC], now - dt.timedelta(days=6, hours=23)),
        ("zalo", "z3", [TOPIC], old),  # outside the 7-day window
        ("zalo", "z4", [TOPIC], now - dt.timedelta(days=7, hours=1)),  # just outside
        ("zalo", "z5", [OTHER_TOPIC], old),  # another topic
    ]


def test_plan_counts_the_audience_the_zalo_window_and_the_durations(cli: Cli, db_url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    run_sync(seed(db_url, _plan_people(now)))
    campaign = create(cli, "--topics", TOPIC, "--at", future_local(3, 10))
    code, out, err = cli("plan", str(campaign), "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["audience"] == {"telegram": 3, "zalo": 2}
    assert plan["out_of_window"] == {"telegram": 0, "zalo": 2}
    assert plan["total"] == 5
    assert plan["rates_per_second"] == {"telegram": 2.0, "zalo": 0.5}
    # 3 at 2/s and 2 at 0.5/s, in parallel.
    assert plan["durations_seconds"] == {"telegram": 1.5, "zalo": 4.0}
    assert plan["duration_seconds"] == 4.0
    assert plan["quiet_hours"] is False
    assert plan["held_until"] is None
    assert plan["start"] == future_local(3, 10).replace(" ", "T") + ":00+07:00"
    cutoff = dt.datetime.fromisoformat(plan["window_cutoff"])
    assert abs((now - dt.timedelta(days=7)) - cutoff) < dt.timedelta(minutes=1)

    # An unsubscribed citizen leaves the audience.
    async def leave() -> None:
        async with open_storage(settings_for(db_url)) as opened:
            await opened.subscribers.unsubscribe("telegram", "1002", source="test")

    run_sync(leave())
    code, out, _ = cli("plan", str(campaign))
    assert code == 0
    assert "Telegram: 2 người, khoảng 1 giây (2 tin/giây)" in out
    assert "Zalo: 2 người, khoảng 4 giây (0,5 tin/giây); 2 người quá 7 ngày" in out
    assert "ngoài giờ yên lặng (21:00–07:00)" in out


def test_plan_says_when_quiet_hours_hold_the_start(cli: Cli) -> None:
    at = future_local(4, 22)
    campaign = create(cli, "--at", at, "--channels", "telegram")
    code, out, _ = cli("plan", str(campaign), "--json")
    plan = json.loads(out)
    assert plan["audience"] == {"telegram": 0}
    assert plan["out_of_window"] == {"telegram": 0}
    assert plan["window_cutoff"] is None  # Telegram has no window
    assert plan["quiet_hours"] is True
    next_morning = dt.datetime.strptime(at, "%Y-%m-%d %H:%M") + dt.timedelta(hours=9)
    assert plan["held_until"] == next_morning.strftime("%Y-%m-%dT07:00:00+07:00")
    code, out, _ = cli("plan", str(campaign))
    assert code == 0
    assert f"tin sẽ chờ đến {next_morning.strftime('%d/%m/%Y')} 07:00 mới gửi" in out

    urgent = create(cli, "--at", at, "--urgent")
    plan = json.loads(cli("plan", str(urgent), "--json")[1])
    assert (plan["quiet_hours"], plan["held_until"]) == (True, None)
    assert "chiến dịch khẩn nên vẫn gửi ngay" in cli("plan", str(urgent))[1]


def test_report_counts_rate_eta_and_errors_by_hand(
    cli: Cli, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now(dt.UTC)
    people: list[tuple[str, str, list[str], dt.datetime | None]] = [
        ("telegram", f"20{i}", [TOPIC], None) for i in range(5)
    ]
    people += [
        ("zalo", "za", [TOPIC], now),
        ("zalo", "zb", [TOPIC], now),
        ("zalo", "zc", [TOPIC], now - dt.timedelta(days=30)),
    ]
    run_sync(seed(db_url, people))
    campaign = approved(cli)
    code, out, err = cli("send", str(campaign), "--by", "Trần Thị Bình", "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    t0 = dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)

    async def deliver() -> None:
        async with open_storage(settings_for(db_url)) as opened:
            repo = opened.campaigns
            cutoffs = {"zalo": dt.datetime.now(dt.UTC) - dt.timedelta(days=7)}
            added = await repo.expand_batch(
                run_id, channels=("telegram", "zalo"), topics=(), window_cutoffs=cutoffs
            )
            assert added == 8
            claimed = await repo.claim("telegram", worker="w1", limit=4)
            assert len(claimed) == 4
            a, b, c, d = claimed
            # Three sent 2 s apart, one refused.
            for offset, outcomes in (
                (0, [Outcome(a.id, SENT, message_id="1")]),
                (2, [Outcome(b.id, SENT, message_id="2")]),
                (4, [Outcome(c.id, SENT, message_id="3"), Outcome(d.id, FAILED, "blocked")]),
            ):
                moment = t0 + dt.timedelta(seconds=offset)
                with monkeypatch.context() as patch:
                    patch.setattr(storage.campaigns, "utcnow", lambda m=moment: m)
                    assert await repo.finish("w1", outcomes) == len(outcomes)

    run_sync(deliver())
    code, out, err = cli("report", str(campaign), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (
        report["sent"],
        report["failed"],
        report["out_of_window"],
        report["uncertain"],
        report["pending"],
    ) == (3, 1, 1, 0, 3)
    # 3 messages over 4 seconds: 2 intervals → 0.5 per second.
    assert report["rate_per_second"] == pytest.approx(0.5)
    # Pending: 1 Telegram at 2/s (0.5 s) and 2 Zalo at 0.5/s (4 s), in parallel.
    assert report["eta_seconds"] == pytest.approx(4.0)
    assert report["totals"]["total"] == 8
    assert report["totals"]["by_channel"]["telegram"]["sent"] == 3
    assert report["totals"]["by_channel"]["telegram"]["pending"] == 1
    assert report["totals"]["by_channel"]["zalo"]["pending"] == 2
    assert report["totals"]["by_channel"]["zalo"]["out_of_window"] == 1
    assert report["totals"]["by_status"]["sent"] == 3
    assert report["latest_run"]["run"]["id"] == run_id
    assert report["latest_run"]["by_status"] == report["totals"]["by_status"]
    assert [r["id"] for r in report["runs"]] == [run_id]
    assert {e["reason"]: e["count"] for e in report["errors"]} == {
        "blocked": 1,
        "outside the 7-day interaction window": 1,
    }
    assert report["next_occurrences"] == []

    code, out, _ = cli("report", str(campaign))
    assert code == 0
    assert "Tốc độ đạt được (lần gần nhất): 0,5 tin/giây" in out
    assert "Còn 3 tin chưa gửi; ước tính còn 4 giây" in out
    assert "Đã gửi" in out
    assert "Ngoài cửa sổ 7 ngày (Zalo)" in out


def test_report_of_a_campaign_never_sent(cli: Cli) -> None:
    campaign = create(cli)
    code, out, _ = cli("report", str(campaign), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["runs"] == []
    assert report["latest_run"] is None
    assert (report["sent"], report["pending"], report["rate_per_second"]) == (0, 0, None)
    assert report["eta_seconds"] == 0.0
    assert "Chưa gửi lần nào." in cli("report", str(campaign))[1]


# --- the arithmetic and quiet hours ---------------------------------------------------------


def test_rate_duration_and_eta_functions() -> None:
    t0 = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert achieved_rate(101, t0, t0 + dt.timedelta(seconds=4)) == 25.0
    assert achieved_rate(1, t0, t0) is None
    assert achieved_rate(5, t0, t0) is None
    assert achieved_rate(0, None, None) is None
    assert duration(0, 0.0) == 0.0
    assert duration(100, 0.0) is None  # no limit: cannot be estimated
    assert duration(4000, 4000 / 60) == pytest.approx(60.0)
    assert eta({"telegram": 250, "zalo": 4000}, {"telegram": 25, "zalo": 4000 / 60}) == (
        pytest.approx(60.0)
    )
    assert eta({}, {"telegram": 25}) == 0.0
    assert eta({"telegram": 10}, {"telegram": 0}) is None


@pytest.mark.parametrize(
    ("start", "end", "now", "quiet"),
    [
        # Overnight, half-open: 21:00 is quiet, 07:00 is not.
        ("21:00", "07:00", "20:59", False),
        ("21:00", "07:00", "21:00", True),
        ("21:00", "07:00", "23:59", True),
        ("21:00", "07:00", "00:00", True),
        ("21:00", "07:00", "06:59", True),
        ("21:00", "07:00", "07:00", False),
        ("21:00", "07:00", "12:00", False),
        # Within one day.
        ("12:00", "13:30", "11:59", False),
        ("12:00", "13:30", "12:00", True),
        ("12:00", "13:30", "13:29", True),
        ("12:00", "13:30", "13:30", False),
        # Equal bounds: no quiet hours at all.
        ("07:00", "07:00", "07:00", False),
        ("07:00", "07:00", "03:00", False),
        ("00:00", "00:00", "00:00", False),
        ("22:00", "22:00", "23:00", False),
    ],
)
def test_in_quiet_hours(start: str, end: str, now: str, quiet: bool) -> None:
    assert in_quiet_hours(parse_hhmm(now), start, end) is quiet


def test_in_quiet_hours_rejects_malformed_bounds() -> None:
    for bad in ("21h", "25:00", "9:5", "", "21:00:00"):
        with pytest.raises(ValueError):
            in_quiet_hours(dt.time(12), bad, "07:00")


@pytest.mark.parametrize(
    ("now_utc", "resume_utc"),
    [
        # 22:30 in Hà Nội → 07:00 the next morning.
        (dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC), dt.datetime(2026, 12, 2, 0, 0)),
        # 03:00 local (20:00 UTC the day before) → 07:00 the same local morning.
        (dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.UTC), dt.datetime(2026, 12, 2, 0, 0)),
        # 21:00 local exactly: quiet starts.
        (dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC), dt.datetime(2026, 12, 2, 0, 0)),
        # 10:00 and 07:00 local: not quiet.
        (dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC), None),
        (dt.datetime(2026, 12, 2, 0, 0, tzinfo=dt.UTC), None),
    ],
)
def test_quiet_resume_at(now_utc: dt.datetime, resume_utc: dt.datetime | None) -> None:
    expected = resume_utc.replace(tzinfo=dt.UTC) if resume_utc else None
    assert quiet_resume_at(now_utc, BroadcastSettings()) == expected


def test_quiet_resume_at_with_equal_bounds_or_a_daytime_span() -> None:
    moment = dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC)
    assert (
        quiet_resume_at(moment, BroadcastSettings(quiet_start="08:00", quiet_end="08:00")) is None
    )
    lunch = BroadcastSettings(quiet_start="12:00", quiet_end="13:30")
    at_noon = dt.datetime(2026, 12, 1, 5, 15, tzinfo=dt.UTC)  # 12:15 local
    assert quiet_resume_at(at_noon, lunch) == dt.datetime(2026, 12, 1, 6, 30, tzinfo=dt.UTC)


# --- sending for real: the engine, the Telegram courier, the fake Bot API ----------------------
# These need broadcasts/engine.py and bot/channels/couriers.py.

TOKEN = "123456789:AAH-test_token_Zq8xY"


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as fake:
        yield fake


def send_env(api: FakeTelegram, db_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_TELEGRAM", "BOT_ZALO", "BOT_BROADCAST"))
    }
    return {
        **env,
        "PYTHONIOENCODING": "utf-8",
        "BOT_DATABASE_URL": db_url,
        "BOT_TELEGRAM_TOKEN": TOKEN,
        "BOT_TELEGRAM_WEBHOOK_SECRET": "webhook-Secret_42",
        "BOT_TELEGRAM_API_URL": api.url,
        # Whatever the hour the tests run at: no quiet hours.
        "BOT_BROADCAST_QUIET_START": "00:00",
        "BOT_BROADCAST_QUIET_END": "00:00",
    }


async def run_bot(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "campaign",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def approved_in_db(db_url: str, chats: list[str], **spec: Any) -> tuple[int, list[int]]:
    """Subscribers ``chats`` on Telegram and an approved Telegram campaign for them."""
    from bot.services import build_campaigns
    from broadcasts.workflow import CampaignSpec

    async with open_services(settings_for(db_url)) as services:
        ids = [
            (await services.storage.subscribers.subscribe("telegram", chat, [TOPIC], source="t")).id
            for chat in chats
        ]
        campaigns = build_campaigns(services)
        values: dict[str, Any] = {
            "name": "Gửi thật",
            "text": "Thông báo: **dịch vụ công** mới.",
            "channels": ("telegram",),
            "link_url": "https://dichvucong.gov.vn",
        }
        campaign = await campaigns.create(CampaignSpec(**{**values, **spec}), author="An")
        await campaigns.submit(campaign.id, actor="An")
        await campaigns.approve(campaign.id, by="Bình")
        return campaign.id, ids


async def test_send_wait_delivers_shows_progress_and_reports(
    api: FakeTelegram, db_url: str
) -> None:
    chats = ["5550001", "5550002", "5550003"]
    campaign, _ = await approved_in_db(db_url, chats)
    env = send_env(api, db_url)
    code, out, err = await run_bot(env, "send", str(campaign), "--by", "Bình", "--wait", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "done"
    assert result["by_status"]["sent"] == 3
    assert result["total"] == 3
    assert "100%" in err
    assert "\r" in err
    assert "Traceback" not in err
    for chat in chats:
        (message,) = api.sent(chat)
        visible = parse_html(message["text"])[1]
        assert "dịch vụ công" in visible
        assert visible.rstrip().endswith("Gõ HỦY để ngừng nhận tin.")

    code, out, err = await run_bot(env, "report", str(campaign), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["sent"], report["pending"], report["failed"]) == (3, 0, 0)
    assert report["campaign"]["status"] == "done"


async def test_send_wait_test_send_reaches_only_the_named_subscribers(
    api: FakeTelegram, db_url: str
) -> None:
    campaign, ids = await approved_in_db(db_url, ["5550011", "5550012"])
    env = send_env(api, db_url)
    code, out, err = await run_bot(
        env, "test", str(campaign), "--to", str(ids[1]), "--by", "An", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "done"
    assert [(r["subscriber_id"], r["status"]) for r in result["recipients"]] == [(ids[1], "sent")]
    assert api.sent("5550011") == []
    assert len(api.sent("5550012")) == 1
    # A test send changes nothing in the workflow and is left out of the report.
    code, out, _ = await run_bot(env, "report", str(campaign), "--json")
    report = json.loads(out)
    assert report["campaign"]["status"] == "approved"
    assert (report["runs"], report["sent"]) == ([], 0)
    code, out, _ = await run_bot(env, "show", str(campaign), "--json")
    assert [r["test"] for r in json.loads(out)["runs"]] == [True]


async def test_send_wait_refuses_a_channel_this_machine_cannot_send(
    api: FakeTelegram, db_url: str
) -> None:
    campaign, _ = await approved_in_db(db_url, ["5550021"], channels=("telegram", "zalo"))
    env = send_env(api, db_url)
    code, out, err = await run_bot(env, "send", str(campaign), "--by", "Bình", "--wait")
    assert code == 2
    assert "chưa cấu hình kênh zalo" in err
    code, out, _ = await run_bot(env, "show", str(campaign), "--json")
    assert json.loads(out)["status"] == "approved"  # nothing started
