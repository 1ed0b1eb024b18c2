"""One BOS and the same decoding in every engine, on a Llama-style tokenizer and model built here.

The tokenizer is what makes Llama 3 special: a post-processor that adds ``<|begin_of_text|>`` to every
text tokenized with special tokens, and a chat template that starts with ``{{ bos_token }}``. The
tests show exactly one BOS in the prompt ids that reach the transformers engine's model (observed
with a forward hook on its embedding), in the token-id prompts given to vLLM, in TRL's GRPO prompt
tokenization and in TRL's SFT training sequences, for a chat-template and a plain prompt set; and
that the transformers engine ignores the model's generation_config (here a repetition penalty of 10
and top_k 3) as vLLM does. About 20 s on CPU (one tiny GRPOTrainer and SFTTrainer are built)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parallel_scaling.common import decoding
from parallel_scaling.evaluate import predict
from parallel_scaling.data import translate
from parallel_scaling.dataio.jsonl import read_jsonl, write_jsonl
from parallel_scaling.common.prompts import build_prompt

BOS, EOT = "<|begin_of_text|>", "<|eot_id|>"
TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
            "{{ m['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
            "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
QUESTIONS = [("en", "Tom has 3 apples and buys 4 more. How many apples does he have?"),
             ("de", "Tom hat 3 Äpfel und kauft 4 dazu. Wie viele Äpfel hat er?")]


def llama_tokenizer():
    """Byte-level BPE with Llama 3's special tokens, BOS post-processor and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=[BOS, EOT, "<|start_header_id|>", "<|end_header_id|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([q for _, q in QUESTIONS] + ["user assistant Please reason step by step \\boxed{}"],
                            trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B",
                                                       special_tokens=[(BOS, tok.token_to_id(BOS))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOT, pad_token=EOT,
                                   chat_template=TEMPLATE)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """A tiny LlamaForCausalLM with that tokenizer; its generation_config would change decoding if
    it leaked into generate (repetition penalty 10, top_k 3) and lists a second EOS id."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("llama")
    tok = llama_tokenizer()
    tok.save_pretrained(path)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        # 512 positions: the shipped translation prompt is 414 of this tokenizer's tokens, and a prompt
        # longer than the context is refused (decoding.check_prompt_lengths)
        num_key_value_heads=1, max_position_embeddings=512, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=[tok.eos_token_id, 3],
                                               do_sample=True, temperature=0.6, top_k=3, repetition_penalty=10.0)
    model.save_pretrained(path)
    return path, AutoTokenizer.from_pretrained(path)


def bos_count(ids, tok) -> int:
    return [int(i) for i in ids].count(tok.bos_token_id)


def unpadded(row, mask) -> list[int]:
    return [int(i) for i, m in zip(row, mask) if m]


def test_the_tokenizer_is_llama_like(llama):
    """The trap: the chat template's BOS plus the tokenizer's own make two."""
    _, tok = llama
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.startswith(BOS)
    assert bos_count(tok(text, add_special_tokens=True)["input_ids"], tok) == 2
    assert decoding.adds_bos(tok)


@pytest.mark.parametrize("prompt_set", ["boxed_native", "plain"])
def test_prompt_text_tokenizes_to_one_bos(llama, prompt_set):
    _, tok = llama
    for lang, q in QUESTIONS:
        text = build_prompt(q, lang, prompt_set, tok)
        ids = decoding.encode_prompts(tok, [text])[0]
        assert ids[0] == tok.bos_token_id and bos_count(ids, tok) == 1, (prompt_set, text[:60])


@pytest.fixture
def embedding_inputs():
    """The token ids every embedding layer receives (the prompt ids at the prefill step)."""
    import torch

    seen: list = []

    def hook(module, args):
        if isinstance(module, torch.nn.Embedding) and args and args[0].dim() == 2 and args[0].shape[1] > 1:
            seen.append(args[0].detach().clone())

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    yield seen
    handle.remove()


@pytest.mark.parametrize("prompt_set", ["boxed_native", "plain"])
def test_transformers_prediction_and_vllm_prompts_carry_the_same_single_bos(llama, tmp_path, embedding_inputs,
                                                                           prompt_set):
    path, tok = llama
    write_jsonl(tmp_path / "en.jsonl", [{"id": str(i), "question": q, "answer": "7"} for i, (_, q) in enumerate(QUESTIONS)])
    settings = {"engine": "transformers", "device": "cpu", "temperature": 0.0, "top_p": 1.0, "n": 1,
                "max_new_tokens": 3, "batch_size": 8, "seed": 0, "vllm_gpu_memory_utilization": 0.9,
                "vllm_tensor_parallel_size": 1}
    rc = predict.main(["--model", str(path), "--input", "b", "en", str(tmp_path / "en.jsonl"), "--meta", "{}",
                       "--settings", json.dumps(settings), "--prompt-set", prompt_set, "--outdir", str(tmp_path / "o")])
    assert rc == 0
    (batch,) = embedding_inputs[:1]
    pad = tok.pad_token_id
    # left padding: the mask is what the tokenizer gave; rebuild it from the prompts themselves
    prompts = [r["prompt"] for r in read_jsonl(tmp_path / "o/b/en.jsonl")]
    in_order = decoding.encode_prompts(tok, prompts)
    expected = [in_order[i] for i in predict.by_length(in_order)]  # the engine batches shortest first
    seen = [[int(i) for i in row][len(row) - len(e):] for row, e in zip(batch.tolist(), expected)]
    assert seen == expected
    for row, e in zip(batch.tolist(), expected):
        assert all(i == pad for i in row[:len(row) - len(e)])
        assert bos_count(row, tok) == 1
    # vLLM gets exactly these ids as TokensPrompt dicts (never its own tokenization of the text)
    _, _, vllm_prompts = predict.vllm_arguments(str(path), prompts, {**settings, "engine": "vllm"}, tok)
    assert [p["prompt_token_ids"] for p in vllm_prompts] == in_order


def test_transformers_translation_engine_gets_one_bos(llama, embedding_inputs):
    path, tok = llama
    settings = {"backend": "transformers", "model": {"path": str(path), "max_new_tokens": 2, "device": "cpu"}}
    rows, meta = translate.translate([{"id": "1", "question": QUESTIONS[0][1], "answer": "7"}], "de", settings)
    assert meta["chat_template"] and len(rows) == 1
    (batch,) = embedding_inputs[:1]
    assert [bos_count(row, tok) for row in batch.tolist()] == [1]


def test_trl_grpo_and_sft_tokenize_one_bos(llama, tmp_path):
    """TRL's own tokenization of our text prompts (GRPOTrainer._tokenize_prompts, which also feeds
    its colocated vLLM the ids; SFTTrainer's dataset preparation) gives one BOS."""
    from snakemake.utils import validate
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from parallel_scaling.train.grpo import grpo_config_kwargs, grpo_dataset
    from parallel_scaling.train.rewards import active_rewards
    from parallel_scaling.train.sft import sft_dataset, sft_trainer
    from parallel_scaling.dataio.schema import trainer_keys
    from parallel_scaling.train.shared import trl_args

    path, tok = llama
    cfg = {"languages": {"parallel_order": ["de"], "K": 1, "evaluate": ["en", "de", "fr", "zh"]},
           "models": {"tiny": {"source": "tiny"}}}
    validate(cfg, str(Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.json"), set_default=True)
    rows = [{"id": str(i), "lang": lang, "question": q, "answer": "7", "solution": "3 + 4 = 7"}
            for i, (lang, q) in enumerate(QUESTIONS)]
    g = {**cfg["grpo"], "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 4,
         "attn_implementation": "eager"}
    funcs, weights = active_rewards(g["reward_weights"])
    dataset = grpo_dataset(rows, "boxed_native", tok)
    args = GRPOConfig(**grpo_config_kwargs(g, trl_args(g, trainer_keys("grpo"), "cpu", tmp_path / "g", 0), weights, "float32", []))
    trainer = GRPOTrainer(model=str(path), reward_funcs=funcs, args=args, train_dataset=dataset, processing_class=tok)
    assert trainer.model.config._attn_implementation == "eager"  # grpo.attn_implementation reaches the policy
    prompt_ids, _, _ = trainer._tokenize_prompts(list(dataset["prompt"]))
    assert [bos_count(ids, tok) for ids in prompt_ids] == [1, 1]
    assert [list(ids) for ids in prompt_ids] == decoding.encode_prompts(tok, dataset["prompt"])

    s = {**cfg["sft"], "max_steps": 1}
    sft = sft_trainer(AutoModelForCausalLM.from_pretrained(path), tok, sft_dataset(rows, "boxed_native", tok, "####"),
                      s, tmp_path / "s", 0, "cpu")
    for example in sft.train_dataset:
        assert example["input_ids"][0] == tok.bos_token_id and bos_count(example["input_ids"], tok) == 1


def test_both_engines_decode_from_our_settings_only(llama, tmp_path):
    """The model's generation_config (repetition penalty 10, top_k 3) changes nothing: predictions
    with it equal predictions of the same weights without it, greedy and sampled; the stop tokens
    are the tokenizer's EOS plus the generation config's, as vLLM uses them."""
    import shutil

    from transformers import AutoModelForCausalLM, GenerationConfig

    path, tok = llama
    neutral = tmp_path / "neutral"
    shutil.copytree(path, neutral)
    (neutral / "generation_config.json").unlink()
    write_jsonl(tmp_path / "en.jsonl", [{"id": str(i), "question": q, "answer": "7"} for i, (_, q) in enumerate(QUESTIONS)])
    for sampled in (False, True):
        s = {"engine": "transformers", "device": "cpu", "temperature": 0.9 if sampled else 0.0, "top_p": 1.0,
             "n": 2 if sampled else 1, "max_new_tokens": 12, "batch_size": 8, "seed": 0}
        out = {}
        for name, model in (("given", path), ("neutral", neutral)):
            assert predict.main(["--model", str(model), "--input", "b", "en", str(tmp_path / "en.jsonl"), "--meta", "{}",
                                 "--settings", json.dumps(s), "--prompt-set", "plain",
                                 "--outdir", str(tmp_path / f"{name}{sampled}")]) == 0
            out[name] = [r["response"] for r in read_jsonl(tmp_path / f"{name}{sampled}/b/en.jsonl")]
        assert out["given"] == out["neutral"], sampled
    # the greedy responses repeat tokens, so a leaked repetition penalty of 10 would have shown
    model = AutoModelForCausalLM.from_pretrained(path)
    gc = decoding.transformers_generation_config({"temperature": 0.0, "max_new_tokens": 12}, tok, model.generation_config)
    assert gc.repetition_penalty == 1.0 and gc.do_sample is False and gc.top_k == 0
    assert gc.eos_token_id == [tok.eos_token_id, 3] == decoding.stop_token_ids(tok, model.generation_config)
    s = {"temperature": 0.7, "top_p": 0.9, "top_k": 20, "repetition_penalty": 1.1, "n": 3, "max_new_tokens": 50, "seed": 1}
    gc = decoding.transformers_generation_config(s, tok, GenerationConfig(top_k=3, repetition_penalty=10.0))
    v = decoding.vllm_sampling_kwargs(s)
    assert (gc.temperature, gc.top_p, gc.top_k, gc.repetition_penalty, gc.num_return_sequences, gc.max_new_tokens) == \
        (v["temperature"], v["top_p"], v["top_k"], v["repetition_penalty"], v["n"], v["max_tokens"])
