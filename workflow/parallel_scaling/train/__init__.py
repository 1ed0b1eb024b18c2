"""Stage ``train`` (workflow/rules/train.smk): the tiny initial model, GRPO and SFT runs through TRL."""
