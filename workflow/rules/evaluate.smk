# Predictions (one job per checkpoint answers every benchmark x language) and scoring
# (one job per checkpoint writes one scored file per benchmark x language; re-scoring never
# re-generates).


localrules:
    score,


def bench_file(b, lang):
    if config["benchmarks"][b].get("kind") == "synthetic":
        return f"results/data/translated/test/{lang}.jsonl"
    return f"results/benchmarks/{b}/{lang}.jsonl"


def _run(wc):
    return study.Run(wc.model, wc.paradigm, wc.mixture, int(wc.seed))


def checkpoint_of(wc):
    if wc.paradigm == "init":
        return model_path(wc.model)
    if wc.paradigm == "public":
        return config["models"][wc.model]["trained"]
    return f"results/checkpoints/{wc.model}/{wc.paradigm}/{wc.mixture}/s{wc.seed}"


def predict_inputs(wc):
    files = {"bench": [bench_file(b, lg) for b, lg in BENCH_LANGS]}
    ckpt = checkpoint_of(wc)
    if wc.paradigm in ("grpo", "sft") or (
        wc.paradigm == "init" and config["models"][wc.model]["source"] == "tiny"
    ):
        files["model"] = ckpt
    return files


def predict_args(wc):
    return " ".join(f"--input {b} {lg} {bench_file(b, lg)}" for b, lg in BENCH_LANGS)


rule predict:
    input:
        unpack(predict_inputs),
    output:
        expand(
            "results/predictions/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}/{bl}.jsonl",
            bl=[f"{b}/{lg}" for b, lg in BENCH_LANGS],
        ),
        settings="results/predictions/{model}/{paradigm}/{mixture}/s{seed}/_settings.json",
    params:
        model=checkpoint_of,
        inputs=predict_args,
        meta=lambda wc: as_json(study.run_meta(config, _run(wc))),
        settings=lambda wc: as_json(config["prediction"]),
        prompt_set=lambda wc: config["models"][wc.model]["prompt_set"],
        outdir="results/predictions/{model}/{paradigm}/{mixture}/s{seed}",
        code=study.code_hash("predict", "prompts"),
    threads: 1
    log:
        log="logs/predict/{model}/{paradigm}/{mixture}/s{seed}.log",
        prov="logs/predict/{model}/{paradigm}/{mixture}/s{seed}.prov.json",
    benchmark:
        "benchmarks/predict/{model}/{paradigm}/{mixture}/s{seed}.tsv"
    shell:
        "{PS} --provenance {log.prov} predict --model {params.model} {params.inputs}"
        " --meta {params.meta} --settings {params.settings} --prompt-set {params.prompt_set}"
        " --outdir {params.outdir} --threads {threads} > {log.log} 2>&1"


rule score:
    input:
        expand(
            "results/predictions/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}/{bl}.jsonl",
            bl=[f"{b}/{lg}" for b, lg in BENCH_LANGS],
        ),
    output:
        expand(
            "results/scored/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}/{bl}.jsonl",
            bl=[f"{b}/{lg}" for b, lg in BENCH_LANGS],
        ),
    params:
        pairs=lambda wc, input, output: " ".join(
            f"--pair {i} {o}" for i, o in zip(input, output)
        ),
        code=study.code_hash("scoring", "answers", "language"),
    log:
        log="logs/score/{model}/{paradigm}/{mixture}/s{seed}.log",
        prov="logs/score/{model}/{paradigm}/{mixture}/s{seed}.prov.json",
    shell:
        "{PS} --provenance {log.prov} score {params.pairs} > {log.log} 2>&1"
