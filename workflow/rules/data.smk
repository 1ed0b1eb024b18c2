# Source problems -> translated parallel data (one file per language) -> QC -> training mixtures.
# Every rule's `code` param is the content hash of the package code its command can run
# (parallel_scaling.jobs.codedeps): editing that code reruns the rule and what follows, nothing else.


localrules:
    source,
    copy_english,
    qc,
    qc_table,
    mixture,
    benchmark,


rule source:
    input:
        lambda wc: study.source_files(config, wc.split),
    output:
        f"{RESULTS}/data/source/{{split}}.jsonl",
    log:
        log=f"{LOGS}/source/{{split}}.log",
        prov=f"{LOGS}/source/{{split}}.prov.json",
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: as_json(config["source"]),
        code=code_hash("source"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} source --settings {params.settings} --split {wildcards.split}"
        " --out {output} > {log.log} 2>&1"


rule copy_english:
    # the English parallel rows are the source itself: no model, no GPU, whatever the backend
    input:
        source=f"{RESULTS}/data/source/{{split}}.jsonl",
    output:
        rows=f"{RESULTS}/data/translated/{{split}}/{EN}.jsonl",
        meta=f"{RESULTS}/data/translated/{{split}}/{EN}.meta.json",
    log:
        log=f"{LOGS}/copy_english/{{split}}.log",
        prov=f"{LOGS}/copy_english/{{split}}.prov.json",
    conda:
        "../../envs/data.yaml"
    params:
        code=code_hash("translate"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} translate --source {input.source}"
        f" --lang {EN} --out {{output.rows}} > {{log.log}} 2>&1"


rule translate:
    input:
        source=f"{RESULTS}/data/source/{{split}}.jsonl",
        files=lambda wc: study.translation_files(config, wc.lang),
    output:
        rows=f"{RESULTS}/data/translated/{{split}}/{{lang}}.jsonl",
        meta=f"{RESULTS}/data/translated/{{split}}/{{lang}}.meta.json",
    log:
        log=f"{LOGS}/translate/{{split}}/{{lang}}.log",
        prov=f"{LOGS}/translate/{{split}}/{{lang}}.prov.json",
    benchmark:
        f"{BENCHMARKS}/translate/{{split}}/{{lang}}.tsv"
    wildcard_constraints:
        lang="|".join(lg for lg in ALL_LANGS if lg != EN),
    # a translation without a model (template, import) is as cheap as the other local rules; an LLM
    # translation gets the GPUs of its tensor parallelism (gpus.translate)
    localrule: study.gpus(config, "translate") == 0
    conda:
        "../../envs/data.yaml"
    resources:
        gpu=study.gpus(config, "translate"),
    params:
        # without the served endpoint, which travels apart (served_endpoint: moving it reruns nothing)
        settings=lambda wc: as_json(served.split_settings(config["translation"])[0]),
        served=served_endpoint("translation"),
        prompts=lambda wc: study.translation_prompts(config, wc.lang),
        code=code_hash("translate"),
        # only a model-based backend's output depends on the CPU kernels
        kernels=(
            CPU_KERNELS
            if config["translation"]["backend"] in ("transformers", "vllm")
            else None
        ),
    shell:
        "python -m parallel_scaling --provenance {log.prov} translate --source {input.source} --lang {wildcards.lang}"
        " --settings {params.settings} --out {output.rows} {params.served} > {log.log} 2>&1"


rule qc:
    input:
        source=f"{RESULTS}/data/source/train.jsonl",
        translated=f"{RESULTS}/data/translated/train/{{lang}}.jsonl",
    output:
        rows=f"{RESULTS}/data/parallel/train/{{lang}}.jsonl",
        report=f"{RESULTS}/data/qc/train/{{lang}}.tsv",
    log:
        log=f"{LOGS}/qc/{{lang}}.log",
        prov=f"{LOGS}/qc/{{lang}}.prov.json",
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: as_json(config["qc"]),
        code=code_hash("qc"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} qc --source {input.source} --translated {input.translated}"
        " --lang {wildcards.lang} --settings {params.settings} --out {output.rows}"
        " --report {output.report} > {log.log} 2>&1"


rule qc_table:
    input:
        expand(f"{RESULTS}/data/qc/train/{{lang}}.tsv", lang=QC_LANGS),
    output:
        csv=report(
            f"{RESULTS}/tables/qc.csv",
            caption="../report/qc.rst",
            category="Data",
            labels={"table": "translation QC"},
        ),
        md=f"{RESULTS}/tables/qc.md",
    log:
        log=f"{LOGS}/qc_table.log",
        prov=f"{LOGS}/qc_table.prov.json",
    conda:
        "../../envs/data.yaml"
    params:
        code=code_hash("qc-table"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} qc-table --reports {input} --csv {output.csv}"
        " --markdown {output.md} > {log.log} 2>&1"


rule mixture:
    input:
        unpack(mixture_inputs),
    output:
        rows=f"{RESULTS}/data/mixtures/{{mixture}}.jsonl",
        composition=f"{RESULTS}/data/mixtures/{{mixture}}.json",
    log:
        log=f"{LOGS}/mixture/{{mixture}}.log",
        prov=f"{LOGS}/mixture/{{mixture}}.prov.json",
    conda:
        "../../envs/data.yaml"
    params:
        m=config["mixtures"],
        flags=mixture_flags,
        code=code_hash("mixture"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} mixture --english {input.english} --parallel {input.parallel}"
        " --name {wildcards.mixture} --budget {params.m[budget]} --items {params.m[items]}"
        " --policy {params.m[policy]} --seed {params.m[seed]} {params.flags}"
        " --out {output.rows} --composition {output.composition} > {log.log} 2>&1"


rule benchmark:
    input:
        lambda wc: study.benchmark_files(config, wc.benchmark, wc.lang),
    output:
        f"{RESULTS}/benchmarks/{{benchmark}}/{{lang}}.jsonl",
    log:
        log=f"{LOGS}/benchmark/{{benchmark}}/{{lang}}.log",
        prov=f"{LOGS}/benchmark/{{benchmark}}/{{lang}}.prov.json",
    # first among the jobs ready at the start: a bad benchmark file is refused before any training
    # (docs/data-checks.md), not after it, when prediction would first need it
    priority: 50
    conda:
        "../../envs/data.yaml"
    params:
        # the preset resolved here: editing its entry in benchmarks.yaml reruns its users
        settings=lambda wc: as_json(study.benchmark_settings(config, wc.benchmark)),
        code=code_hash("benchmark"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} benchmark --name {wildcards.benchmark}"
        " --settings {params.settings} --lang {wildcards.lang} --out {output} > {log.log} 2>&1"
