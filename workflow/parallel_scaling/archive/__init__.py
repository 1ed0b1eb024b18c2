"""Stage ``archive`` (workflow/rules/archive.smk): the Workflow Run RO-Crate of a run, and its check."""
