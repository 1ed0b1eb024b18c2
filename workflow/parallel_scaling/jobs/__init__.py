"""What every job runs in: provenance records, code hashes and pins, warm start, output manifests,
locks, the failure summary, console warnings, file permissions, preflight checks, secret redaction,
CPU numerics. None of it changes a result; all of it makes a run checkable and resumable."""
