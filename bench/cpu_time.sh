# Sourced by the bench scripts: how a run's wall and CPU time are reported.
# cpu_report WALL USER SYS CORES: CPU seconds (user + system of every process the run waited for,
# as bash's `time` gives them) and CPU seconds / cores, the wall time with every core busy throughout.
cpu_report() {
    awk -v w="$1" -v u="$2" -v s="$3" -v c="$4" 'BEGIN {
        printf "wall time: %.0f s\nCPU time: %.0f s (user %.0f + system %.0f); / %d cores = %.0f s, %.0f %% of the cores busy\n",
               w, u + s, u, s, c, (u + s) / c, 100 * (u + s) / (c * w) }'
}

# machine_cpu: the CPU seconds every process of the machine has used since boot (/proc/stat: user,
# nice, system, irq, softirq, steal). The difference over a run counts what bash's `time` cannot:
# processes the run started but did not wait for (warm servers, parallel_scaling/jobs/warm.py, are
# handed to init when the job that started them ends). On a quiet machine only.
machine_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.1f\n", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# machine_report CPU_BEFORE CPU_AFTER WALL CORES
machine_report() {
    awk -v a="$1" -v b="$2" -v w="$3" -v c="$4" 'BEGIN {
        printf "machine CPU time during the run (all processes, /proc/stat): %.0f s; / %d cores = %.0f s, %.0f %% of the cores busy\n",
               b - a, c, (b - a) / c, 100 * (b - a) / (c * w) }'
}
