# `snakemake archive`: results, logs, the Snakemake report and a Workflow Run RO-Crate in one tarball.


localrules:
    archive,


rule archive:
    input:
        final_targets(),
    output:
        f"archive/{config['study']}.tar.gz",
    params:
        configfiles=" ".join(f"--configfile {c}" for c in workflow.configfiles),
        snakefile=workflow.main_snakefile,
    log:
        "logs/archive.log",
    shell:
        "{PYTHON} -m snakemake --snakefile {params.snakefile} {params.configfiles} --nolock"
        " --report results/report.zip > {log} 2>&1 && "
        "{PS} archive --results results --logs logs --report results/report.zip"
        " --config {workflow.configfiles[0]} --workflow-dir {workflow.basedir} --name {config[study]}"
        " --out {output} >> {log} 2>&1"
