"""GRPO rewards on real responses in several languages (CJK and Thai included)."""

from __future__ import annotations

import pytest

from parallel_scaling.train import rewards

RESPONSES = [
    # (lang, response, gold, correct)
    ("en", "She has 16 - 3 - 4 = 9 eggs left, and 9 * 2 = 18 dollars. #### 18", "18", True),
    ("de", "Sie verkauft 9 Eier für je 2 Dollar, also 9 * 2 = 18. Die Antwort ist \\boxed{18}.", "18", True),
    ("fr", "Elle vend 9 œufs à 2 dollars, donc 18 dollars. La réponse est 17.", "18", False),
    ("zh", "她每天剩下16-3-4=9个鸡蛋，每个卖2美元，所以她每天赚18美元。答案是18", "18", True),
    ("ja", "残りの卵は16-3-4=9個で、9×2=18ドルになります。答えは\\boxed{18}です。", "18", True),
    ("th", "เหลือไข่ 16-3-4=9 ฟอง ขายฟองละ 2 ดอลลาร์ ได้เงิน 9*2=18 ดอลลาร์ คำตอบคือ 18", "18", True),
    ("sw", "Anabaki na mayai 9, anauza kwa dola 2, kwa hiyo anapata dola 16. Jibu ni 16", "18", False),
    ("ru", "Остаётся 9 яиц, 9 * 2 = 18 долларов. Ответ: 18", "18", True),
]


@pytest.mark.parametrize("lang, response, gold, correct", RESPONSES, ids=[r[0] for r in RESPONSES])
def test_correctness(lang, response, gold, correct):
    assert rewards.correctness(response, gold) == float(correct)


def test_format_needs_exactly_one_marker():
    assert rewards.answer_format("3 + 4 = 7 #### 7") == 1.0
    assert rewards.answer_format("so \\boxed{7}") == 1.0
    assert rewards.answer_format("3 + 4 = 7") == 0.0
    assert rewards.answer_format("#### 7 #### 8") == 0.0


@pytest.mark.parametrize("lang, response", [(r[0], r[1]) for r in RESPONSES])
def test_language_consistency_on_matching_language(lang, response):
    assert rewards.language_consistency(response, lang) == 1.0


def test_language_consistency_penalises_english_reasoning_for_a_chinese_prompt():
    english = "She has 9 eggs left and sells them for 2 dollars each, so she makes 18 dollars."
    assert rewards.language_consistency(english, "zh") == 0.0
    assert rewards.language_consistency("3 + 4 = 7 #### 7", "th") == 1.0  # equations alone are neutral


def test_trl_signature_uses_dataset_columns():
    fn = rewards.trl_reward("correctness")
    out = fn(prompts=["p", "p"], completions=["2 + 2 = 4 #### 4", "#### 5"], answer=["4", "4"],
             lang=["en", "en"], answer_type=["number", "number"])
    assert out == [1.0, 0.0]
    conversational = fn(prompts=[[]], completions=[[{"role": "assistant", "content": "#### 4"}]], answer=["4"])
    assert conversational == [1.0]


def test_cut_thinking_opened_by_the_template_earns_no_correctness():
    """R1-distilled templates end the prompt with <think>: a completion cut in its thinking earns
    nothing for a tentative box; the same completion closed and answered earns the reward."""
    fn = rewards.trl_reward("correctness")
    prompt = "<|User|>What is 2 + 2?<|Assistant|><think>\n"
    cut = "2 + 2 = 4, so \\boxed{4}. Wait, let me double-check by counting"
    done = "2 + 2 = 4.\n</think>\n\nThe answer is \\boxed{4}."
    assert fn(prompts=[prompt, prompt], completions=[cut, done], answer=["4", "4"]) == [0.0, 1.0]
    assert fn(prompts=["What is 2 + 2?"], completions=[cut], answer=["4"]) == [1.0]  # a chat prompt: as before


def test_weights_choose_active_rewards():
    funcs, weights = rewards.active_rewards({"correctness": 1.0, "format": 0.0, "language": 0.5})
    assert [f.__name__ for f in funcs] == ["correctness", "language"] and weights == [1.0, 0.5]
    with pytest.raises(ValueError, match="unknown reward"):
        rewards.active_rewards({"speed": 1.0})
    with pytest.raises(ValueError, match="every weight is zero"):
        rewards.active_rewards({"correctness": 0.0})
