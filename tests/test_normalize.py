"""Vietnamese normalisation: properties over generated text, and the cases citizens type."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from content import telex
from content.analysis import Analyzer
from content.loader import load_pack
from content.normalize import canon, fold, has_marks, tokens

VIETNAMESE_LETTERS = (
    "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
)
words = st.text(alphabet=VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper(), min_size=1, max_size=8)
phrases = st.lists(words, min_size=1, max_size=6).map(" ".join)
noise = st.sampled_from(["", "?", "!", "...", ",", " 😀", " 🙏🙏", "  ", "\t", " :) "])


@given(phrases)
def test_nfc_and_nfd_input_give_the_same_keys(text: str) -> None:
    nfd = unicodedata.normalize("NFD", text)
    assert canon(nfd) == canon(text)
    assert fold(nfd) == fold(text)


@given(phrases)
def test_case_does_not_matter(text: str) -> None:
    assert canon(text.upper()) == canon(text.lower()) == canon(text)


@given(phrases, noise, noise)
def test_punctuation_and_emoji_are_ignored(text: str, before: str, after: str) -> None:
    assert canon(f"{before}{text}{after}") == canon(text)


@given(phrases)
def test_folded_key_has_no_diacritics_and_no_d_stroke(text: str) -> None:
    folded = fold(text)
    assert not has_marks(folded)
    assert "đ" not in folded
    assert folded == fold(folded)


@given(phrases)
def test_canon_is_idempotent_and_nfc(text: str) -> None:
    once = canon(text)
    assert canon(once) == once
    assert unicodedata.is_normalized("NFC", once)


@settings(max_examples=200)
@given(st.text(max_size=40))
def test_any_text_is_handled(text: str) -> None:
    assert isinstance(canon(text), str)
    assert isinstance(fold(text), str)


@pytest.mark.parametrize(
    ("old_style", "new_style"),
    [
        ("hoà", "hòa"),
        ("thuý", "thúy"),
        ("uỷ ban", "ủy ban"),
        ("khoẻ", "khỏe"),
        ("hoá", "hóa"),
        ("tuỳ", "tùy"),
        ("baỏ hiểm", "bảo hiểm"),
    ],
)
def test_tone_placement_is_unified(old_style: str, new_style: str) -> None:
    assert canon(old_style) == canon(new_style) == new_style


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đăng ký thường trú ở đâu?", "dang ky thuong tru o dau"),
        ("ĐĂNG KÝ KẾT HÔN", "dang ky ket hon"),
        ("Ðăng ký", "dang ky"),  # Icelandic eth typed for Đ
        ("Căn cước 😀😀 !!!", "can cuoc"),
    ],
)
def test_fold_examples(text: str, expected: str) -> None:
    assert fold(text) == expected


def test_codes_stay_one_token() -> None:
    assert tokens("Thủ tục 1.001612 theo Luật 26/2023/QH15") == [
        "thủ",
        "tục",
        "1.001612",
        "theo",
        "luật",
        "26/2023/qh15",
    ]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("dduowcj", "được"),
        ("laam", "lâm"),
        ("cuwowcs", "cước"),
        ("thur", "thủ"),
        ("tucj", "tục"),
        ("ddangw", "đăng"),
        ("kys", "ký"),
        ("hoaf", "hòa"),
        ("khoong", "không"),
        ("owr", "ở"),
        ("d9u7o75c", "được"),
        ("ca8n", "căn"),
    ],
)
def test_telex_and_vni_are_decoded(typed: str, meant: str) -> None:
    assert telex.decode(typed) == meant


@pytest.mark.parametrize("token", ["cccd", "gplx", "vneid", "ct01", "google", "2024", "a"])
def test_non_telex_tokens_are_left_alone(token: str) -> None:
    assert telex.decode(token) is None


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    from content.search import FaqIndex

    kb = load_pack()
    return FaqIndex(kb.entries, kb.lexicon).analyzer


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ko biet dk ntn", "khong biet dang ky nhu the nao"),
        ("lam j", "lam gi"),
        ("đc ko ad", "duoc khong admin"),
        ("sdt tong dai", "so dien thoai tong dai"),
        ("cccd", "can cuoc cong dan"),
        ("gplx", "giay phep lai xe"),
        ("lltp", "ly lich tu phap"),
        ("tthc dvc", "thu tuc hanh chinh dich vu cong"),
        ("dduowcj khoong", "duoc khong"),
        ("ddawng kys khai sinh", "dang ky khai sinh"),
    ],
)
def test_abbreviations_teencode_and_telex_are_expanded(
    analyzer: Analyzer, typed: str, expected: str
) -> None:
    assert analyzer.analyze(typed).folded == expected


def test_bus_is_not_turned_into_a_vietnamese_word(analyzer: Analyzer) -> None:
    # Tone keys alone do not prove Telex: "bus" must not become "bú".
    assert analyzer.analyze("bus").folded == "bus"


@pytest.mark.parametrize(
    ("typed", "group_member"),
    [
        ("sổ đỏ", "giấy chứng nhận quyền sử dụng đất"),
        ("bang lai", "giấy phép lái xe"),
        ("hộ khẩu", "đăng ký thường trú"),
        ("so hong", "sổ đỏ"),
    ],
)
def test_synonyms_are_recognised(analyzer: Analyzer, typed: str, group_member: str) -> None:
    typed_groups = {c.group for c in analyzer.analyze(typed).concepts}
    member_groups = {c.group for c in analyzer.analyze(group_member).concepts}
    assert typed_groups
    assert typed_groups & member_groups


_TELEX_LETTERS = {"â": "aa", "ă": "aw", "ê": "ee", "ô": "oo", "ơ": "ow", "ư": "uw", "đ": "dd"}
_TELEX_TONES = {"\u0301": "s", "\u0300": "f", "\u0309": "r", "\u0303": "x", "\u0323": "j"}


def to_telex(word: str) -> str:
    """Type a syllable as Telex with the input method off: letters, then the tone key."""
    from content.normalize import split_tone

    base, tone = split_tone(word)
    # A plain double o ("moóc", "xoong") is typed "ooo": "oo" alone would make ô.
    typed = "".join(_TELEX_LETTERS.get(ch, ch) for ch in base.replace("oo", "\0"))
    typed = typed.replace("\0", "ooo")
    return typed + (_TELEX_TONES[tone] if tone else "")


def test_every_word_of_the_knowledge_base_survives_telex_typing() -> None:
    kb = load_pack()
    words = {
        w
        for e in kb.entries
        for w in tokens(f"{e.title} {e.answer}")
        if w.isalpha()
        and has_marks(w)
        and telex.is_syllable(
            unicodedata.normalize(
                "NFC",
                "".join(
                    c
                    for c in unicodedata.normalize("NFD", w)
                    if c not in "\u0300\u0301\u0303\u0309\u0323"
                ),
            )
        )
    }
    assert len(words) > 300
    failures = {w: telex.decode(to_telex(w)) for w in words if telex.decode(to_telex(w)) != w}
    assert failures == {}


@given(
    st.sampled_from(["h", "th", "kh", "l", "t", "x", "ch"]),
    st.sampled_from(["oa", "oe", "uy"]),
    st.sampled_from(["\u0300", "\u0301", "\u0309", "\u0303", "\u0323"]),
)
def test_both_tone_placements_of_open_oa_oe_uy_are_one_word(
    onset: str, nucleus: str, tone: str
) -> None:
    old = unicodedata.normalize("NFC", onset + nucleus[0] + tone + nucleus[1])
    new = unicodedata.normalize("NFC", onset + nucleus + tone)
    assert canon(old) == canon(new)
    assert fold(old) == fold(new) == onset + nucleus
