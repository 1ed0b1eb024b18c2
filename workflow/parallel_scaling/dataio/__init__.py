"""Reading and writing the data every stage exchanges: JSON Lines (atomic writes), the checked data
reader (encodings, compression, malformed rows named by file and line), the config schema and the
repository's paths."""
