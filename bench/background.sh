# Sourced by the long study scripts: make `nice` mean something for a study run in the
# background. Linux (CONFIG_SCHED_AUTOGROUP, on by default) schedules each session -- a terminal,
# a `setsid` job -- as one group with an equal share of the CPU, and a process's nice value only
# ranks it inside its group: a study started with `setsid nice -n 19` still takes a full core
# from the work of another session, and a 2-thread torch job there stalls at every point its
# threads meet (an MLP probe fit, 600 x 768: 29 s beside the study against 1.5 s with the
# study's group lowered; bench/mlp_threads.py, BENCHMARKS.md). So a study run under nice lowers
# its whole group to its own nice value; one run at nice 0 changes nothing.
if [ "$(nice)" -gt 0 ] && [ -w /proc/self/autogroup ]; then
  echo "$(nice)" > /proc/self/autogroup 2>/dev/null || true
fi
