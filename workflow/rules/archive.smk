# `snakemake archive`: results, logs, the Snakemake report and a Workflow Run RO-Crate in one tarball.


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
        configfiles=" ".join(
            f"--configfile {c}"
            for c in (workflow.config_settings.configfiles or workflow.configfiles)
        ),
        snakefile=workflow.main_snakefile,
        basedir=workflow.basedir,
        config=workflow.configfiles[0],
        study=config["study"],
        results=lambda wc: RESULTS,
        logs=lambda wc: LOGS,
        code=code_hash("archive"),
    shell:
        "python -m snakemake --snakefile {params.snakefile} {params.configfiles} --nolock"
        " --report {params.results}/report.zip > {log} 2>&1 && "
        "python -m parallel_scaling archive --results {params.results} --logs {params.logs} --report {params.results}/report.zip"
        " --config {params.config} --workflow-dir {params.basedir} --name {params.study}"
        " --out {output} >> {log} 2>&1"
