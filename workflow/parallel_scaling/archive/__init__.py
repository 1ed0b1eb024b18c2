"""Stage ``archive`` (workflow/rules/archive.smk): the Workflow Run RO-Crate of a run, and its check.

Modules, each using only those listed before it: :mod:`.dag` (what the run was, asked of
Snakemake), :mod:`.members` (which files are packed), :mod:`.profiles` (the declared profiles and
roc-validator, offline), :mod:`.crate` (the RO-Crate graph, with the ``rocrate`` library),
:mod:`.verify` (command ``verify-archive``: a reviewer's check), :mod:`.pack` (command ``archive``).
"""


class ArchiveError(ValueError):
    """A run cannot be archived as asked (missing inputs, unsafe or clashing files)."""
