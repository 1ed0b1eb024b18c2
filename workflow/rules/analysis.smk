# Metric tables, the parallel scaling law, and plots (all in the Snakemake report).


localrules:
    analyze,
    plot_training,


rule analyze:
    input:
        scored=[scored(run) for run in RUNS],
    output:
        acc=report(
            "results/tables/accuracy.csv",
            caption="../report/accuracy.rst",
            category="Tables",
            labels={"table": "accuracy (long)"},
        ),
        acc_md=report(
            "results/tables/accuracy.md",
            caption="../report/accuracy.rst",
            category="Tables",
            labels={"table": "accuracy (wide)"},
        ),
        acc_tex="results/tables/accuracy.tex",
        mti=report(
            "results/tables/mti.csv",
            caption="../report/mti.rst",
            category="Tables",
            labels={"table": "MTI"},
        ),
        law=report(
            "results/tables/law.csv",
            caption="../report/law.rst",
            category="Parallel scaling law",
            labels={"table": "law parameters"},
        ),
        law_md=report(
            "results/tables/law.md",
            caption="../report/law.rst",
            category="Parallel scaling law",
            labels={"table": "law summary"},
        ),
        fit="results/law/fit.json",
        scaling=report(
            "results/plots/scaling.png",
            caption="../report/scaling.rst",
            category="Parallel scaling law",
            labels={"figure": "scaling curve"},
        ),
        scaling_pdf="results/plots/scaling.pdf",
        heatmap=report(
            "results/plots/heatmap.png",
            caption="../report/heatmap.rst",
            category="Figures",
            labels={"figure": "language x k heatmap"},
        ),
        heatmap_pdf="results/plots/heatmap.pdf",
        mti_plot=report(
            "results/plots/mti.png",
            caption="../report/mti.rst",
            category="Figures",
            labels={"figure": "MTI"},
        ),
        mti_pdf="results/plots/mti.pdf",
    log:
        log="logs/analyze.log",
        prov="logs/analyze.prov.json",
    conda:
        "../../envs/analysis.yaml"
    params:
        a=config["analysis"],
        english=EN,
        english_counts=(
            "--english-counts"
            if config["analysis"]["english_counts"]
            else "--no-english-counts"
        ),
        offset="--offset" if config["analysis"]["offset"] else "",
        # benchmarks with difficulty weights (e.g. PolyMath) get a difficulty-weighted accuracy
        weights=(
            f"--difficulty-weights {as_json(DIFFICULTY_WEIGHTS)}"
            if DIFFICULTY_WEIGHTS
            else ""
        ),
        code=study.code_hash("analysis", "metrics", "scaling_law", "plots"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} analyze --scored {input.scored} --outdir results --english {params.english}"
        " --y {params.a[y]} {params.english_counts} {params.offset} --n-boot {params.a[n_boot]}"
        " --seed {params.a[seed]} --mti-formula {params.a[mti_formula]} --level {params.a[level]}"
        " {params.weights} > {log.log} 2>&1"


rule plot_training:
    input:
        [
            f"results/checkpoints/{r.model}/{r.paradigm}/{r.mixture}/s{r.seed}/training_settings.json"
            for r in trained_runs()
        ],
    output:
        png=report(
            "results/plots/training.png",
            caption="../report/training.rst",
            category="Figures",
            labels={"figure": "training curves"},
        ),
        pdf="results/plots/training.pdf",
    log:
        log="logs/plot_training.log",
        prov="logs/plot_training.prov.json",
    conda:
        "../../envs/analysis.yaml"
    params:
        checkpoints=[
            f"results/checkpoints/{r.model}/{r.paradigm}/{r.mixture}/s{r.seed}"
            for r in trained_runs()
        ],
        labels=[f"{r.model}/{r.paradigm}/{r.mixture}/s{r.seed}" for r in trained_runs()],
        code=study.code_hash("training_plots", "plots"),
    shell:
        "python -m parallel_scaling --provenance {log.prov} plot-training --checkpoints {params.checkpoints} --labels {params.labels}"
        " --out {output.png} > {log.log} 2>&1"
