# Source problems -> translated parallel data (one file per language) -> QC -> training mixtures.


localrules:
    source,
    qc,
    qc_table,
    mixture,
    benchmark,


rule source:
    output:
        "results/data/source/{split}.jsonl",
    log:
        log="logs/source/{split}.log",
        prov="logs/source/{split}.prov.json",
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: as_json(config["source"]),
        code=study.code_hash("sources", "synth"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} source --settings {params.settings} --split {wildcards.split}"
        " --out {output} > {log.log} 2>&1"


rule translate:
    input:
        "results/data/source/{split}.jsonl",
    output:
        rows="results/data/translated/{split}/{lang}.jsonl",
        meta="results/data/translated/{split}/{lang}.meta.json",
    log:
        log="logs/translate/{split}/{lang}.log",
        prov="logs/translate/{split}/{lang}.prov.json",
    benchmark:
        "benchmarks/translate/{split}/{lang}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: as_json(config["translation"]),
        code=study.code_hash("translate", "synth"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} translate --source {input} --lang {wildcards.lang}"
        " --settings {params.settings} --out {output.rows} > {log.log} 2>&1"


rule qc:
    input:
        source="results/data/source/train.jsonl",
        translated="results/data/translated/train/{lang}.jsonl",
    output:
        rows="results/data/parallel/train/{lang}.jsonl",
        report="results/data/qc/train/{lang}.tsv",
    log:
        log="logs/qc/{lang}.log",
        prov="logs/qc/{lang}.prov.json",
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: as_json(config["qc"]),
        code=study.code_hash("qc", "language"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} qc --source {input.source} --translated {input.translated}"
        " --lang {wildcards.lang} --settings {params.settings} --out {output.rows}"
        " --report {output.report} > {log.log} 2>&1"


rule qc_table:
    input:
        expand("results/data/qc/train/{lang}.tsv", lang=QC_LANGS),
    output:
        csv=report(
            "results/tables/qc.csv",
            caption="../report/qc.rst",
            category="Data",
            labels={"table": "translation QC"},
        ),
        md="results/tables/qc.md",
    log:
        log="logs/qc_table.log",
        prov="logs/qc_table.prov.json",
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m parallel_scaling --provenance {log.prov} qc-table --reports {input} --csv {output.csv}"
        " --markdown {output.md} > {log.log} 2>&1"


rule mixture:
    input:
        unpack(mixture_inputs),
    output:
        rows="results/data/mixtures/{mixture}.jsonl",
        composition="results/data/mixtures/{mixture}.json",
    log:
        log="logs/mixture/{mixture}.log",
        prov="logs/mixture/{mixture}.prov.json",
    conda:
        "../../envs/data.yaml"
    params:
        m=config["mixtures"],
        flags=mixture_flags,
        code=study.code_hash("mixtures"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} mixture --english {input.english} --parallel {input.parallel}"
        " --name {wildcards.mixture} --budget {params.m[budget]} --items {params.m[items]}"
        " --policy {params.m[policy]} --seed {params.m[seed]} {params.flags}"
        " --out {output.rows} --composition {output.composition} > {log.log} 2>&1"


rule benchmark:
    output:
        "results/benchmarks/{benchmark}/{lang}.jsonl",
    log:
        log="logs/benchmark/{benchmark}/{lang}.log",
        prov="logs/benchmark/{benchmark}/{lang}.prov.json",
    conda:
        "../../envs/data.yaml"
    params:
        settings=lambda wc: as_json(config["benchmarks"][wc.benchmark]),
        code=study.code_hash("benchmarks", "sources"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} benchmark --name {wildcards.benchmark}"
        " --settings {params.settings} --lang {wildcards.lang} --out {output} > {log.log} 2>&1"
