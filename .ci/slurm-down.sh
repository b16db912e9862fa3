#!/usr/bin/env bash
# .ci/slurm-down.sh - our copy of shared/slurm/slurm-local-down.sh (research/slurm.md).
# slurm-local-down.sh - stop only the daemons slurm-local-up.sh started (PIDs in $S/pids), newest first.
S=${SLURM_CI_DIR:-/tmp/slurm-ci}
# cancel leftover jobs first, otherwise their slurmstepd/job processes outlive slurmd
if [ -f "$S/pids/slurmctld" ] && kill -0 "$(cat "$S/pids/slurmctld")" 2>/dev/null; then
  scancel --full -p debug 2>/dev/null || true
  for _ in $(seq 1 40); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.25; done
fi
for d in slurmd slurmctld slurmdbd mariadbd munged; do
  f="$S/pids/$d"; [ -f "$f" ] || continue
  pid=$(cat "$f")
  # only signal the PID if it is still the daemon we started (guards against PID reuse)
  if [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$d" ]; then
    kill -TERM "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && { echo "$d ($pid) ignored SIGTERM for 30 s, sending SIGKILL"; kill -KILL "$pid"; }
    echo "stopped $d ($pid)"
  fi
  rm -f "$f"
done
