# Initial models and post-training: one GRPO (or SFT) run per (model, mixture, seed).
# The declared outputs are the model directory itself (weights, tokenizer, settings, curves) and
# its manifest beside it: a deleted or changed file makes the job rerun (output_state()).
# Intermediate trainer checkpoints live in WORK/.../<key>/, where the key is the content of every
# input (initial model, data, settings, prompt text, code): a killed job resumes there when it is
# rerun with the same inputs, and a finished job deletes it.


rule build_init_model:
    input:
        expand(f"{RESULTS}/data/parallel/train/{{lang}}.jsonl", lang=QC_LANGS),
    output:
        model=directory(f"{RESULTS}/models/{{model}}/init"),
        manifest=f"{RESULTS}/models/{{model}}/init.manifest.json",
    log:
        log=f"{LOGS}/build_init_model/{{model}}.log",
        prov=f"{LOGS}/build_init_model/{{model}}.prov.json",
    benchmark:
        f"{BENCHMARKS}/build_init_model/{{model}}.tsv"
    conda:
        "../../envs/train.yaml"
    # the thread count is part of the build's recipe (models.<m>.build.threads): the same bits on
    # every machine need the same count
    threads: lambda wc: config["models"][wc.model]["build"]["threads"]
    resources:
        gpu=study.gpus(config, "build_init_model"),
    params:
        settings=lambda wc: as_json(config["models"][wc.model]["build"]),
        prompt_set=lambda wc: config["models"][wc.model]["prompt_set"],
        prompts=prompts_of,
        state=output_state(f"{RESULTS}/models/{{model}}/init"),
        code=code_hash("build-init-model"),
        kernels=CPU_KERNELS,
        workdir=lambda wc: f"{WORK}/build_init_model/{wc.model}",
    shell:
        "python -m parallel_scaling --provenance {log.prov} build-init-model --data {input} --settings {params.settings}"
        " --prompt-set {params.prompt_set} --workdir {params.workdir}"
        " --threads {threads} --out {output.model} --manifest-token {params.state} > {log.log} 2>&1"


rule train_grpo:
    input:
        model=init_model_input,
        mixture=f"{RESULTS}/data/mixtures/{{mixture}}.jsonl",
    output:
        model=directory(f"{RESULTS}/checkpoints/{{model}}/grpo/{{mixture}}/s{{seed}}"),
        manifest=f"{RESULTS}/checkpoints/{{model}}/grpo/{{mixture}}/s{{seed}}.manifest.json",
    log:
        log=f"{LOGS}/train_grpo/{{model}}/{{mixture}}/s{{seed}}.log",
        prov=f"{LOGS}/train_grpo/{{model}}/{{mixture}}/s{{seed}}.prov.json",
        # every logged step, written while the run trains (tail -f it)
        metrics=f"{LOGS}/train_grpo/{{model}}/{{mixture}}/s{{seed}}.metrics.jsonl",
    benchmark:
        f"{BENCHMARKS}/train_grpo/{{model}}/{{mixture}}/s{{seed}}.tsv"
    # the longest runs (most languages, so most steps under the additive budget) start first, so
    # that the shorter ones fill the cores at the end instead of one long run alone
    priority: lambda wc: mixture_priority(wc)
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        # GPUs per job from the study (gpus.train_grpo); the launcher starts one process per GPU
        gpu=study.gpus(config, "train_grpo"),
    params:
        model=lambda wc: model_path(wc.model),
        given_model=init_model_param,
        settings=lambda wc: as_json(config["grpo"]),
        launch=launcher("grpo"),
        prompt_set=lambda wc: config["models"][wc.model]["prompt_set"],
        prompts=prompts_of,
        state=output_state(
            f"{RESULTS}/checkpoints/{{model}}/grpo/{{mixture}}/s{{seed}}"
        ),
        code=code_hash("train-grpo"),
        kernels=CPU_KERNELS,
        workdir=lambda wc: f"{WORK}/train_grpo/{wc.model}/{wc.mixture}/s{wc.seed}",
    shell:
        "python {params.launch} --provenance {log.prov} train-grpo --model {params.model:q} --mixture {input.mixture}"
        " --settings {params.settings} --prompt-set {params.prompt_set} --seed {wildcards.seed}"
        " --workdir {params.workdir} --metrics {log.metrics}"
        " --threads {threads} --out {output.model} --manifest-token {params.state} > {log.log} 2>&1"


rule train_sft:
    input:
        model=init_model_input,
        mixture=f"{RESULTS}/data/mixtures/{{mixture}}.jsonl",
    output:
        model=directory(f"{RESULTS}/checkpoints/{{model}}/sft/{{mixture}}/s{{seed}}"),
        manifest=f"{RESULTS}/checkpoints/{{model}}/sft/{{mixture}}/s{{seed}}.manifest.json",
    log:
        log=f"{LOGS}/train_sft/{{model}}/{{mixture}}/s{{seed}}.log",
        prov=f"{LOGS}/train_sft/{{model}}/{{mixture}}/s{{seed}}.prov.json",
        # every logged step, written while the run trains (tail -f it)
        metrics=f"{LOGS}/train_sft/{{model}}/{{mixture}}/s{{seed}}.metrics.jsonl",
    benchmark:
        f"{BENCHMARKS}/train_sft/{{model}}/{{mixture}}/s{{seed}}.tsv"
    # the longest runs (most languages, so most steps under the additive budget) start first, so
    # that the shorter ones fill the cores at the end instead of one long run alone
    priority: lambda wc: mixture_priority(wc)
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        # GPUs per job from the study (gpus.train_sft); the launcher starts one process per GPU
        gpu=study.gpus(config, "train_sft"),
    params:
        model=lambda wc: model_path(wc.model),
        given_model=init_model_param,
        settings=lambda wc: as_json(config["sft"]),
        launch=launcher("sft"),
        prompt_set=lambda wc: config["models"][wc.model]["prompt_set"],
        prompts=prompts_of,
        state=output_state(f"{RESULTS}/checkpoints/{{model}}/sft/{{mixture}}/s{{seed}}"),
        code=code_hash("train-sft"),
        kernels=CPU_KERNELS,
        workdir=lambda wc: f"{WORK}/train_sft/{wc.model}/{wc.mixture}/s{wc.seed}",
    shell:
        "python {params.launch} --provenance {log.prov} train-sft --model {params.model:q} --mixture {input.mixture}"
        " --settings {params.settings} --prompt-set {params.prompt_set} --seed {wildcards.seed}"
        " --workdir {params.workdir} --metrics {log.metrics}"
        " --threads {threads} --out {output.model} --manifest-token {params.state} > {log.log} 2>&1"
