"""Stage ``data`` (workflow/rules/data.smk): source problems, parallel translations, QC, training
mixtures, benchmarks."""
