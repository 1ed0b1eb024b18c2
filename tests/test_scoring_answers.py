"""Answer extraction and verification on realistic multilingual responses."""

from __future__ import annotations

import json
import threading
from fractions import Fraction
from pathlib import Path

import pytest

from parallel_scaling.scoring.answer_phrases import ANSWER_PHRASES
from parallel_scaling.scoring.answers import Extraction, compound_parts, extract_answer
from parallel_scaling.scoring.grading import score_response, verify
from parallel_scaling.scoring.numbers import parse_number

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Worked solutions to MGSM problem 0 (Janet's ducks, gold 18) in the style of the MGSM exemplars,
# each in a different answer format a model might produce.
RESPONSES = {
    "en": (
        "Janet's ducks lay 16 eggs a day. She eats 3 and uses 4 for muffins, so 16 - 3 - 4 = 9 eggs "
        "are left. She sells them for $2 each, so she makes 9 * 2 = $18 every day. The answer is 18."
    ),
    "de": (
        "Janets Enten legen 16 Eier am Tag. Sie isst 3 und backt mit 4, also bleiben 16 - 3 - 4 = 9 Eier. "
        "Sie verkauft jedes für 2 $, also verdient sie 9 * 2 = 18 $ pro Tag. Die Antwort lautet 18 $."
    ),
    "fr": (
        "Les canes pondent 16 œufs par jour. Elle en mange 3 et en utilise 4, il reste donc 16 - 3 - 4 = 9 œufs. "
        "À 2 $ l'œuf, elle gagne 9 × 2 = 18 $ par jour.\n\nLa réponse est $\\boxed{18}$."
    ),
    "es": (
        "Los patos ponen 16 huevos al día. Come 3 y usa 4, así que quedan 16 - 3 - 4 = 9 huevos. "
        "Los vende a 2 dólares cada uno: 9 × 2 = 18.\n#### 18"
    ),
    "ru": (
        "Утки несут 16 яиц в день. Джанет съедает 3 и использует 4, остаётся 16 − 3 − 4 = 9 яиц. "
        "Она продаёт каждое по 2 доллара, значит, зарабатывает 9 · 2 = 18 долларов. Ответ — 18."
    ),
    "zh": "珍妮特的鸭子每天下16颗蛋。她吃掉3颗，用掉4颗，剩下16-3-4=9颗。每颗卖2美元，所以她每天赚18美元。",
    "ja": (
        "アヒルは1日に16個の卵を生みます。3個を食べ、4個をマフィンに使うので、残りは16-3-4=9個です。"
        "1個2ドルで売るので、9×2=18ドルです。答えは１８ドルです。"
    ),
    "th": (
        "เป็ดออกไข่วันละ 16 ฟอง เจเน็ตกิน 3 ฟองและใช้อบมัฟฟิน 4 ฟอง จึงเหลือ 16 - 3 - 4 = 9 ฟอง "
        "ขายฟองละ 2 ดอลลาร์ ได้เงิน 9 x 2 = 18 ดอลลาร์ คำตอบคือ 18"
    ),
    "sw": (
        "Bata hutaga mayai 16 kwa siku. Anakula 3 na kutumia 4, hivyo yanabaki 16 - 3 - 4 = 9. "
        "Anauza kila yai kwa $2, kwa hiyo anapata 9 * 2 = $18. Jibu ni 18."
    ),
    "bn": (
        "হাঁসগুলি প্রতিদিন 16টি ডিম পাড়ে। তিনি 3টি খান এবং 4টি মাফিনে ব্যবহার করেন, তাই 16 - 3 - 4 = 9টি থাকে। "
        "প্রতিটি 2 ডলারে বিক্রি করলে 9 * 2 = 18 ডলার হয়। উত্তর হল ১৮।"
    ),
    "te": (
        "బాతులు రోజుకు 16 గుడ్లు పెడతాయి. ఆమె 3 తింటుంది, 4 మఫిన్‌లకు వాడుతుంది, కాబట్టి 16 - 3 - 4 = 9 మిగులుతాయి. "
        "ఒక్కొక్కటి 2 డాలర్లకు అమ్మితే 9 * 2 = 18 డాలర్లు. సమాధానం 18."
    ),
}
EXPECTED_METHOD = {"fr": "boxed", "es": "hash", "zh": "last_number"}


@pytest.mark.parametrize("lang", sorted(RESPONSES))
def test_multilingual_worked_solutions(lang: str) -> None:
    extraction = extract_answer(RESPONSES[lang])
    assert extraction.value is not None and parse_number(extraction.value) == 18
    assert extraction.method == EXPECTED_METHOD.get(lang, "phrase")
    result = score_response(RESPONSES[lang], "18", lang)
    assert result["correct"] is True and result["reason"] is None
    assert result["response_lang"] == lang and result["off_target"] is False


def test_off_target_response_still_scored() -> None:
    result = score_response(RESPONSES["en"], "18", "sw")
    assert result["correct"] is True
    assert result["response_lang"] == "en" and result["off_target"] is True


@pytest.mark.parametrize(
    ("response", "value"),
    [
        ("答案是42", "42"),
        ("所以她每天赚18美元", "18"),
        ("答えは４２です", "42"),
        ("คำตอบคือ 1,234 บาท", "1234"),
        ("The answer is 1,000,000.", "1000000"),
        ("Die Antwort ist 1 234.", "1234"),
        ("La réponse est 3,5 litres.", "3.5"),
        ("x = -5, so the answer is -5.", "-5"),
        ("答案：-3", "-3"),
        ("La temperatura baja a −7 grados.", "-7"),
        ("10 - 3 = 7", "7"),
        ("She ate 3/4 of the pie.", "3/4"),
        ("It costs $18.", "18"),
        ("The answer is $18, and she spent $5 on seeds.", "18"),
        ("The answer is 2.", "2"),
        ("The answer is: **18**", "18"),
        ("উত্তর হল ১১।", "11"),
        ("The numbers are 1,2,3", "3"),
        ("Step-by-Step Answer: Roger started with 5 balls. 5 + 6 = 11.", "11"),
        ("Ответ: 2 125 рублей", "2125"),
        ("She used ½ cup of sugar", "1/2"),
        ("คำตอบคือ ๑๘ บาท", "18"),
    ],
)
def test_number_formats(response: str, value: str) -> None:
    assert extract_answer(response).value == value


@pytest.mark.parametrize(
    ("response", "value"),
    [
        ("so the total is \\boxed{\\frac{1}{2}}", "1/2"),
        ("\\boxed{x = 5}", "5"),
        ("\\boxed{1{,}234}", "1234"),
        ("\\boxed{18\\text{ dollars}}", "18"),
        ("\\boxed{\\$18}", "18"),
        ("First \\boxed{3}, corrected: \\boxed{4}", "4"),
    ],
)
def test_boxed_numbers(response: str, value: str) -> None:
    extraction = extract_answer(response)
    assert extraction == Extraction(value, "boxed", None)


def test_nested_braces_in_boxed() -> None:
    text = "Hence $$\\boxed{\\frac{\\sqrt{2}}{2}}$$"
    assert extract_answer(text, "latex") == Extraction("\\frac{\\sqrt{2}}{2}", "boxed", None)
    assert extract_answer("\\boxed{\\frac{1}{2", "latex").method != "boxed"  # unclosed: not trusted


def test_boxed_beats_phrase_and_hash_beats_phrase() -> None:
    assert extract_answer("The answer is 5. Actually \\boxed{6}").value == "6"
    assert extract_answer("The answer is 5.\n#### 6").value == "6"


def test_last_phrase_occurrence_wins() -> None:
    assert extract_answer("The answer is 5? No: 7 + 1 = 8. The answer is 8.").value == "8"


@pytest.mark.parametrize(
    ("response", "value"),
    [
        ("We get $x = \\frac{1}{2}$. The answer is $\\frac{1}{2}$.", "1/2"),
        ("The answer is \\sqrt{2}.", "\\sqrt{2}"),
        ("Simplifying, the side is $2\\sqrt{3}$", "2\\sqrt{3}"),
        ("\\boxed{\\pi r^2}", "\\pi r^2"),
    ],
)
def test_latex_extraction(response: str, value: str) -> None:
    assert extract_answer(response, "latex").value == value


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("The options compare as follows... The answer is (B).", "B"),
        ("B) 42", "B"),
        ("Answer: C", "C"),
        ("综合以上分析，答案是 C", "C"),
        ("Option (A) is wrong because of x; I pick (D) since it holds.", "D"),
        ("\\boxed{B}", "B"),
        ("La respuesta es (E) 7 manzanas.", "E"),
        ("Final choice:\n**C**", "C"),
    ],
)
def test_choice_extraction(response: str, letter: str) -> None:
    assert extract_answer(response, "choice").value == letter


def test_nothing_found() -> None:
    assert extract_answer("") == Extraction(None, "none", "empty response")
    assert extract_answer("   \n") == Extraction(None, "none", "empty response")
    assert extract_answer("I do not know how to solve this.") == Extraction(None, "none", "no answer found")
    assert extract_answer("The answer is clearly right.", "choice").value is None


def test_unknown_answer_type() -> None:
    with pytest.raises(ValueError, match="answer_type"):
        extract_answer("42", "integer")


@pytest.mark.parametrize(
    ("extracted", "gold", "answer_type"),
    [
        ("18", "18", "number"),
        ("18.0", "18", "number"),
        ("18.00", "18", "number"),
        ("18", "18.0", "number"),
        ("1234", "1,234", "number"),
        ("1/2", "0.5", "number"),
        ("$18", "18", "number"),
        ("\\frac{1}{2}", "0.5", "latex"),
        ("0.5", "\\frac{1}{2}", "latex"),
        ("\\sqrt{2}", "2^{1/2}", "latex"),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "latex"),
        ("b", "B", "choice"),
        ("(B)", "B", "choice"),
    ],
)
def test_verify_equivalent(extracted: str, gold: str, answer_type: str) -> None:
    assert verify(extracted, gold, answer_type) == (True, None)


@pytest.mark.parametrize(
    ("extracted", "gold", "answer_type"),
    [("17", "18", "number"), ("18.5", "18", "number"), ("\\sqrt{3}", "\\sqrt{2}", "latex"), ("C", "B", "choice")],
)
def test_verify_wrong_answers(extracted: str, gold: str, answer_type: str) -> None:
    assert verify(extracted, gold, answer_type) == (False, None)


def test_verify_unparseable_is_incorrect_with_reason() -> None:
    correct, reason = verify("((garbage", "5", "number")
    assert correct is False and "could not parse" in reason
    assert verify(None, "5", "number") == (False, "no answer extracted")
    correct, reason = verify("42", "B", "choice")
    assert correct is False and "not a choice letter" in reason


def test_verify_works_outside_main_thread() -> None:
    # math-verify's default SIGALRM timeout raises in worker threads; ours must not.
    results: list[tuple[bool, str | None]] = []
    worker = threading.Thread(target=lambda: results.append(verify("\\frac{1}{2}", "0.5", "latex")))
    worker.start()
    worker.join()
    assert results == [(True, None)]


def test_parse_number() -> None:
    assert parse_number("1,234") == 1234
    assert parse_number("-3/4") == Fraction(-3, 4)
    assert parse_number("18.") == 18
    assert parse_number("４２") == 42
    assert parse_number("\\sqrt{2}") is None
    assert parse_number("1 2") is None


def test_score_response_reasons() -> None:
    empty = score_response("", "18", "en")
    assert empty == {
        "extracted": None,
        "method": "none",
        "correct": False,
        "reason": "empty response",
        "response_lang": "und",
        "off_target": False,
        # a chat model's response has no thinking part (issue #29 added these fields)
        "thinking_lang": None,
        "thinking_off_target": None,
        "final_part": "absent",
    }
    math_only = score_response("16 - 3 - 4 = 9, 9 * 2 = 18", "18", "th")
    assert math_only["correct"] is True and math_only["response_lang"] == "und"


def test_phrase_table_covers_mgsm_languages() -> None:
    assert {"en", "de", "fr", "es", "ru", "zh", "ja", "th", "sw", "bn", "te"} <= {lang for lang, _ in ANSWER_PHRASES}


def test_all_mgsm_exemplars_extract_their_answer() -> None:
    path = DATA / "mgsm" / "mgsm_exemplars.jsonl"
    if not path.is_file():
        pytest.skip(f"shared MGSM data not available at {path}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 88
    for row in rows:
        extraction = extract_answer(row["answer"])
        assert extraction.method == "phrase", row["id"]
        assert parse_number(extraction.value) == row["answer_number"], row["id"]


# --------------------------------------------------------------------------- answers as chat models write them


@pytest.mark.parametrize(
    ("response", "value"),
    [
        ("She pays rent and food.\nAnswer: €2,400 - €1,150 = €1,250", "1250"),
        ("The answer is 4 × 12 = 48 eggs.", "48"),
        ("Answer: 7y + 3 = 7(5) + 3 = 35 + 3 = 38", "38"),
        ("Final answer: Total = 15 + 27 = 42", "42"),
        ("Answer: (6 + 2) × 3 = 24 km", "24"),
        ("答案：300元-120元=180元", "180"),
        ("Ответ: 5 · 8 = 40 рублей", "40"),
        ("Die Antwort ist 90 - 25 = 65 Minuten.", "65"),
        ("Steps above.\n#### 64 / 4 = 16", "16"),
    ],
)
def test_answer_line_written_as_a_calculation_gives_its_last_value(response: str, value: str) -> None:
    extraction = extract_answer(response)
    assert extraction.value == value and extraction.method in ("phrase", "hash")


@pytest.mark.parametrize(
    ("response", "value"),
    [
        ("The answer is 12 (because 3 × 4 = 12).", "12"),  # value first, explained after
        ("The answer is 20%, as 1/5 = 0.2", "20"),
        ("The answer is 9, check: 9 + 1 = 10 people with the driver", "9"),
        ("Answer: 35. Then 35 + 5 = 40 would be next week's.", "35"),  # the chain is another sentence
        ("La respuesta es 14 manzanas (7 × 2 = 14).", "14"),
        ("The answer is 3 hours = 180 minutes.", "3"),  # a restatement in other units, no calculation
    ],
)
def test_a_stated_value_is_not_replaced_by_its_explanation(response: str, value: str) -> None:
    assert extract_answer(response).value == value


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("Each box has 4 + 5 = 9 pens.\nAnswer: It cannot be determined from the given information.", "cannot be determined"),
        ("We know 12 boxes cost 36 dollars.\nFinal answer: insufficient information to compute the total.", "cannot be determined"),
        ("3 + 4 = 7. The answer is: not possible to tell how many 7 students stayed.", "cannot be determined"),
        ("Réponse : impossible de déterminer le prix exact de 3 croissants.", "cannot be determined"),
        ("Es gibt 8 Äpfel. Antwort: Das lässt sich nicht bestimmen, es fehlen Angaben.", "cannot be determined"),
        ("共有8个苹果。答案：无法确定，因为缺少价格。", "cannot be determined"),
        ("Kuna magari 6. Jibu: haiwezekani kujua idadi ya abiria.", "cannot be determined"),
        ("The bus takes 14 or 16 minutes.\nThe answer is either 14 (if it waits) or 16 (if it does not).", "hedges"),
        ("Antwort: 8 oder 9, je nachdem ob Tom mitkommt.", "hedges"),
        ("Ответ: 30 или 32 рубля.", "hedges"),
        ("คำตอบคือ 12 หรือ 15 ขึ้นอยู่กับจำนวนคน", "hedges"),
        ("答案是5个或者6个，取决于是否包括她自己。", "hedges"),
    ],
)
def test_answer_line_without_a_committed_answer_gives_none(response: str, reason: str) -> None:
    extraction = extract_answer(response)
    assert extraction.value is None and extraction.method == "none"
    assert reason in extraction.reason


@pytest.mark.parametrize(
    ("response", "value"),
    [
        ("The answer is 5 (or 5.0 as a decimal).", "5"),  # one value written twice is committed
        ("Answer: 18, although the tax cannot be determined exactly.", "18"),  # the value comes first
        ("Whether it cannot be determined? No: 6 × 4 = 24. The answer is 24.", "24"),  # the last answer line decides
        ("The answer is:\n\n**24**", "24"),  # an empty answer line withdraws nothing
        ("Jibu ni 7.", "7"),
    ],
)
def test_committed_answers_near_refusal_or_or_words_still_count(response: str, value: str) -> None:
    assert extract_answer(response).value == value


def test_hedges_are_only_refused_for_numeric_answers() -> None:
    # "x = 1 or x = 2" is a legitimate LaTeX answer (the roots of an equation)
    assert extract_answer("The answer is $x = 1$ or $x = 2$", "latex").value is not None
    assert extract_answer("Answer: cannot be determined", "choice") == Extraction(
        None, "none", "answer line says the answer cannot be determined"
    )


def test_scoring_and_rewards_agree_on_calculations_and_hedges() -> None:
    from parallel_scaling.train.rewards import correctness

    calc = "The shop had 80 and sold 35.\nAnswer: 80 - 35 = 45"
    hedge = "Answer: 45 (if none returned) or 47 (if two came back)"
    for response, correct in ((calc, True), (hedge, False)):
        result = score_response(response, "45", "en")
        assert result["correct"] is correct
        assert correctness(response, "45") == float(correct)
    assert score_response(hedge, "45", "en")["reason"] == "answer line hedges between several values"


# --------------------------------------------------------------------------- compound LaTeX answers

COMPOUND_GOLD = "$k=-\\frac{1}{2}, P(0, \\pm\\sqrt{3})$"


@pytest.mark.parametrize(
    ("response", "correct"),
    [
        ("Therefore \\boxed{k = -\\dfrac{1}{2},\\; P(0,\\pm\\sqrt{3})}", True),
        ("So \\boxed{P\\left(0, \\pm \\sqrt 3\\right), \\quad k = -0.5}", True),  # other order, other spelling
        ("The answer is $k=-\\frac12$, $P(0,\\pm\\sqrt{3})$.", True),  # two math spans on the answer line
        ("\\boxed{k=-\\frac{1}{2} \\text{ and } P(0, \\mp\\sqrt{3})}", True),  # the same two points
        ("\\boxed{-\\frac{1}{2}, P(0, \\pm\\sqrt{3})}", True),  # unnamed part, by position
        ("\\boxed{k=\\frac{1}{2}, P(0, \\pm\\sqrt{3})}", False),  # wrong sign of k
        ("\\boxed{k=-\\frac{1}{2}, P(0, \\sqrt{3})}", False),  # one of the two points
        ("\\boxed{k=-\\frac{1}{2}, P(\\pm\\sqrt{3}, 0)}", False),  # the other axis
        ("\\boxed{k=-\\frac{1}{2}}", False),  # half of the answer
        ("\\boxed{m=-\\frac{1}{2}, P(0, \\pm\\sqrt{3})}", False),  # another quantity
        ("\\boxed{k=-\\frac{1}{2}, P(0, \\pm\\sqrt{3}), Q(1, 1)}", False),  # more than asked
    ],
)
def test_compound_latex_answers_are_verified_part_by_part(response: str, correct: bool) -> None:
    result = score_response(response, COMPOUND_GOLD, "en", "latex")
    assert result["correct"] is correct, result
    assert result["reason"] is None


def test_compound_parts_keep_brackets_together() -> None:
    assert compound_parts("$x=2, A(1, -1)$") == ["x=2", "A(1,-1)"]
    assert compound_parts("[-\\frac{1}{4}, 0) \\cup (0, 2)") == ["[-\\frac{1}{4},0)\\cup(0,2)"]
    assert compound_parts("a = 1;\\ b = 2") == ["a=1", "b=2"]
    # an unnamed list is not compound: math-verify keeps comparing it as a set or tuple
    assert verify("3, 1, 2", "1, 2, 3", "latex") == (True, None)
    assert verify("x = 2, y = -1", "$x=2, y=-1$", "latex") == (True, None)
    assert verify("x = -1, y = 2", "$x=2, y=-1$", "latex") == (False, None)


# --------------------------------------------------------------------------- how a response ended (issue #36)

from parallel_scaling.scoring.thinking import classify, looks_cut, prompt_opens_thinking  # noqa: E402

R1_PROMPT = "<|User|>What is 8 + 9?<|Assistant|><think>\n"


@pytest.mark.parametrize(
    ("response", "prompt", "finish", "state", "value"),
    [
        # R1 template opens the thinking: a cut thinking's tentative box is no answer
        ("So x + y = 17, \\boxed{17}. Wait, let me check the other vertex, which gives", R1_PROMPT, None, "unclosed", None),
        ("So x + y = 17, \\boxed{17}. Wait, let me check the other vertex, which gives", R1_PROMPT, "length", "unclosed", None),
        ("Adding gives 17.\n</think>\n\nThe sum is $\\boxed{17}$.", R1_PROMPT, "eos", "present", "17"),
        # the same text without a prompt is a chat answer, as before
        ("So x + y = 17, \\boxed{17}. Wait, let me check", None, None, "absent", "17"),
        # a final part with no answer: only "**", or a restart sentence
        ("8 + 9 = 17.\n</think>\n\n**", None, "stop_string", "unanswered", None),
        ("8 + 9 = 17.\n</think>\n\nLet us solve this step by step.", None, None, "unanswered", None),
        # a final part cut by the limit before its answer; one with its boxed answer written stays
        ("8 + 9 = 17.\n</think>\n\nFirst we add: 8 + 9 =", None, None, "unanswered", None),
        ("8 + 9 = 17.\n</think>\n\nFirst we add 8 and 9 and get 17", None, "length", "unanswered", None),
        ("8 + 9 = 17.\n</think>\n\nAdding them, she has **17** apples in all", None, None, "present", "17"),
        ("8 + 9 = 17.\n</think>\n\nThe sum is \\boxed{17}. To check, 17 - 9", None, "length", "present", "17"),
        # a lost closing marker: ended by itself with an answer, or cut
        ("<think>\nWe add 8 and 9.\n\n### Final Answer\n$$\\boxed{17}$$\n\nSo the sum is **17**.", None, None, "unmarked", "17"),
        ("<think>\nWe add 8 and 9.\n\n### Final Answer\n$$\\boxed{17}$$\n\nSo the sum is **17**.", None, "eos", "unmarked", "17"),
        ("<think>\nWe add 8 and 9.\n\n### Final Answer\n$$\\boxed{17}$$\n\nSo the sum is **17**.", None, "length", "unclosed", None),
        ("<think>\nWe add 8 and 9 and check it: 8 + 9 = 17, and then", None, None, "unclosed", None),
    ],
)
def test_finish_reason_prompt_and_text_tell_cut_from_finished(response, prompt, finish, state, value) -> None:
    ext = extract_answer(response, "number", "en", prompt=prompt, finish_reason=finish)
    assert (ext.final_part, ext.value) == (state, value)


@pytest.mark.parametrize(("final", "answer_type", "value"), [("**B**", "choice", "B"), ("$\\pi$", "latex", "\\pi")])
def test_short_final_answers_without_digits_are_answers(final: str, answer_type: str, value: str) -> None:
    ext = extract_answer(f"Checking the options.\n</think>\n\n{final}", answer_type)
    assert (ext.final_part, ext.value) == ("present", value)


def test_unanswered_final_part_is_read_leniently_from_the_thinking() -> None:
    response = "8 + 9 = 17, so the answer is 17.\n</think>\n\n**"
    assert extract_answer(response, unfinished="thinking").value == "17"
    assert extract_answer(response).reason == "no answer after the thinking"


def test_prompt_opens_thinking_and_cut_text() -> None:
    assert prompt_opens_thinking(R1_PROMPT) and prompt_opens_thinking("x<think>  \n\n") and not prompt_opens_thinking("x")
    assert not prompt_opens_thinking(None) and not prompt_opens_thinking("<think>a</think> b")
    # a forced assistant prefix after the template's <think> (prompt hacking) still opens the thinking
    assert prompt_opens_thinking("<|Assistant|><think>\nOkay, let me think step by step.")
    assert prompt_opens_thinking("<think>old</think> answer <|Assistant|><think>\n")
    assert looks_cut("w = (4 - 2i) + (2 -") and looks_cut("\\( \\frac{\\") and looks_cut("and then adding")
    assert not looks_cut("So, **8 pens will cost $12.00**.") and not looks_cut("ドルです") and not looks_cut("$$\\boxed{3}$$")
    assert not looks_cut("She makes **$18** per day") and looks_cut("7. **Check:**\n   - Then we verify")
    with pytest.raises(ValueError, match="finish_reason"):
        classify("a", finish_reason="stop")


@pytest.mark.parametrize(
    ("line", "value"),
    [("答え：30日間で$12かかります", "12"), ("답은 하루에 18번입니다", "18"), ("Answer: 45 miles after 4 hours", "45")],
)
def test_verb_final_answer_sentence(line: str, value: str) -> None:
    lang = {"答": "ja", "답": "ko"}.get(line[0], "en")
    assert extract_answer(line, "number", lang).value == value


# ----------------------------------------------------------------- a thinking cut mid-way (issue #36)

from parallel_scaling.scoring.reached import asked_quantity, stated_result  # noqa: E402


def test_asked_quantity_is_the_one_math_span_of_the_asking_sentence() -> None:
    assert asked_quantity("Sei $z = 2 - 3i$.\n\n[asy]\ndot(\"$z$\", Z, S);\n[/asy]\n\nFinde $w.$\n") == "w"
    assert asked_quantity("... $(x, y)$ हैं और $x > 7$ है। $x + y$ का मान क्या है?") == "x + y"
    # a rendered prompt: the question before its <think>, the instruction after it holds no math
    assert asked_quantity("<|User|>Tìm $w.$\nPlease reason step by step, and put your final answer within "
                          "\\boxed{}.<|Assistant|><think>\n") == "w"
    assert asked_quantity("Find $n$ such that $2^n = 64$.") is None  # two spans, one a condition
    assert asked_quantity("What is $2^{10}$ modulo 7?") is None  # no quantity named
    assert asked_quantity("She pays $2 per egg and $3 per cup. How much does she pay?") is None  # prices
    assert asked_quantity("How many eggs does she sell?") is None and asked_quantity(None) is None


def test_stated_result_is_the_last_complete_closed_statement() -> None:
    thinking = ("So, \\( w = 6 - 5i \\). Wait, let me verify: w = (z - c)e^{i\\pi/4} + c, and 2w = 12 - 10i, "
                "|w| = 7.8, z - w = 3. Adding back c gives w = 6 - 5")
    # the formula, 2w, |w| and z - w are no statement of w; the last one is cut by the end of the text
    assert stated_result(thinking, "w") == "6 - 5i"
    assert stated_result("So, x + y = 8 + 9 = 17.\n\nWait, the vectors", "x + y") == "17"
    assert stated_result("so DE = √51, which", "DE") == "\\sqrt{51}"
    # a command of the question may be written without its backslash; Greek letters as LaTeX
    assert stated_result("Thus tan A = 3/4. Wait", "\\tan A") == "3/4" and stated_result("stan A = 3. ok", "\\tan A") is None
    assert asked_quantity("Find $\\theta.$") == "\\theta" and asked_quantity("Compute $\\pi$.") is None
    assert stated_result("so θ = 2π, and then", "\\theta") == "2\\pi" and stated_result("θ = 2α, so", "\\theta") is None
    assert stated_result("no statement here", "w") is None and stated_result("w = 6 - 5i.", None) is None


def test_a_cut_thinking_is_read_leniently_for_its_stated_result_only() -> None:
    question = "Let $z = 2 - 3i$. Find $w.$"
    prompt = question + "\n<think>\n"
    cut = "Therefore, w = 6 - 5i. Wait, let me check by rotating (4, -2): the first component is 1 + 3 = 4"
    lenient = extract_answer(cut, "latex", "en", "thinking", prompt, None, question)
    assert (lenient.value, lenient.method, lenient.final_part) == ("6 - 5i", "stated", "unclosed")
    assert extract_answer(cut, "latex", "en", "thinking", prompt).method == "stated"  # the prompt names it too
    assert extract_answer(cut, "latex", "en", "none", prompt, None, question).value is None  # the default
    # a boxed result in the thinking comes first; a closed thinking, a chat answer are never read so
    assert extract_answer("\\boxed{6 + 5i} ... " + cut, "latex", "en", "thinking", prompt, None, question).value == "6 + 5i"
    closed = extract_answer(cut + "\n</think>\n\nThe answer is $4$.", "latex", "en", "thinking", prompt, None, question)
    assert (closed.value, closed.method) == ("4", "phrase")
    assert extract_answer(cut, "latex", "en", "thinking", None, None, question).method == "last_number"
    choice = extract_answer("So w = 6 - 5i, which is option (B). Let me check (C)", "choice", "en", "thinking", prompt, None, question)
    assert (choice.value, choice.method) == ("C", "paren_letter")  # choices are read by their letters
    scored = score_response(cut, "6-5i", "en", "latex", unfinished="thinking", prompt=prompt, question=question)
    assert scored["correct"] and scored["extracted"] == "6 - 5i"
