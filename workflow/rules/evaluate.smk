# Predictions (one job per checkpoint answers every benchmark x language, one file each, in one
# output directory; a checkpoint too long for one job is split into parts, each a job with its own
# directory <checkpoint>.parts/<part>: parallel_scaling.plan.prediction_jobs) and scoring (one job
# per checkpoint reads all its parts and writes one scored file with every item; re-scoring never
# re-generates).


localrules:
    score,
    benchmark_manifest,
    reuse_predictions,


# a run that evaluates the checkpoint another run evaluates (same settings and prompts) takes that
# run's predictions, relabelled, instead of generating them again (prediction_jobs.duplicates)
ruleorder: reuse_predictions > predict


rule benchmark_manifest:
    input:
        lambda wc: [
            bench_file(wc.benchmark, lg)
            for lg in study.benchmark_languages(config, wc.benchmark)
        ],
    output:
        f"{RESULTS}/benchmarks/{{benchmark}}.manifest.json",
    log:
        log=f"{LOGS}/benchmark_manifest/{{benchmark}}.log",
        prov=f"{LOGS}/benchmark_manifest/{{benchmark}}.prov.json",
    conda:
        "../../envs/analysis.yaml"
    params:
        code=code_hash("benchmark-manifest"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} benchmark-manifest {input} --out {output}"
        " > {log.log} 2>&1"


rule predict:
    input:
        unpack(predict_inputs),
    output:
        # <benchmark>/<lang>.jsonl per configured pair + _settings.json: one tracked directory
        # per checkpoint keeps a paper-scale DAG small (see bench/replan.sh)
        predictions=directory(
            f"{RESULTS}/predictions/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}{{part}}"
        ),
        manifest=f"{RESULTS}/predictions/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}{{part}}.manifest.json",
    log:
        log=f"{LOGS}/predict/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}{{part}}.log",
        prov=f"{LOGS}/predict/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}{{part}}.prov.json",
    benchmark:
        f"{BENCHMARKS}/predict/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}{{part}}.tsv"
    conda:
        "../../envs/predict.yaml"
    threads: 1
    resources:
        gpu=predict_gpus,
    params:
        model=checkpoint_of,
        inputs=predict_args,
        meta=lambda wc: as_json(study.run_meta(config, _run(wc))),
        # the study's prediction section with the model's own settings over it, without the served
        # endpoint (it travels apart: a server moved to another node reruns nothing)
        settings=lambda wc: as_json(
            served.split_settings(PREDICT_SETTINGS[wc.model])[0]
        ),
        served=served_endpoint("prediction"),
        prompt_set=lambda wc: config["models"][wc.model]["prompt_set"],
        prompts=prompts_of,
        given_model=predict_model_param,
        state=output_state(
            f"{RESULTS}/predictions/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}{{part}}"
        ),
        code=code_hash("predict"),
        kernels=CPU_KERNELS,
        # responses saved as they are made, outside the outputs that Snakemake deletes when the job
        # fails: a killed job run again generates only what is missing (evaluate/journal.py)
        journal=lambda wc: f"{WORK}/predict/{wc.model}/{wc.paradigm}/{wc.mixture}/s{wc.seed}{wc.part}.jsonl",
    shell:
        "python -m parallel_scaling --provenance {log.prov} predict --model {params.model:q} {params.inputs}"
        " --meta {params.meta} --settings {params.settings} --prompt-set {params.prompt_set}"
        " --outdir {output.predictions} --threads {threads} --manifest-token {params.state}"
        " --journal {params.journal} {params.served} > {log.log} 2>&1"


rule reuse_predictions:
    input:
        reuse_inputs,
    output:
        predictions=directory(f"{RESULTS}/predictions/{{run}}"),
        manifest=f"{RESULTS}/predictions/{{run}}.manifest.json",
    log:
        log=f"{LOGS}/reuse_predictions/{{run}}.log",
        prov=f"{LOGS}/reuse_predictions/{{run}}.prov.json",
    wildcard_constraints:
        run=reused_runs(),
    conda:
        "../../envs/analysis.yaml"
    params:
        inputs=reuse_args,
        meta=lambda wc: as_json(study.run_meta(config, REUSED_RUNS[wc.run])),
        source=lambda wc: REUSED[wc.run].path,
        settings=reuse_settings,
        state=output_state(f"{RESULTS}/predictions/{{run}}"),
        code=code_hash("reuse-predictions"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} reuse-predictions {params.inputs}"
        " --meta {params.meta} --source {params.source} --settings {params.settings}"
        " --outdir {output.predictions} --manifest-token {params.state} > {log.log} 2>&1"


rule score:
    input:
        # the checkpoint's one predictions directory, or the directories of its parts
        lambda wc: prediction_dirs(_run(wc)),
    output:
        scored=f"{RESULTS}/scored/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}/scored.jsonl",
        summary=f"{RESULTS}/scored/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}/_summary.csv",
    log:
        log=f"{LOGS}/score/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}.log",
        prov=f"{LOGS}/score/{{model}}/{{paradigm}}/{{mixture}}/s{{seed}}.prov.json",
    conda:
        "../../envs/analysis.yaml"
    params:
        predictions=lambda wc: predictions(_run(wc)),
        # a changed rule for unfinished reasoning responses rescores (params trigger)
        unfinished=config["scoring"]["unfinished_answer"],
        code=code_hash("score"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} score {params.predictions}"
        " --unfinished-answer {params.unfinished} --out {output.scored} > {output.summary} 2> {log.log}"
