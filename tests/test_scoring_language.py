"""Language identification on real MGSM text and on math-only responses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parallel_scaling.scoring.language import (
    MIN_LETTERS,
    UNDETERMINED,
    count_letters,
    identify,
    is_off_target,
    strip_math,
    supported_languages,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MGSM_LANGS = ("en", "de", "fr", "es", "ru", "zh", "ja", "th", "sw", "bn", "te")

# Real sentences (MGSM problem 0, Janet's ducks) so the test does not depend on the data mount.
SENTENCES = {
    "en": "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four.",
    "de": "Janets Enten legen 16 Eier pro Tag. Sie isst jeden Morgen drei zum Frühstück und backt täglich Muffins für ihre Freunde mit vier.",
    "fr": "Les canes de Janet pondent 16 œufs par jour. Chaque matin, elle en mange trois au petit déjeuner et en utilise quatre autres pour préparer des muffins pour ses amis.",
    "es": "Los patos de Janet ponen 16 huevos por día. Ella come tres en el desayuno todas las mañanas y usa cuatro para hornear magdalenas para sus amigos todos los días.",
    "ru": "Утки Джанет несут 16 яиц в день. Каждое утро Джанет съедает три яйца на завтрак и использует четыре яйца для выпечки кексов для своих друзей.",
    "zh": "珍妮特的鸭子每天下 16 颗蛋。她每天早上早餐时吃 3 颗，每天用 4 颗为自己的朋友做松饼。",
    "ja": "ジャネットのアヒルは1日に16個の卵を生みます。ジャネットは毎朝朝食に3個を消費し、毎日4個を使って友達向けにマフィンを焼きます。",
    "th": "เป็ดของเจเน็ตออกไข่วันละ 16 ฟอง ในแต่ละเช้าเธอจะกินไข่ 3 ฟอง และใช้อีก 4 ฟองไปอบมัฟฟินให้เพื่อน ๆ ทุกวัน",
    "sw": "Bata wa Janet hutaga mayai 16 kwa siku. Yeye hula matatu kwa kiamsha kinywa kila asubuhi na huoka mikate kwa marafiki zake kila siku kwa manne.",
    "bn": "জ্যানেটের হাঁসগুলি প্রতিদিন 16টি করে ডিম পাড়ে। তিনি প্রতিদিন প্রাতরাশে তিনটি করে খান এবং বন্ধুদের জন্য প্রতিদিন চারটি দিয়ে মাফিন তৈরি করেন।",
    "te": "జానెట్ బాతులు రోజుకు 16 గుడ్లు పెడతాయి. ఆమె ప్రతి రోజూ ఉదయం అల్పాహారంగా మూడింటిని తింటుంది మరియు ప్రతి రోజూ నలుగురు స్నేహితుల కోసం మఫిన్‌లను కాల్చుతుంది.",
}


@pytest.mark.parametrize("lang", MGSM_LANGS)
def test_identifies_real_sentences(lang: str) -> None:
    label, prob = identify(SENTENCES[lang])
    assert label == lang
    assert 0.5 < prob <= 1.0


@pytest.mark.parametrize("lang", MGSM_LANGS)
def test_identifies_with_candidates(lang: str) -> None:
    label, prob = identify(SENTENCES[lang], candidates=MGSM_LANGS)
    assert label == lang
    assert prob > 0.9


def test_candidates_restrict_the_answer() -> None:
    # German text forced to choose between English and French cannot come back as German.
    label, prob = identify(SENTENCES["de"], candidates=["en", "fr"])
    assert label in {"en", "fr"}
    assert 0.0 < prob <= 1.0


def test_unknown_candidate_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="xx"):
        identify(SENTENCES["en"], candidates=["en", "xx"])


@pytest.mark.parametrize(
    "text",
    ["", "   ", "3 + 5 = 8 #### 8", "$\\frac{1}{2} + \\sqrt{2}$", "x = y + 2", "\\boxed{42}", "18."],
)
def test_math_only_text_is_undetermined(text: str) -> None:
    assert identify(text) == (UNDETERMINED, 0.0)
    assert identify(text, candidates=MGSM_LANGS) == (UNDETERMINED, 0.0)


def test_threshold_is_on_letters_after_stripping_math() -> None:
    assert count_letters(strip_math("5 + 6 = 11, so \\frac{a}{b}")) == 2  # "so"; a, b are variables
    assert count_letters(strip_math("答案是11")) == 3 >= MIN_LETTERS
    assert identify("答案是 11。")[0] == "zh"


def test_math_does_not_change_the_label() -> None:
    text = "Ella vende 16 - 3 - 4 = 9 huevos por $2 cada uno, así que gana $\\frac{18}{1}$ dólares al día."
    assert identify(text)[0] == "es"
    assert "frac" not in strip_math(text) and "16" not in strip_math(text)


def test_currency_dollars_are_not_math() -> None:
    text = "She earns $2 per egg and makes $18 a day"
    assert strip_math(text) == "She earns per egg and makes a day"
    assert identify(text)[0] == "en"


def test_chinese_variants_fold_to_zh() -> None:
    assert "wuu" in supported_languages()  # the fold is needed: langid has a Wu label
    for text in (SENTENCES["zh"], "所以她每天在农贸市场赚 9 * 2 = 18 美元。答案是 18。"):
        assert identify(text)[0] == "zh"


def test_is_off_target() -> None:
    assert is_off_target("en", "sw")
    assert not is_off_target("sw", "sw")
    assert not is_off_target(UNDETERMINED, "sw")
    assert not is_off_target("wuu", "zh")


def test_mgsm_questions_identified_with_candidates() -> None:
    path = DATA / "mgsm" / "mgsm_test.jsonl"
    if not path.is_file():
        pytest.skip(f"shared MGSM data not available at {path}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    sample = [r for r in rows if r["index"] % 25 == 0]  # 10 problems x 11 languages
    assert len(sample) == 110
    wrong = [(r["id"], identify(r["question"], MGSM_LANGS)) for r in sample]
    wrong = [(i, lab) for (i, lab), r in zip(wrong, sample) if lab[0] != r["lang"]]
    assert wrong == []
