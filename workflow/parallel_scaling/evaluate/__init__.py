"""Stage ``evaluate`` (workflow/rules/evaluate.smk): predictions of each checkpoint and their scores."""
