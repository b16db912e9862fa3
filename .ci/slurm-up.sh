#!/usr/bin/env bash
# .ci/slurm-up.sh - our copy of shared/slurm/slurm-local-up.sh (research/slurm.md), used by .ci/run and
# tests/test_slurm.py: `bash .ci/slurm-up.sh` as root, then `export BENCH_SLURM=1`; stop with .ci/slurm-down.sh.
# slurm-local-up.sh - single-node SLURM (Debian 12 slurm-wlm 22.05) on localhost, no systemd.
# Runs as root. Starts: munged, [mariadbd, slurmdbd], slurmctld, slurmd - each recorded by PID in $S/pids/.
# Usage:  bash slurm-local-up.sh            (state under ${SLURM_CI_DIR:-/tmp/slurm-ci})
# Env:    SLURM_WITH_DBD=1|0   (default 1) MariaDB + slurmdbd so that `sacct` works. submitit reads
#                              job states with sacct; without it states stay UNKNOWN and a cancelled
#                              job's .result() never returns.
#         SLURM_FAKE_GPUS=N    (default 0) advertise N fake GPUs (gres/gpu) so --gpus-per-node=K<=N
#                              is accepted and CUDA_VISIBLE_DEVICES is set; no real GPU is involved.
#         SLURM_CPUS / SLURM_MEM_MB  override the node's CPUs / RealMemory (default: detected; MB is
#                              90% of MemTotal). Values above the hardware work (config_overrides).
set -euo pipefail
S=${SLURM_CI_DIR:-/tmp/slurm-ci}
WITH_DBD=${SLURM_WITH_DBD:-1}
NGPU=${SLURM_FAKE_GPUS:-0}
H=$(hostname -s)
CPUS=${SLURM_CPUS:-$(nproc)}
MEM=${SLURM_MEM_MB:-$(awk '/MemTotal/ {print int($2/1024*0.9)}' /proc/meminfo)}
t0=$(date +%s)
log() { echo "[slurm-local-up +$(( $(date +%s) - t0 ))s] $*"; }
alive() { [ -f "$S/pids/$1" ] && kill -0 "$(cat "$S/pids/$1")" 2>/dev/null; }
waitfor() { # waitfor SECONDS DESCRIPTION COMMAND...
  local n=$1 what=$2; shift 2
  for _ in $(seq 1 $((n * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "timeout waiting for $what; logs in $S/log" >&2; tail -n 30 "$S"/log/* >&2 || true; return 1
}

if alive slurmctld && alive slurmd; then log "already running (pids in $S/pids)"; exit 0; fi
for d in munged mariadbd slurmdbd slurmctld slurmd; do
  if alive $d; then echo "partial cluster left running ($d); run slurm-local-down.sh first" >&2; exit 1; fi
done

# 1. packages (about 7 s without DBD, +12 s with it, on a fresh Debian 12 with apt lists updated)
pkgs="munge slurmctld slurmd slurm-client"
[ "$WITH_DBD" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
# shellcheck disable=SC2086
if ! dpkg -s $pkgs >/dev/null 2>&1; then
  [ -n "$(find /var/lib/apt/lists -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ] || apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
log "packages installed"

# 2. fresh state every time (job ids restart at 1, so the accounting DB is wiped too)
mkdir -p "$S"/{pids,log}
rm -rf "$S/ctld" "$S/spool"
mkdir -p "$S/ctld" "$S/spool"
chown slurm:slurm "$S/ctld" "$S/log"
getent hosts "$H" >/dev/null || echo "127.0.0.1 $H" >> /etc/hosts

GRES_NODE=""; GRES_TYPES=""
rm -f /etc/slurm/gres.conf
if [ "$NGPU" -gt 0 ]; then
  # gres/gpu drops "file-less" GPUs, and wants character devices: make N nodes that are /dev/null
  mkdir -p "$S/fakegpu"
  for i in $(seq 0 $((NGPU - 1))); do
    [ -c "$S/fakegpu/nvidia$i" ] || mknod "$S/fakegpu/nvidia$i" c 1 3
  done
  echo "NodeName=$H Name=gpu File=$S/fakegpu/nvidia[0-$((NGPU - 1))]" > /etc/slurm/gres.conf
  GRES_NODE="Gres=gpu:$NGPU"; GRES_TYPES="GresTypes=gpu"
fi

if [ "$WITH_DBD" = 1 ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819"
else
  ACCT="AccountingStorageType=accounting_storage/none"
fi

mkdir -p /etc/slurm
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=localci
SlurmctldHost=$H(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
# requeued jobs wait cred_expire seconds before they may start again (default 120)
AuthInfo=cred_expire=10
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$ACCT
SchedulerType=sched/backfill
# test all pending jobs every 2 s (defaults 60 s / 30 s): requeued or blocked jobs start sooner
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
# SIGTERM->SIGKILL grace on cancel (default 30 s); submitit jobs ignore SIGTERM, so this is how
# long a cancelled submitit job keeps its CPUs
KillWait=5
# trust the CPUs/RealMemory below even if the hardware reports less
SlurmdParameters=config_overrides
MailProg=/bin/true
StateSaveLocation=$S/ctld
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/pids/slurmctld.self
SlurmdPidFile=$S/pids/slurmd.self
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
$GRES_TYPES
NodeName=$H NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM $GRES_NODE State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
log "wrote /etc/slurm/slurm.conf (node $H CPUs=$CPUS RealMemory=$MEM gpus=$NGPU)"

# 3. munge (the package generates /etc/munge/munge.key at install time)
[ -s /etc/munge/munge.key ] || { mungekey -c -f -k /etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F </dev/null >"$S/log/munged.out" 2>&1 &
echo $! > "$S/pids/munged"
waitfor 15 munged sh -c 'munge -n | unmunge'
log "munged up (pid $(cat "$S/pids/munged"))"

# 4. MariaDB + slurmdbd
if [ "$WITH_DBD" = 1 ]; then
  mkdir -p /run/mysqld && chown mysql:root /run/mysqld
  /usr/sbin/mariadbd --user=mysql --skip-log-bin --innodb-buffer-pool-size=64M \
    </dev/null >"$S/log/mariadbd.out" 2>&1 &
  echo $! > "$S/pids/mariadbd"
  waitfor 60 mariadbd mariadb -uroot -e 'select 1'
  mariadb -uroot -e "DROP DATABASE IF EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmci';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
DebugLevel=info
LogFile=$S/log/slurmdbd.log
PidFile=$S/pids/slurmdbd.self
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmci
StorageLoc=slurm_acct_db
EOF
  chown slurm:slurm /etc/slurm/slurmdbd.conf; chmod 600 /etc/slurm/slurmdbd.conf
  /usr/sbin/slurmdbd -D </dev/null >"$S/log/slurmdbd.out" 2>&1 &
  echo $! > "$S/pids/slurmdbd"
  waitfor 60 slurmdbd bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819'
  log "mariadbd + slurmdbd up"
fi

# 5. slurmctld + slurmd
/usr/sbin/slurmctld -D </dev/null >"$S/log/slurmctld.out" 2>&1 &
echo $! > "$S/pids/slurmctld"
waitfor 60 slurmctld sh -c 'scontrol ping | grep -q UP'
/usr/sbin/slurmd -D </dev/null >"$S/log/slurmd.out" 2>&1 &
echo $! > "$S/pids/slurmd"
waitfor 60 "node idle" sh -c '[ "$(sinfo -h -N -o %t)" = idle ]'
if [ "$WITH_DBD" = 1 ]; then waitfor 30 "cluster in slurmdbd" sh -c 'sacctmgr -n -P show cluster format=cluster | grep -q localci'; fi
srun -t 1 hostname >/dev/null
log "cluster up: $(sinfo -h -o '%P %a %D %t %G')"
