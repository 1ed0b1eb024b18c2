# `snakemake archive`: results, logs, the Snakemake report and a Workflow Run RO-Crate in one
# tarball. The command gets the config as Snakemake merged and validated it (plus the config files
# and overrides it came from), builds the report and asks for the run's DAG with that same config,
# and packs only what the run's jobs wrote or read; then it checks the archive (verify-archive).


localrules:
    archive,


rule archive:
    input:
        final_targets(),
    output:
        f"archive/{config['study']}.tar.gz",
    log:
        f"{LOGS}/archive.log",
    conda:
        "../../envs/archive.yaml"
    params:
        run_config=lambda wc: as_json(config),
        overrides=as_json(CONFIG_OVERRIDES),
        configs=" ".join(f"--config {shlex.quote(c)}" for c in CONFIG_FILES),
        snakefile=workflow.main_snakefile,
        study=config["study"],
        results=lambda wc: RESULTS,
        logs=lambda wc: LOGS,
        flags=archive_flags(),
        code=code_hash("archive"),
    shell:
        "python -m parallel_scaling archive --snakemake-dag --run-config {params.run_config}"
        " {params.configs} --overrides {params.overrides} --snakefile {params.snakefile}"
        " --workflow-dir . --results {params.results} --logs {params.logs}"
        " --report {params.results}/report.zip --name {params.study} {params.flags} --out {output}"
        " > {log} 2>&1"
