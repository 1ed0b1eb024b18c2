# Predictions (one job per checkpoint answers every benchmark x language, one file each, in one
# output directory) and scoring (one job per checkpoint writes one scored file with every item;
# re-scoring never re-generates).


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
        # <benchmark>/<lang>.jsonl per configured pair + _settings.json: one tracked directory
        # per checkpoint keeps a paper-scale DAG small (see bench/replan.sh)
        directory("results/predictions/{model}/{paradigm}/{mixture}/s{seed}"),
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
        code=study.code_hash("predict", "prompts"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} predict --model {params.model} {params.inputs}"
        " --meta {params.meta} --settings {params.settings} --prompt-set {params.prompt_set}"
        " --outdir {output} --threads {threads} > {log.log} 2>&1"


rule score:
    input:
        "results/predictions/{model}/{paradigm}/{mixture}/s{seed}",
    output:
        scored="results/scored/{model}/{paradigm}/{mixture}/s{seed}/scored.jsonl",
        summary="results/scored/{model}/{paradigm}/{mixture}/s{seed}/_summary.csv",
    log:
        log="logs/score/{model}/{paradigm}/{mixture}/s{seed}.log",
        prov="logs/score/{model}/{paradigm}/{mixture}/s{seed}.prov.json",
    conda:
        "../../envs/analysis.yaml"
    params:
        predictions=lambda wc: predictions(_run(wc)),
        code=study.code_hash("scoring", "answers", "language"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} score {params.predictions}"
        " --out {output.scored} > {output.summary} 2> {log.log}"
