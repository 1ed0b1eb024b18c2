# `snakemake archive`: results, logs, the Snakemake report and a Workflow Run RO-Crate in one tarball.


localrules:
    archive,


rule archive:
    input:
        final_targets(),
    output:
        f"archive/{config['study']}.tar.gz",
    log:
        "logs/archive.log",
    conda:
        "../../envs/archive.yaml"
    params:
        configfiles=" ".join(f"--configfile {c}" for c in workflow.configfiles),
        snakefile=workflow.main_snakefile,
        basedir=workflow.basedir,
        config=workflow.configfiles[0],
        study=config["study"],
    shell:
        "python -m snakemake --snakefile {params.snakefile} {params.configfiles} --nolock"
        " --report results/report.zip > {log} 2>&1 && "
        "python -m parallel_scaling archive --results results --logs logs --report results/report.zip"
        " --config {params.config} --workflow-dir {params.basedir} --name {params.study}"
        " --out {output} >> {log} 2>&1"
