# parallel-scaling: the Parallel Scaling Law study (arXiv 2510.02272) as one Snakemake DAG.
#   snakemake                     the embedded tiny study on a laptop CPU
#   snakemake --profile slurm     the same DAG on a SLURM GPU cluster (edit slurm/config.yaml)
from snakemake.utils import min_version

min_version("9.0")

# The config: config.yaml, or the study given with --configfile (which replaces it); read and checked
# in workflow/rules/common.smk before any job runs.


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/archive.smk"


rule all:
    default_target: True
    input:
        final_targets(),
