# Sourced by the bench scripts: how a run's wall and CPU time are reported.
# cpu_report WALL USER SYS CORES: CPU seconds (user + system of every process the run waited for,
# as bash's `time` gives them) and CPU seconds / cores, the wall time with every core busy throughout.
cpu_report() {
    awk -v w="$1" -v u="$2" -v s="$3" -v c="$4" 'BEGIN {
        printf "wall time: %.0f s\nCPU time: %.0f s (user %.0f + system %.0f); / %d cores = %.0f s, %.0f %% of the cores busy\n",
               w, u + s, u, s, c, (u + s) / c, 100 * (u + s) / (c * w) }'
}
