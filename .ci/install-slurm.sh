#!/usr/bin/env bash
# Install the Debian/Ubuntu packages needed by the single-node SLURM test
# cluster (tests/slurm_cluster.py): slurmctld, slurmd, the client commands
# (sbatch, squeue, sinfo, scontrol, srun, sacct) and munge.
#
# Idempotent and quiet: exits 0 without touching apt when every binary is
# already present. Only root can install; as another user it reports what is
# missing and exits 0, so that the SLURM tests are skipped instead of failing.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)
BINARIES=(slurmctld slurmd sbatch squeue sinfo scontrol srun scancel munged)

PATH="${PATH}:/usr/sbin:/sbin"

missing=()
for bin in "${BINARIES[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-slurm: all SLURM/munge binaries present, nothing to do"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-slurm: missing ${missing[*]}; not root, skipping install" \
         "(SLURM tests will be skipped)" >&2
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-slurm: missing ${missing[*]} and apt-get is unavailable" >&2
    exit 1
fi

echo "install-slurm: installing ${PACKAGES[*]} (missing: ${missing[*]})"
export DEBIAN_FRONTEND=noninteractive

# The packages' maintainer scripts would start munged/slurmctld/slurmd as
# system services (with /etc/slurm/slurm.conf, which does not exist). The test
# fixture runs its own daemons from a private config, so forbid service starts
# during the install with a temporary policy-rc.d (honoured by invoke-rc.d and
# deb-systemd-invoke), unless the host already has one.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null

for bin in "${BINARIES[@]}"; do
    if ! command -v "$bin" >/dev/null 2>&1; then
        echo "install-slurm: $bin still missing after install" >&2
        exit 1
    fi
done
echo "install-slurm: done"
