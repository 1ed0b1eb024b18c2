# Metric tables, the parallel scaling law, and plots (all in the Snakemake report).


localrules:
    analyze,
    plot_training,


rule analyze:
    input:
        scored=[scored(run) for run in RUNS],
    output:
        acc=report(
            f"{RESULTS}/tables/accuracy.csv",
            caption="../report/accuracy.rst",
            category="Tables",
            labels={"table": "accuracy (long)"},
        ),
        acc_md=report(
            f"{RESULTS}/tables/accuracy.md",
            caption="../report/accuracy.rst",
            category="Tables",
            labels={"table": "accuracy (wide)"},
        ),
        acc_tex=f"{RESULTS}/tables/accuracy.tex",
        mti=report(
            f"{RESULTS}/tables/mti.csv",
            caption="../report/mti.rst",
            category="Tables",
            labels={"table": "MTI"},
        ),
        law=report(
            f"{RESULTS}/tables/law.csv",
            caption="../report/law.rst",
            category="Parallel scaling law",
            labels={"table": "law parameters"},
        ),
        law_md=report(
            f"{RESULTS}/tables/law.md",
            caption="../report/law.rst",
            category="Parallel scaling law",
            labels={"table": "law summary"},
        ),
        fit=f"{RESULTS}/law/fit.json",
        scaling=report(
            f"{RESULTS}/plots/scaling.png",
            caption="../report/scaling.rst",
            category="Parallel scaling law",
            labels={"figure": "scaling curve"},
        ),
        scaling_pdf=f"{RESULTS}/plots/scaling.pdf",
        heatmap=report(
            f"{RESULTS}/plots/heatmap.png",
            caption="../report/heatmap.rst",
            category="Figures",
            labels={"figure": "language x k heatmap"},
        ),
        heatmap_pdf=f"{RESULTS}/plots/heatmap.pdf",
        mti_plot=report(
            f"{RESULTS}/plots/mti.png",
            caption="../report/mti.rst",
            category="Figures",
            labels={"figure": "MTI"},
        ),
        mti_pdf=f"{RESULTS}/plots/mti.pdf",
    log:
        log=f"{LOGS}/analyze.log",
        prov=f"{LOGS}/analyze.prov.json",
    conda:
        "../../envs/analysis.yaml"
    params:
        a=config["analysis"],
        outdir=lambda wc, output: os.path.dirname(os.path.dirname(output.acc)),
        english=EN,
        english_counts=(
            "--english-counts"
            if config["analysis"]["english_counts"]
            else "--no-english-counts"
        ),
        offset="--offset" if config["analysis"]["offset"] else "",
        law="" if config["analysis"]["law"] else "--no-law",
        # benchmarks with difficulty weights (e.g. PolyMath) get a difficulty-weighted accuracy
        weights=(
            f"--difficulty-weights {as_json(DIFFICULTY_WEIGHTS)}"
            if DIFFICULTY_WEIGHTS
            else ""
        ),
        code=code_hash("analyze"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} analyze --scored {input.scored} --outdir {params.outdir} --english {params.english}"
        " --y {params.a[y]} {params.english_counts} {params.offset} {params.law} --n-boot {params.a[n_boot]}"
        " --seed {params.a[seed]} --mti-formula {params.a[mti_formula]} --level {params.a[level]}"
        " {params.weights} > {log.log} 2>&1"


rule plot_training:
    input:
        [checkpoint_dir(r.model, r.paradigm, r.mixture, r.seed) for r in trained_runs()],
    output:
        png=report(
            f"{RESULTS}/plots/training.png",
            caption="../report/training.rst",
            category="Figures",
            labels={"figure": "training curves"},
        ),
        pdf=f"{RESULTS}/plots/training.pdf",
    log:
        log=f"{LOGS}/plot_training.log",
        prov=f"{LOGS}/plot_training.prov.json",
    conda:
        "../../envs/analysis.yaml"
    params:
        labels=[f"{r.model}/{r.paradigm}/{r.mixture}/s{r.seed}" for r in trained_runs()],
        code=code_hash("plot-training"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} plot-training --checkpoints {input} --labels {params.labels}"
        " --out {output.png} > {log.log} 2>&1"
