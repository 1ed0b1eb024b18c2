"""Planning: the study's shape derived from the validated config (imported by the Snakefile, so
light to import), its checks, and the GPU cost plan."""
