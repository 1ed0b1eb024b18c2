# Predictions (one job per checkpoint answers every benchmark x language) and scoring
# (one job per checkpoint writes one scored file per benchmark x language; re-scoring never
# re-generates).


localrules:
    score,
    benchmark_manifest,


rule benchmark_manifest:
    input:
        lambda wc: [
            bench_file(wc.benchmark, lg)
            for lg in study.benchmark_languages(config, wc.benchmark)
        ],
    output:
        "results/benchmarks/{benchmark}.manifest.json",
    log:
        log="logs/benchmark_manifest/{benchmark}.log",
        prov="logs/benchmark_manifest/{benchmark}.prov.json",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m parallel_scaling --provenance {log.prov} manifest {input} --out {output}"
        " > {log.log} 2>&1"


rule predict:
    input:
        unpack(predict_inputs),
    output:
        expand(
            "results/predictions/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}/{bl}.jsonl",
            bl=[f"{b}/{lg}" for b, lg in BENCH_LANGS],
        ),
        settings="results/predictions/{model}/{paradigm}/{mixture}/s{seed}/_settings.json",
    log:
        log="logs/predict/{model}/{paradigm}/{mixture}/s{seed}.log",
        prov="logs/predict/{model}/{paradigm}/{mixture}/s{seed}.prov.json",
    benchmark:
        "benchmarks/predict/{model}/{paradigm}/{mixture}/s{seed}.tsv"
    conda:
        "../../envs/predict.yaml"
    threads: 1
    params:
        model=checkpoint_of,
        inputs=predict_args,
        meta=lambda wc: as_json(study.run_meta(config, _run(wc))),
        settings=lambda wc: as_json(config["prediction"]),
        prompt_set=lambda wc: config["models"][wc.model]["prompt_set"],
        outdir="results/predictions/{model}/{paradigm}/{mixture}/s{seed}",
        code=study.code_hash("predict", "prompts"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} predict --model {params.model} {params.inputs}"
        " --meta {params.meta} --settings {params.settings} --prompt-set {params.prompt_set}"
        " --outdir {params.outdir} --threads {threads} > {log.log} 2>&1"


rule score:
    input:
        "results/predictions/{model}/{paradigm}/{mixture}/s{seed}/_settings.json",
    output:
        expand(
            "results/scored/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}/{bl}.jsonl",
            bl=[f"{b}/{lg}" for b, lg in BENCH_LANGS],
        ),
        summary="results/scored/{model}/{paradigm}/{mixture}/s{seed}/_summary.csv",
    log:
        log="logs/score/{model}/{paradigm}/{mixture}/s{seed}.log",
        prov="logs/score/{model}/{paradigm}/{mixture}/s{seed}.prov.json",
    conda:
        "../../envs/analysis.yaml"
    params:
        pairs=lambda wc: " ".join(
            f"--pair {p} {s}" for p, s in zip(predictions(_run(wc)), scored(_run(wc)))
        ),
        code=study.code_hash("scoring", "answers", "language"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} score {params.pairs}"
        " > {output.summary} 2> {log.log}"
