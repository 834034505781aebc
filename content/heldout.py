"""Held-out questions made from a pack itself, for calibrating and evaluating the FAQ engine.

A pack is split the way a province's real traffic splits it:

* *phrasing* probes: one alternative phrasing of an entry is taken out of the index and asked;
  the entry must still be found (citizens never type exactly what the team wrote);
* *title* probes: for an entry without phrasings (an imported procedure is only a title), a
  perturbed title is asked: words left out, diacritics dropped, a slip of the finger, the
  polite words of a chat around it;
* *absent* probes: some entries are taken out of the index altogether and their questions asked;
  any confident answer to them is wrong, which is how a pack meets questions on procedures it
  does not have ("sang tên xe" against a pack that only knows "sang tên sổ đỏ").

Everything is seeded, so the same pack always gives the same probes and the same calibration.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from content.models import FaqEntry
from content.normalize import fold_token, strip_marks, tokens

# Share of the entries left out of the index as absent probes.
ABSENT_SHARE = 0.2
_PREFIXES = ("", "", "cho hỏi ", "cho em hỏi ", "hỏi ", "xin hỏi ")
_SUFFIXES = ("", "", " ạ", " vậy", " với", " ad ơi")
# A title's words survive in a citizen's question with this probability each.
KEEP_WORD = 0.5
MAX_WORDS = 4
# How many words of other titles a perturbed title gains (chosen uniformly).
FOREIGN_WORDS = (0, 1, 1, 2)
_ASPECTS = ("ở đâu", "cần gì", "mất bao lâu", "hết bao nhiêu tiền", "làm online được không")
# Real questions come with the citizen's situation around them, in words the pack does not
# know; a share of the probes is asked that way so that long questions are calibrated too.
LONG_SHARE = 0.4
_SITUATIONS = (
    "nhà tôi ở xa, đi lại khó khăn, ",
    "tôi đi làm công nhân ở khu công nghiệp, ",
    "mẹ tôi năm nay đã già yếu, ",
    "em là sinh viên mới ra trường, ",
    "gia dinh toi moi chuyen ve que, ",
    "vo chong em deu di lam ca ngay, ",
    "hôm trước tôi có lên hỏi nhưng chưa rõ, ",
    "toi hoi hoi gap mong duoc tra loi som, ",
)
_AFTERTHOUGHTS = (
    " vì tuần sau tôi phải đi công tác",
    " mong cán bộ hướng dẫn cụ thể giúp",
    " cam on ban nhieu",
    " tôi cảm ơn",
    " vi em khong ranh lam",
    " để kịp cho cháu đi học",
)


class ProbeKind(StrEnum):
    PHRASING = "phrasing"
    TITLE = "title"
    ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class Probe:
    text: str
    # The entry that answers it; None when that entry is not in the index (an absent probe).
    entry_id: str | None
    kind: ProbeKind
    # The entry the probe was made from (for absent probes, the one left out).
    source_id: str
    # The source entry's "Xem thêm" entries: answering one of them is not a wrong answer.
    related: tuple[str, ...] = ()
    # Made from a hand-written entry (one with phrasings), not from a bare title.
    written: bool = False


@dataclass(frozen=True, slots=True)
class Split:
    indexed: tuple[FaqEntry, ...]
    probes: tuple[Probe, ...]


def perturb(
    title: str,
    rng: random.Random,
    vocabulary: Sequence[str] = (),
    titles: TitleWords | None = None,
    source: int = -1,
) -> str:
    """A citizen's rendering of ``title``: half of its words gone, words of other titles
    slipped in, another aspect asked, accents dropped, a slip of the finger, chat words.

    With ``titles``, the words kept must not all belong to another entry's title too: "cấp
    giấy phép" cut from "Cấp lại giấy phép … cho tổ chức" is a question about either entry, not
    a held-out question of one."""
    all_words = title.rstrip("?").split()
    words = all_words
    for _ in range(4):
        kept = [w for w in all_words if rng.random() < KEEP_WORD]
        if len(kept) > MAX_WORDS:  # citizens name a subject in a few words, not a title
            keep = sorted(rng.sample(range(len(kept)), MAX_WORDS))
            kept = [kept[i] for i in keep]
        words = kept if len(kept) >= 2 else all_words[:2]
        if titles is None or not titles.shared(words, source):
            break
    else:
        words = all_words
    words = list(words)
    # Citizens say things the title does not: words of the pack's other titles slip in.
    for _ in range(rng.choice(FOREIGN_WORDS) if vocabulary else 0):
        words.insert(rng.randrange(len(words) + 1), rng.choice(vocabulary))
    if rng.random() < 0.3:
        words += rng.choice(_ASPECTS).split()
    if rng.random() < 0.5:
        words = [strip_marks(w) for w in words]
    long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if long_words and rng.random() < 0.3:
        i = rng.choice(long_words)
        w = words[i]
        j = rng.randrange(1, len(w) - 1)
        words[i] = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
    text = " ".join(words).lower()
    return rng.choice(_PREFIXES) + text + rng.choice(_SUFFIXES)


class TitleWords:
    """Which entries' titles hold a word (folded), to tell whether words are one title's own."""

    def __init__(self, entries: Sequence[FaqEntry]) -> None:
        self._holders: dict[str, set[int]] = {}
        for i, entry in enumerate(entries):
            for word in tokens(entry.title):
                self._holders.setdefault(fold_token(word), set()).add(i)

    def shared(self, words: Sequence[str], source: int) -> bool:
        """True when another entry's title also holds every one of ``words``."""
        holders: set[int] | None = None
        for word in words:
            for token in tokens(word):
                found = self._holders.get(fold_token(token), set())
                holders = set(found) if holders is None else holders & found
        return bool(holders and holders - {source})


def situate(question: str, rng: random.Random) -> str:
    """``question`` with the citizen's situation around it, now and then."""
    if rng.random() >= LONG_SHARE:
        return question
    return rng.choice(_SITUATIONS) + question + rng.choice(_AFTERTHOUGHTS)


def _question_of(
    entries: Sequence[FaqEntry],
    i: int,
    rng: random.Random,
    vocabulary: Sequence[str],
    titles: TitleWords,
) -> str:
    entry = entries[i]
    if entry.phrasings:
        return situate(rng.choice(entry.phrasings), rng)
    return situate(perturb(entry.title, rng, vocabulary, titles, i), rng)


def split(
    entries: Sequence[FaqEntry],
    *,
    seed: int = 0,
    limit: int = 800,
    absent_share: float | None = None,
) -> Split:
    """Entries to index and probes to ask them (at most ``limit`` probes)."""
    share = ABSENT_SHARE if absent_share is None else absent_share
    rng = random.Random(seed)  # noqa: S311 - reproducible probes, not secrets
    order = list(range(len(entries)))
    rng.shuffle(order)
    # Hand-written entries first: they are few and what citizens ask most; titles fill the rest.
    order.sort(key=lambda i: not entries[i].phrasings)
    # Probes are drawn from a sample of the entries when the pack is large; the index keeps
    # every entry (less the absent ones), so the probes compete with the whole pack.
    asked = order[:limit]
    n_absent = round(len(asked) * share) if len(entries) >= 10 else 0
    absent = set(rng.sample(asked, n_absent))
    asked_set = set(asked)
    vocabulary = sorted(
        {w for i in asked for w in entries[i].title.rstrip("?").split() if len(w) > 1}
    )
    titles = TitleWords(entries)
    indexed: list[FaqEntry] = []
    probes: list[Probe] = []
    for i, entry in enumerate(entries):
        if i in absent:
            if i in asked_set:
                probes.append(
                    Probe(
                        _question_of(entries, i, rng, vocabulary, titles),
                        None,
                        ProbeKind.ABSENT,
                        entry.id,
                        entry.related,
                        bool(entry.phrasings),
                    )
                )
            continue
        if i not in asked_set:
            indexed.append(entry)
        elif entry.phrasings:
            k = rng.randrange(len(entry.phrasings))
            held = entry.phrasings[k]
            rest = entry.phrasings[:k] + entry.phrasings[k + 1 :]
            indexed.append(replace(entry, phrasings=rest))
            probes.append(
                Probe(
                    situate(held, rng), entry.id, ProbeKind.PHRASING, entry.id, entry.related, True
                )
            )
        else:
            indexed.append(entry)
            probes.append(
                Probe(
                    situate(perturb(entry.title, rng, vocabulary, titles, i), rng),
                    entry.id,
                    ProbeKind.TITLE,
                    entry.id,
                    entry.related,
                )
            )
    return Split(tuple(indexed), tuple(probes))
