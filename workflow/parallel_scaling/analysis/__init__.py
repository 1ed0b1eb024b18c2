"""Stage ``analysis`` (workflow/rules/analysis.smk): accuracy and MTI tables, the Parallel Scaling
Law with its bootstrap intervals, and the figures."""
