"""Helpers below the stages, shared by several of them: JSON Lines, numbers and answers, languages,
prompts, provenance records, output manifests, code dependencies, paths. Light to import."""
