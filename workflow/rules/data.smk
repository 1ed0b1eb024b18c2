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
    params:
        settings=lambda wc: as_json(config["source"]),
        code=study.code_hash("sources", "synth"),
    log:
        log="logs/source/{split}.log",
        prov="logs/source/{split}.prov.json",
    shell:
        "{PS} --provenance {log.prov} source --settings {params.settings} --split {wildcards.split}"
        " --out {output} > {log.log} 2>&1"


rule translate:
    input:
        "results/data/source/{split}.jsonl",
    output:
        rows="results/data/translated/{split}/{lang}.jsonl",
        meta="results/data/translated/{split}/{lang}.meta.json",
    params:
        settings=lambda wc: as_json(config["translation"]),
        code=study.code_hash("translate", "synth"),
    log:
        log="logs/translate/{split}/{lang}.log",
        prov="logs/translate/{split}/{lang}.prov.json",
    benchmark:
        "benchmarks/translate/{split}/{lang}.tsv"
    shell:
        "{PS} --provenance {log.prov} translate --source {input} --lang {wildcards.lang}"
        " --settings {params.settings} --out {output.rows} > {log.log} 2>&1"


rule qc:
    input:
        source="results/data/source/train.jsonl",
        translated="results/data/translated/train/{lang}.jsonl",
    output:
        rows="results/data/parallel/train/{lang}.jsonl",
        report="results/data/qc/train/{lang}.tsv",
    params:
        settings=lambda wc: as_json(config["qc"]),
        code=study.code_hash("qc", "language"),
    log:
        log="logs/qc/{lang}.log",
        prov="logs/qc/{lang}.prov.json",
    shell:
        "{PS} --provenance {log.prov} qc --source {input.source} --translated {input.translated}"
        " --lang {wildcards.lang} --settings {params.settings} --out {output.rows}"
        " --report {output.report} > {log.log} 2>&1"


rule qc_table:
    input:
        expand("results/data/qc/train/{lang}.tsv", lang=ALL_LANGS),
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
    shell:
        "{PS} --provenance {log.prov} qc-table --reports {input} --csv {output.csv}"
        " --markdown {output.md} > {log.log} 2>&1"


def mixture_inputs(wildcards):
    mix = study.mixture(config, wildcards.mixture)
    return {
        "english": "results/data/parallel/train/" + EN + ".jsonl",
        "parallel": [f"results/data/parallel/train/{lg}.jsonl" for lg in mix.langs if lg != EN],
    }


def mixture_flags(wildcards):
    return "" if EN in study.mixture(config, wildcards.mixture).langs else "--no-english"


rule mixture:
    input:
        unpack(mixture_inputs),
    output:
        rows="results/data/mixtures/{mixture}.jsonl",
        composition="results/data/mixtures/{mixture}.json",
    params:
        m=config["mixtures"],
        flags=mixture_flags,
        code=study.code_hash("mixtures"),
    log:
        log="logs/mixture/{mixture}.log",
        prov="logs/mixture/{mixture}.prov.json",
    shell:
        "{PS} --provenance {log.prov} mixture --english {input.english} --parallel {input.parallel}"
        " --name {wildcards.mixture} --budget {params.m[budget]} --items {params.m[items]}"
        " --policy {params.m[policy]} --seed {params.m[seed]} {params.flags}"
        " --out {output.rows} --composition {output.composition} > {log.log} 2>&1"


rule benchmark:
    output:
        "results/benchmarks/{benchmark}/{lang}.jsonl",
    params:
        settings=lambda wc: as_json(config["benchmarks"][wc.benchmark]),
        code=study.code_hash("benchmarks", "sources"),
    log:
        log="logs/benchmark/{benchmark}/{lang}.log",
        prov="logs/benchmark/{benchmark}/{lang}.prov.json",
    shell:
        "{PS} --provenance {log.prov} benchmark --name {wildcards.benchmark}"
        " --settings {params.settings} --lang {wildcards.lang} --out {output} > {log.log} 2>&1"
