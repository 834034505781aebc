"""A year of plausible feedback and audit rows for benchmarks: Vietnamese texts of realistic
length, statuses by age, deadlines, assignees and histories, the same for the same ``seed``.
``storage.seed.bulk_feedback`` and ``bulk_audit`` write them."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from typing import Any

from storage.audit import CITIZEN, CLI, CONSOLE
from storage.feedback import (
    ANSWERED,
    CODE_ALPHABET,
    CODE_LENGTH,
    COMPLAINT,
    FACTORS,
    IN_PROGRESS,
    NEW,
    NOTICE_DELIVERED,
    NOTICE_WAITING,
    PARTIAL,
    PREFIX,
    REJECTED,
    RESOLVED,
    SURVEY,
)
from storage.models import utcnow

_CODE_SPACE = len(CODE_ALPHABET) ** CODE_LENGTH


def feedback_code(kind: str, n: int) -> str:
    """The ``n``-th seeded code of ``kind`` (``DG-…``, ``PA-…``): distinct for every ``n``
    below 29⁵ (a fixed permutation, so seeded codes do not run in alphabetical order)."""
    # 7,368,787 is prime to 29, so n ↦ n·a + b (mod 29⁵) is a permutation.
    value = (n * 7_368_787 + 1_234_567) % _CODE_SPACE
    letters = []
    for _ in range(CODE_LENGTH):
        value, digit = divmod(value, len(CODE_ALPHABET))
        letters.append(CODE_ALPHABET[digit])
    return f"{PREFIX[kind]}-{''.join(reversed(letters))}"


# What citizens file about, and in which words. Complaints are put together from an opening,
# one to three problems and a request (about 150–700 characters); a few mention "trễ hẹn".
_PROCEDURES = (
    "cấp đổi giấy phép lái xe",
    "đăng ký khai sinh cho con",
    "cấp giấy chứng nhận quyền sử dụng đất",
    "đăng ký thường trú",
    "cấp phiếu lý lịch tư pháp",
    "đăng ký hộ kinh doanh",
    "chứng thực bản sao từ bản chính",
    "cấp thẻ căn cước",
    "xác nhận tình trạng hôn nhân",
    "đăng ký kết hôn",
    "cấp giấy phép xây dựng nhà ở riêng lẻ",
    "hưởng trợ cấp thất nghiệp",
    "đăng ký biến động đất đai",
    "cấp lại sổ bảo hiểm xã hội",
)
_OPENINGS = (
    "Ngày {d}/{m} tôi đến nộp hồ sơ {p}.",
    "Tôi nộp hồ sơ {p} trực tuyến trên Cổng Dịch vụ công từ ngày {d}/{m}.",
    "Gia đình tôi làm thủ tục {p} tại bộ phận một cửa.",
    "Tôi xin phản ánh việc giải quyết hồ sơ {p} của gia đình tôi.",
    "Kính gửi cơ quan có thẩm quyền, tôi là người dân đang làm thủ tục {p}.",
    "Sáng ngày {d}/{m} tôi đến quầy số {q} để hỏi về hồ sơ {p}.",
)
_PROBLEMS = (
    "Hồ sơ đã trễ hẹn {n} ngày so với giấy hẹn trả kết quả mà tôi chưa nhận được thông báo "
    "nào về lý do chậm.",
    "Đến hẹn trả kết quả nhưng hồ sơ vẫn trễ hẹn, cán bộ chỉ bảo về chờ tiếp.",
    "Cán bộ tiếp nhận yêu cầu bổ sung giấy tờ nhiều lần, mỗi lần một kiểu, không hướng dẫn "
    "một lần cho đầy đủ.",
    "Hệ thống báo lỗi khi thanh toán lệ phí trực tuyến, tiền đã bị trừ trong tài khoản nhưng "
    "hồ sơ vẫn ở trạng thái chờ thanh toán.",
    "Thái độ của cán bộ tại quầy chưa niềm nở, trả lời qua loa khi tôi hỏi về tiến độ giải quyết.",
    "Tôi phải xếp hàng từ sáng đến trưa mới được tiếp nhận vì máy lấy số thứ tự bị hỏng.",
    "Có người gợi ý nộp thêm tiền ngoài quy định để hồ sơ được giải quyết nhanh hơn.",
    "Kết quả trả về ghi sai họ tên và ngày sinh so với giấy tờ gốc, tôi phải đi lại để sửa.",
    "Gọi đường dây nóng nhiều lần trong giờ hành chính nhưng không có người nghe máy.",
    "Khi nộp hồ sơ tôi không được cấp giấy biên nhận, nay không biết tra cứu ở đâu.",
    "Trang tra cứu tình trạng hồ sơ báo đã có kết quả nhưng đến nơi thì chưa có.",
    "Bãi gửi xe trước trung tâm quá chật, người dân phải gửi xe bên ngoài và mất phí.",
    "Tôi được hẹn ba lần mà lần nào đến cũng được báo chưa ký duyệt xong.",
    "Thành phần hồ sơ niêm yết tại quầy khác với hướng dẫn trên Cổng Dịch vụ công.",
)
_REQUESTS = (
    "Đề nghị cơ quan kiểm tra và trả lời cho tôi sớm.",
    "Mong được giải quyết dứt điểm trong tuần này.",
    "Đề nghị xem xét, chấn chỉnh để người dân không phải đi lại nhiều lần.",
    "Tôi cần kết quả gấp để hoàn thiện thủ tục vay vốn ngân hàng, mong cơ quan quan tâm.",
    "Xin cảm ơn.",
    "",
)
_PRAISE = (
    "Cán bộ hướng dẫn nhiệt tình, chu đáo.",
    "Trả kết quả đúng hẹn, tôi rất hài lòng.",
    "Nộp hồ sơ trực tuyến nhanh, không phải đi lại.",
    "Quầy tiếp nhận sạch sẽ, có chỗ ngồi chờ và nước uống.",
    "Được nhắn tin báo khi có kết quả, rất tiện.",
    "Thủ tục đơn giản hơn trước nhiều.",
)
_GRUMBLES = (
    "Thời gian chờ hơi lâu.",
    "Hồ sơ bị trễ hẹn mấy ngày mà không ai báo trước.",
    "Nên bố trí thêm quầy vào sáng thứ Hai vì rất đông.",
    "Thủ tục còn rườm rà, phải sao y nhiều bản.",
    "Cán bộ trả lời điện thoại chưa rõ ràng.",
    "Phí gửi xe cao, biển chỉ dẫn khó thấy.",
    "Mạng chập chờn nên nộp trực tuyến mất nhiều thời gian.",
)
_ANSWERS = (
    "Kính gửi ông/bà, cơ quan đã kiểm tra hồ sơ {p}. Hồ sơ chậm do phải xác minh thêm thông "
    "tin với cơ quan liên quan; kết quả đã được trả ngày {d}/{m}. Chúng tôi xin lỗi vì sự "
    "chậm trễ và đã nhắc nhở bộ phận liên quan. Trân trọng.",
    "Cảm ơn ông/bà đã phản ánh. Bộ phận một cửa đã làm việc với cán bộ tiếp nhận và yêu cầu "
    "hướng dẫn đầy đủ thành phần hồ sơ ngay lần đầu. Ông/bà vui lòng mang bản chính giấy tờ "
    "đến quầy số {q} để được hỗ trợ.",
    "Lỗi thanh toán đã được khắc phục; khoản lệ phí ông/bà đã nộp được ghi nhận vào hồ sơ. "
    "Ông/bà có thể tra cứu tình trạng hồ sơ trên Cổng Dịch vụ công bằng mã hồ sơ.",
    "Chúng tôi ghi nhận góp ý và đã bố trí thêm một quầy tiếp nhận vào buổi sáng. Trân trọng "
    "cảm ơn ông/bà.",
)
_REJECTIONS = (
    "Nội dung phản ánh không thuộc thẩm quyền giải quyết của đơn vị; đề nghị ông/bà liên hệ "
    "Ủy ban nhân dân xã, phường nơi cư trú để được hướng dẫn.",
    "Phản ánh trùng với phản ánh ông/bà đã gửi trước đó và đã được trả lời.",
    "Nội dung chưa đủ thông tin để xác minh (không có mã hồ sơ, thời gian, địa điểm); đề nghị "
    "ông/bà gửi lại phản ánh với đầy đủ thông tin.",
)
_RATINGS = ((5, 45), (4, 30), (3, 12), (2, 7), (1, 4), (None, 2))
# Status by age, in per cent: within the handling period, and past it.
_STATUS_MIX = {
    (SURVEY, False): ((NEW, 70), (IN_PROGRESS, 10), (RESOLVED, 15), (ANSWERED, 5)),
    (SURVEY, True): ((RESOLVED, 74), (ANSWERED, 20), (REJECTED, 1), (NEW, 4), (IN_PROGRESS, 1)),
    (COMPLAINT, False): (
        (NEW, 40),
        (IN_PROGRESS, 45),
        (ANSWERED, 10),
        (RESOLVED, 3),
        (REJECTED, 2),
    ),
    (COMPLAINT, True): ((ANSWERED, 55), (RESOLVED, 30), (REJECTED, 9), (IN_PROGRESS, 4), (NEW, 2)),
}
_CLOSED = (ANSWERED, RESOLVED, REJECTED)
_CONTACT_RETENTION = dt.timedelta(days=90)


def _pick(rng: random.Random, mix: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([value for value, _ in mix], [weight for _, weight in mix])[0]


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        d=rng.randint(1, 28),
        m=rng.randint(1, 12),
        n=rng.randint(2, 20),
        p=rng.choice(_PROCEDURES),
        q=rng.randint(1, 12),
    )


def _complaint_text(rng: random.Random) -> str:
    parts = [_fill(rng, rng.choice(_OPENINGS))]
    parts += [_fill(rng, p) for p in rng.sample(_PROBLEMS, rng.choice((1, 1, 2, 2, 3)))]
    parts.append(rng.choice(_REQUESTS))
    return " ".join(p for p in parts if p)


def _citizen(rng: random.Random, channel: str, n: int) -> str:
    if channel == "telegram":
        return str(5_000_000_000 + n * 7919)
    if channel == "zalo":
        return str(8_000_000_000_000_000_000 + n * 104_729)
    return f"web-{n:012x}"


def sample_feedback(
    count: int,
    *,
    points: Sequence[str],
    procedures: Sequence[str] = (),
    assignees: Sequence[str] = ("can.bo",),
    now: dt.datetime | None = None,
    days: int = 365,
    complaint_days: int = 10,
    survey_days: int = 15,
    seed: int = 1,
) -> Iterator[dict[str, Any]]:
    """``count`` items filed evenly over the last ``days`` days, oldest first, for
    ``bulk_feedback``: about 62 % surveys (8 % of them left unfinished) and 38 % complaints,
    on Zalo, Telegram and web chat, from a pool of returning citizens; service points drawn
    from ``points`` (the first ones most often), procedures from ``procedures``.

    Older items are mostly closed (answered, resolved, rejected, in about the handling
    period), recent ones mostly open; a few per cent of old ones are still open, hence
    overdue. Handled items are assigned to one of ``assignees`` (a fifth to the first, the
    rest evenly to the others), with the assignment, answer and closing in their history;
    answers are delivered or waiting for the citizen. Phone numbers (with consent) and
    dossier codes of items closed over 90 days ago are erased, as the retention job would
    have done."""
    rng = random.Random(seed)
    now = now or utcnow()
    start = now - dt.timedelta(days=days)
    span = (now - start).total_seconds()
    point_weights = [1 / (k + 1) ** 0.6 for k in range(len(points))]
    citizens = max(1, count // 3)
    made = {SURVEY: 0, COMPLAINT: 0}
    for i in range(count):
        created = start + dt.timedelta(seconds=span * (i + rng.random()) / count)
        age = now - created
        kind = SURVEY if rng.random() < 0.62 else COMPLAINT
        code = feedback_code(kind, made[kind])
        made[kind] += 1
        period = dt.timedelta(days=survey_days if kind == SURVEY else complaint_days)
        channel = _pick(rng, (("zalo", 50), ("telegram", 42), ("web", 8)))
        external_id = _citizen(rng, channel, rng.randrange(citizens))
        row: dict[str, Any] = {
            "code": code,
            "kind": kind,
            "channel": channel,
            "external_id": external_id,
            "deadline_at": created + period,
            "created_at": created,
        }
        events: list[dict[str, Any]] = []
        if kind == SURVEY:
            events.append(_event(None, PARTIAL, "citizen", CITIZEN, created))
            partial = rng.random() < 0.08
            rated = rng.randrange(len(FACTORS)) if partial else len(FACTORS)
            ratings = [_pick(rng, _RATINGS) if k < rated else None for k in range(len(FACTORS))]
            row.update(zip(FACTORS, ratings, strict=True))
            if points and rng.random() < (0.6 if partial else 0.97):
                row["point_id"] = rng.choices(points, point_weights)[0]
            if procedures and rng.random() < 0.6:
                row["procedure_id"] = rng.choice(procedures)
            if partial:
                row.update(status=PARTIAL, updated_at=created + dt.timedelta(minutes=2))
                row["events"] = events
                yield row
                continue
            given = [r for r in ratings if r is not None]
            low = bool(given) and sum(given) / len(given) < 3.5
            if rng.random() < (0.7 if low else 0.3):
                pool = _GRUMBLES if low else _PRAISE
                row["comment"] = " ".join(rng.sample(pool, rng.choice((1, 1, 2))))
            completed = created + dt.timedelta(seconds=rng.uniform(40, 600))
            events.append(_event(PARTIAL, NEW, "citizen", CITIZEN, completed))
        else:
            completed = created
            row["description"] = _complaint_text(rng)
            events.append(_event(None, NEW, "citizen", CITIZEN, created))
            if points and rng.random() < 0.75:
                row["point_id"] = rng.choices(points, point_weights)[0]
            if rng.random() < 0.3:
                row["dossier_code"] = (
                    f"000.{rng.randint(0, 99):02d}.{rng.randint(1, 40):02d}.H10-"
                    f"{created:%y%m%d}-{rng.randint(1, 9999):04d}"
                )
            if rng.random() < 0.4:
                row["phone"] = f"09{rng.randint(0, 99_999_999):08d}"
                row["contact_consent_at"] = created
        row["completed_at"] = completed

        status = _pick(rng, _STATUS_MIX[(kind, age > period)])
        if status == ANSWERED and kind == SURVEY and not row.get("comment"):
            status = RESOLVED
        longest = min(age, period * 1.3)
        if status in _CLOSED and longest < dt.timedelta(hours=1):
            status = IN_PROGRESS if longest > dt.timedelta(minutes=10) else NEW
        row["status"] = status
        touched = completed
        if status != NEW:
            others = assignees[1:] or assignees
            who = assignees[0] if rng.random() < 0.2 else rng.choice(others)
            lead = rng.choice(assignees)
            via = CLI if rng.random() < 0.1 else CONSOLE
            closing = min(age, longest)
            if status in _CLOSED:
                closed = completed + dt.timedelta(
                    seconds=rng.uniform(
                        600, max(601.0, (closing - (completed - created)).total_seconds())
                    )
                )
                closed = min(closed, now - dt.timedelta(seconds=1))
            else:
                closed = now
            assigned = completed + (closed - completed) * rng.uniform(0.05, 0.5)
            row["assignee"] = who
            events.append(_event(NEW, IN_PROGRESS, lead, via, assigned, f"giao cho {who}"))
            touched = assigned
            if status in _CLOSED:
                row["closed_at"] = closed
                touched = closed
                text: str | None = None
                if status == REJECTED:
                    text = rng.choice(_REJECTIONS)
                    events.append(_event(IN_PROGRESS, REJECTED, who, via, closed, text))
                elif status == ANSWERED or (kind == COMPLAINT and rng.random() < 0.7):
                    text = _fill(rng, rng.choice(_ANSWERS))
                    if status == RESOLVED:
                        answered = assigned + (closed - assigned) * rng.uniform(0.3, 0.9)
                        events.append(_event(IN_PROGRESS, ANSWERED, who, via, answered))
                        events.append(_event(ANSWERED, RESOLVED, who, via, closed))
                        closed = answered
                    else:
                        events.append(_event(IN_PROGRESS, ANSWERED, who, via, closed))
                else:
                    events.append(_event(IN_PROGRESS, RESOLVED, who, via, closed))
                if text is not None:
                    row.update(answer=text, answered_by=who, answered_at=closed)
                row["notify_status"] = NOTICE_DELIVERED if rng.random() < 0.85 else NOTICE_WAITING
                if row["notify_status"] == NOTICE_DELIVERED:
                    row["notified_at"] = closed + dt.timedelta(seconds=rng.uniform(1, 30))
                if now - row["closed_at"] > _CONTACT_RETENTION and (
                    row.get("phone") or row.get("dossier_code")
                ):
                    row.update(
                        phone=None,
                        dossier_code=None,
                        contact_erased_at=row["closed_at"] + _CONTACT_RETENTION,
                    )
        row["updated_at"] = touched
        row["events"] = events
        yield row


def _event(
    old: str | None,
    new: str,
    actor: str,
    via: str,
    at: dt.datetime,
    note: str | None = None,
) -> dict[str, Any]:
    return {
        "from_status": old,
        "to_status": new,
        "actor": actor,
        "via": via,
        "note": note[:500] if note else None,
        "created_at": at,
    }


# The audit log's mix: sign-ins and item actions, some failures and refusals.
_AUDIT_MIX = (
    ("signin", 26),
    ("signout", 9),
    ("signin.failed", 4),
    ("feedback.assign", 16),
    ("feedback.answer", 14),
    ("feedback.resolve", 12),
    ("feedback.reject", 2),
    ("feedback.contact", 6),
    ("feedback.export", 2),
    ("access.denied", 1),
    ("password.change", 1),
    ("csrf.refused", 1),
    ("account.reset_password", 1),
)


def sample_audit(
    count: int,
    *,
    actors: Sequence[tuple[int | None, str]],
    codes: Sequence[str] = (),
    now: dt.datetime | None = None,
    days: int = 365,
    seed: int = 1,
) -> Iterator[dict[str, Any]]:
    """``count`` audit rows evenly over the last ``days`` days, oldest first, for
    ``bulk_audit``: console sign-ins and sign-outs, item actions on ``codes`` by ``actors``
    (account id, user name), the odd failed sign-in, refusal and export; a tenth of the item
    actions typed at the command line."""
    rng = random.Random(seed)
    now = now or utcnow()
    start = now - dt.timedelta(days=days)
    span = (now - start).total_seconds()
    for i in range(count):
        account_id, name = rng.choice(actors)
        action = _pick(rng, _AUDIT_MIX)
        via = CLI if action.startswith("feedback.") and rng.random() < 0.1 else CONSOLE
        target: str | None = None
        detail: str | None = None
        if (
            action
            in (
                "feedback.assign",
                "feedback.answer",
                "feedback.resolve",
                "feedback.reject",
                "feedback.contact",
            )
            and codes
        ):
            target = rng.choice(codes)
        if action == "feedback.assign":
            detail = f"giao cho {rng.choice(actors)[1]}"
        elif action == "feedback.reject":
            detail = rng.choice(_REJECTIONS)[:200]
        elif action == "feedback.export":
            detail = f"xlsx, {rng.randint(10, 5000)} mục; status=new"
        elif action == "signout":
            detail = "kết thúc 1 phiên"
        elif action in ("access.denied", "csrf.refused"):
            target = rng.choice(("GET /admin/audit", "POST /admin/feedback/export"))
        elif action == "account.reset_password":
            target = rng.choice(actors)[1]
        if action == "signin.failed" and rng.random() < 0.3:
            account_id, name = None, rng.choice(("admin", "test", "nguyenvana"))
        yield {
            "created_at": start + dt.timedelta(seconds=span * (i + rng.random()) / count),
            "account_id": account_id if via == CONSOLE else None,
            "actor": name,
            "via": via,
            "action": action,
            "target": target,
            "detail": detail,
            "address": f"10.20.{rng.randint(0, 15)}.{rng.randint(2, 250)}"
            if via == CONSOLE
            else None,
        }
