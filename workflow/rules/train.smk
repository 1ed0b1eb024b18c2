# Initial models and post-training: one GRPO (or SFT) run per (model, mixture, seed).
# Intermediate trainer checkpoints live in work/ (keyed by a settings hash), not in the declared
# output, so a killed job resumes there when Snakemake reruns it.


rule build_init_model:
    input:
        expand("results/data/parallel/train/{lang}.jsonl", lang=QC_LANGS),
    output:
        "results/models/{model}/init/build_settings.json",
    log:
        log="logs/build_init_model/{model}.log",
        prov="logs/build_init_model/{model}.prov.json",
    benchmark:
        "benchmarks/build_init_model/{model}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: workflow.cores
    params:
        out="results/models/{model}/init",
        settings=lambda wc: as_json(config["models"][wc.model]["build"]),
        prompt_set=lambda wc: config["models"][wc.model]["prompt_set"],
        code=study.code_hash("tiny_model", "sft", "training", "prompts"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} build-tiny --data {input} --settings {params.settings}"
        " --prompt-set {params.prompt_set} --workdir work/build/{wildcards.model}"
        " --threads {threads} --out {params.out} > {log.log} 2>&1"


rule train_grpo:
    input:
        model=init_model_input,
        mixture="results/data/mixtures/{mixture}.jsonl",
    output:
        "results/checkpoints/{model}/grpo/{mixture}/s{seed}/training_settings.json",
    log:
        log="logs/train_grpo/{model}/{mixture}/s{seed}.log",
        prov="logs/train_grpo/{model}/{mixture}/s{seed}.prov.json",
    benchmark:
        "benchmarks/train_grpo/{model}/{mixture}/s{seed}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    params:
        model=lambda wc: model_path(wc.model),
        out="results/checkpoints/{model}/grpo/{mixture}/s{seed}",
        settings=lambda wc: as_json(config["grpo"]),
        launch=launcher("grpo"),
        prompt_set=lambda wc: config["models"][wc.model]["prompt_set"],
        code=study.code_hash("grpo", "rewards", "training", "prompts"),
    shell:
        "python {params.launch} --provenance {log.prov} train-grpo --model {params.model} --mixture {input.mixture}"
        " --settings {params.settings} --prompt-set {params.prompt_set} --seed {wildcards.seed}"
        " --workdir work/train_grpo/{wildcards.model}/{wildcards.mixture}/s{wildcards.seed}"
        " --threads {threads} --out {params.out} > {log.log} 2>&1"


rule train_sft:
    input:
        model=init_model_input,
        mixture="results/data/mixtures/{mixture}.jsonl",
    output:
        "results/checkpoints/{model}/sft/{mixture}/s{seed}/training_settings.json",
    log:
        log="logs/train_sft/{model}/{mixture}/s{seed}.log",
        prov="logs/train_sft/{model}/{mixture}/s{seed}.prov.json",
    benchmark:
        "benchmarks/train_sft/{model}/{mixture}/s{seed}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    params:
        model=lambda wc: model_path(wc.model),
        out="results/checkpoints/{model}/sft/{mixture}/s{seed}",
        settings=lambda wc: as_json(config["sft"]),
        launch=launcher("sft"),
        prompt_set=lambda wc: config["models"][wc.model]["prompt_set"],
        code=study.code_hash("sft", "training", "prompts"),
    shell:
        "python {params.launch} --provenance {log.prov} train-sft --model {params.model} --mixture {input.mixture}"
        " --settings {params.settings} --prompt-set {params.prompt_set} --seed {wildcards.seed}"
        " --workdir work/train_sft/{wildcards.model}/{wildcards.mixture}/s{wildcards.seed}"
        " --threads {threads} --out {params.out} > {log.log} 2>&1"
