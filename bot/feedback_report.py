"""The numbers, rows and files behind ``bot feedback`` and the console's feedback pages:
satisfaction statistics, the chart of the index per service point, and the CSV / XLSX
exports. ``bot.cli.feedback`` and ``bot.console`` parse, call and present; everything here is
plain functions over ``FeedbackView`` and survey sums, and ``satisfaction``, which has the
database make those sums (per service point and local month: a year of surveys is a few
hundred rows, not tens of thousands).

Satisfaction statistics (``bot feedback stats``) count completed surveys only (status other
than ``partial``; an abandoned survey never counts). Each survey rates up to five SIPAS
factors from 1 (rất không hài lòng) to 5 (rất hài lòng) and may skip any of them. For a
service point, for all of them together and for each month:

- *responses*: the number of completed surveys;
- *mean* of a factor: the average of that factor's ratings over the surveys that answered
  it; a skipped factor is left out of that factor's mean (it is not a zero);
- *satisfied share* of a factor: the percentage of that factor's answers rated 4 (hài lòng)
  or 5 (rất hài lòng);
- *satisfaction index* (SIPAS-style): the mean of the five factors' satisfied shares, over
  the factors with at least one answer; none when no factor was answered at all.

So each factor weighs the same whatever the number of answers it got, as in the SIPAS
survey's aggregation. Months are calendar months in the feedback time zone
(``BOT_FEEDBACK_TIMEZONE``, Asia/Ho_Chi_Minh), by the time the survey was completed; the
trend lists every month from the first to the last one with a response.

Exports hold one row per item with Vietnamese headers. Citizen text is kept as typed except
where it could act: in CSV a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return gets a leading apostrophe (as ``bot subscribers export`` does); in XLSX every
text cell is written as a string cell (never a formula), with the control characters XML
cannot hold shown as escapes. Phone numbers are masked (``09******78``) unless the caller
asks for contacts.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import datetime as dt
import textwrap
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

from bot.cli.text import csv_cell, printable
from storage.feedback import STATUS_LABELS
from storage.feedback_inbox import SurveyTotal

if TYPE_CHECKING:
    from content.models import KnowledgeBase
    from storage.feedback import FeedbackFilter, FeedbackView
    from storage.feedback_inbox import FeedbackInbox

# storage.feedback.FACTORS with the names the survey asks them by (messages.yaml factor_*).
FACTOR_LABELS = {
    "r_access": "Tiếp cận dịch vụ",
    "r_procedure": "Thủ tục hành chính",
    "r_staff": "Công chức giải quyết",
    "r_result": "Kết quả giải quyết",
    "r_feedback": "Tiếp nhận, xử lý góp ý",
}
FACTORS = tuple(FACTOR_LABELS)
KIND_LABELS = {"survey": "Đánh giá", "complaint": "Phản ánh"}
RATING_LABELS = {
    1: "Rất không hài lòng",
    2: "Không hài lòng",
    3: "Bình thường",
    4: "Hài lòng",
    5: "Rất hài lòng",
}
# Where a staff answer is on its way back to the citizen (FeedbackItem.notify_status).
NOTICE_LABELS = {
    "pending": "chờ gửi tới người dân",
    "sending": "đang gửi tới người dân",
    "waiting": "chờ người dân nhắn tin lại để gửi",
    "delivered": "đã gửi tới người dân",
}
SATISFIED_FROM = 4  # 4 (hài lòng) and 5 (rất hài lòng)

EXPORT_HEADERS = (
    "Mã",
    "Loại",
    "Trạng thái",
    "Nơi giải quyết",
    "Thủ tục",
    *FACTOR_LABELS.values(),
    "Ý kiến",
    "Nội dung phản ánh",
    "Mã hồ sơ",
    "Điện thoại",
    "Người xử lý",
    "Trả lời",
    "Ngày gửi",
    "Hạn xử lý",
    "Ngày đóng",
)
# Column widths of the XLSX sheet, in characters.
XLSX_WIDTHS = (10, 10, 14, 36, 36, *(12,) * len(FACTORS), 40, 50, 16, 14, 20, 50, 17, 17, 17)
XLSX_DATE_FORMAT = "dd/mm/yyyy hh:mm"

Cell = str | int | dt.datetime | None
MonthStart = tuple[str, dt.datetime]


def mask_phone(phone: str | None) -> str | None:
    """``0912345678`` → ``09******78``: enough to tell numbers apart, not to call one."""
    if not phone:
        return None
    if len(phone) <= 4:
        return "*" * len(phone)
    return phone[:2] + "*" * (len(phone) - 4) + phone[-2:]


@dataclass(frozen=True, slots=True)
class Catalog:
    """Names staff read for the ids stored with feedback, from the content pack; an id the
    pack no longer has is shown as it is."""

    points: dict[str, str] = field(default_factory=dict)
    procedures: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, kb: KnowledgeBase) -> Catalog:
        return cls(
            points={p.id: p.name for g in kb.service_groups for p in g.points},
            procedures={e.id: e.title for e in kb.entries},
        )

    def point(self, point_id: str | None) -> str | None:
        return self.points.get(point_id, point_id) if point_id else None

    def procedure(self, entry_id: str | None) -> str | None:
        return self.procedures.get(entry_id, entry_id) if entry_id else None

    def point_order(self, point_id: str | None) -> tuple[int, str]:
        """Pack order first, then unknown ids by name, then the surveys without a point."""
        if point_id is None:
            return (2, "")
        if point_id in self.points:
            return (0, f"{list(self.points).index(point_id):06d}")
        return (1, point_id)


# --- statistics -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FactorStats:
    answered: int
    mean: float | None
    satisfied: float | None  # percentage of the answers rated 4 or 5


@dataclass(frozen=True, slots=True)
class Tally:
    """The statistics of a group of completed surveys (see the module docstring)."""

    responses: int
    factors: tuple[FactorStats, ...]

    @property
    def index(self) -> float | None:
        shares = [f.satisfied for f in self.factors if f.satisfied is not None]
        return sum(shares) / len(shares) if shares else None


@dataclass(slots=True)
class _Counter:
    responses: int = 0
    answered: list[int] = field(default_factory=lambda: [0] * len(FACTORS))
    total: list[int] = field(default_factory=lambda: [0] * len(FACTORS))
    satisfied: list[int] = field(default_factory=lambda: [0] * len(FACTORS))

    def add(self, sums: SurveyTotal) -> None:
        self.responses += sums.responses
        for i in range(len(FACTORS)):
            self.answered[i] += sums.answered[i]
            self.total[i] += sums.total[i]
            self.satisfied[i] += sums.satisfied[i]

    def tally(self) -> Tally:
        return Tally(
            self.responses,
            tuple(
                FactorStats(n, self.total[i] / n, 100 * self.satisfied[i] / n)
                if n
                else FactorStats(0, None, None)
                for i, n in enumerate(self.answered)
            ),
        )


@dataclass(frozen=True, slots=True)
class SurveyStats:
    overall: Tally
    by_point: dict[str | None, Tally]
    by_month: dict[str, Tally]  # "YYYY-MM", every month from the first to the last


SurveyRow = tuple[str | None, dt.datetime, Sequence[int | None]]


def month_starts(first: dt.datetime, last: dt.datetime, zone: dt.tzinfo) -> list[MonthStart]:
    """Every calendar month in ``zone`` from ``first``'s to ``last``'s: its key
    ("YYYY-MM") and the instant it starts, in UTC."""
    local = first.astimezone(zone)
    year, month = local.year, local.month
    end = last.astimezone(zone).strftime("%Y-%m")
    months: list[MonthStart] = []
    while (key := f"{year:04d}-{month:02d}") <= end:
        start = dt.datetime(year, month, 1, tzinfo=zone).astimezone(dt.UTC)
        months.append((key, start))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def stats_of(totals: Iterable[SurveyTotal], months: Sequence[MonthStart]) -> SurveyStats:
    """The statistics from per-point, per-month sums (bucket ``i`` is ``months[i]``)."""
    overall = _Counter()
    points: dict[str | None, _Counter] = {}
    by_month = [_Counter() for _ in months]
    for sums in totals:
        overall.add(sums)
        points.setdefault(sums.point_id, _Counter()).add(sums)
        by_month[sums.bucket].add(sums)
    return SurveyStats(
        overall.tally(),
        {p: c.tally() for p, c in points.items()},
        {key: counter.tally() for (key, _), counter in zip(months, by_month, strict=True)},
    )


def survey_stats(rows: Iterable[SurveyRow], zone: dt.tzinfo) -> SurveyStats:
    """Statistics of completed surveys given one by one as (service point, completed time,
    ratings): the same sums the database makes for ``satisfaction``, made here."""
    rows = list(rows)
    if not rows:
        return stats_of([], [])
    months = month_starts(min(r[1] for r in rows), max(r[1] for r in rows), zone)
    edges = [start for _, start in months[1:]]
    return stats_of(
        (
            SurveyTotal(
                point_id,
                bisect.bisect_right(edges, completed_at),
                1,
                tuple(int(r is not None) for r in ratings),
                tuple(r or 0 for r in ratings),
                tuple(int(r is not None and r >= SATISFIED_FROM) for r in ratings),
            )
            for point_id, completed_at, ratings in rows
        ),
        months,
    )


async def satisfaction(inbox: FeedbackInbox, where: FeedbackFilter, zone: dt.tzinfo) -> SurveyStats:
    """Statistics of the completed surveys of ``where``'s service point and period, summed
    by the database per service point and local month."""
    span = await inbox.survey_span(where)
    if span is None:
        return stats_of([], [])
    months = month_starts(*span, zone)
    totals = await inbox.survey_totals(
        where, [start for _, start in months[1:]], satisfied_from=SATISFIED_FROM
    )
    return stats_of(totals, months)


def index_chart(
    bars: Sequence[tuple[str, float, int]], path: Path | IO[bytes], *, title: str, note: str
) -> None:
    """A horizontal bar chart PNG of the satisfaction index: one (label, index %, responses)
    bar each, best at the top. Labels are taken literally (no ``$…$`` mathtext)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ordered = sorted(bars, key=lambda bar: bar[1])  # barh draws from the bottom up
    with matplotlib.rc_context(
        {
            "font.family": "DejaVu Sans",  # bundled with matplotlib; covers Vietnamese
            "text.parse_math": False,
            "text.usetex": False,
            "axes.unicode_minus": False,
        }
    ):
        figure = Figure(figsize=(10, 1.8 + 0.5 * max(len(ordered), 1)), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        labels = [textwrap.fill(label, 42) for label, _, _ in ordered]
        positions = list(range(len(ordered)))
        values = [value for _, value, _ in ordered]
        axes.barh(positions, values, color="#1f6fb2", height=0.6)
        axes.set_yticks(positions, labels=labels)
        for position, (_, value, responses) in zip(positions, ordered, strict=True):
            axes.text(
                min(value, 100) + 1,
                position,
                f"{decimal(value, 1)}% · {responses} phiếu",
                va="center",
                fontsize=9,
            )
        if not ordered:
            axes.set_yticks([])
            axes.text(50, 0, "Chưa có phiếu đánh giá nào.", ha="center", va="center")
            axes.set_ylim(-1, 1)
        axes.set_xlim(0, 125)
        axes.set_xticks(range(0, 101, 20))
        axes.set_xlabel("Chỉ số hài lòng: bình quân tỷ lệ hài lòng của 5 yếu tố (%)")
        axes.set_title(title, fontsize=13, fontweight="bold", loc="left")
        figure.text(0.01, 0.01, note, fontsize=8, color="#555555")
        axes.grid(axis="x", color="#dddddd")
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        figure.tight_layout(rect=(0, 0.04, 1, 1))
        figure.savefig(path, format="png")


def decimal(value: float | None, places: int) -> str:
    """A number with a Vietnamese decimal comma (``83,3``); ``-`` for none."""
    if value is None:
        return "-"
    return f"{value:.{places}f}".replace(".", ",")


# --- exports --------------------------------------------------------------------------------


def export_row(
    item: FeedbackView, catalog: Catalog, zone: dt.tzinfo, *, with_contact: bool
) -> list[Cell]:
    """One item as the export's cells (EXPORT_HEADERS order): labels and names instead of
    ids, the phone masked unless ``with_contact``, times local and aware, stray control
    characters escaped (see ``file_text``)."""

    def local(moment: dt.datetime | None) -> dt.datetime | None:
        return moment.astimezone(zone).replace(microsecond=0) if moment else None

    cells: list[Cell] = [
        item.code,
        KIND_LABELS.get(item.kind, item.kind),
        STATUS_LABELS.get(item.status, item.status),
        catalog.point(item.point_id),
        catalog.procedure(item.procedure_id),
        *item.ratings,
        item.comment,
        item.description,
        item.dossier_code,
        item.phone if with_contact else mask_phone(item.phone),
        item.assignee,
        item.answer,
        local(item.created_at),
        local(item.deadline_at),
        local(item.closed_at),
    ]
    return [file_text(cell) if isinstance(cell, str) else cell for cell in cells]


Row = Callable[["FeedbackView"], list[Cell]]


async def write_csv(items: AsyncIterator[FeedbackView], out: TextIO, row: Row) -> int:
    """UTF-8 with a byte order mark (Excel then reads Vietnamese right), CRLF line ends,
    times as ISO 8601 local time with the offset; returns the number of items written."""
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADERS)
    written = 0
    async for item in items:
        writer.writerow(
            csv_cell(cell.isoformat() if isinstance(cell, dt.datetime) else cell)
            for cell in row(item)
        )
        written += 1
    return written


async def write_xlsx(items: AsyncIterator[FeedbackView], out: IO[bytes], row: Row) -> int:
    """One sheet, written in openpyxl's streaming mode (rows go to a temporary file, so memory
    stays flat); returns the number of items written."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Góp ý, phản ánh")
    for number, width in enumerate(XLSX_WIDTHS, 1):
        sheet.column_dimensions[get_column_letter(number)].width = width
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def cell(value: Cell, *, header: bool = False) -> WriteOnlyCell:
        if isinstance(value, str):
            made = WriteOnlyCell(sheet, value=value)
            made.data_type = "s"  # openpyxl would take "=…" for a formula
            if header:
                made.font = bold
            return made
        if isinstance(value, dt.datetime):
            made = WriteOnlyCell(sheet, value=value.replace(tzinfo=None))
            made.number_format = XLSX_DATE_FORMAT
            return made
        return WriteOnlyCell(sheet, value=value)

    sheet.append([cell(h, header=True) for h in EXPORT_HEADERS])
    written = 0
    async for item in items:
        sheet.append([cell(value) for value in row(item)])
        written += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(EXPORT_HEADERS))}{written + 1}"
    book.save(out)
    return written


def file_text(text: str) -> str:
    """Citizen text for a file: control characters other than tab and line breaks (ANSI
    escapes …) as visible escapes (``\\x1b``). XLSX cannot hold most of them, and a CSV
    written to a terminal would obey them."""
    if not any(_stray_control(c) for c in text):
        return text
    return "".join(printable(c) if _stray_control(c) else c for c in text)


def _stray_control(char: str) -> bool:
    return char not in "\t\n\r" and unicodedata.category(char) == "Cc"


@contextlib.contextmanager
def binary_file(path: Path) -> Iterator[IO[bytes]]:
    """``path`` opened for writing, removed again if the export fails half-way."""
    with path.open("wb") as file:
        try:
            yield file
        except BaseException:
            file.close()
            path.unlink(missing_ok=True)
            raise
