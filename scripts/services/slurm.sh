#!/usr/bin/env bash
# A single-node SLURM cluster for the test suite: `slurm.sh up|down|status`.
#
# Debian's slurm-wlm (22.05) and munge, installed when missing. Our own slurm.conf (written
# to /etc/slurm/slurm.conf, where every SLURM command and submitit look for it, and only if
# no one else's file is there): one node with this machine's CPUs and memory, one default
# partition, no accounting, requeue allowed. Process tracking by /proc and no task plugin,
# so that it needs no cgroups and runs inside a container. munged runs as its service user,
# slurmctld and slurmd as root. `up` twice changes nothing; `down` stops what `up` started.
source "$(dirname "$0")/lib.sh"

SLURM_HOME="$STATE_DIR/slurm"
SLURM_CONF=/etc/slurm/slurm.conf
PARTITION=serotiny
MARKER="# Written by serotiny's scripts/services/slurm.sh"
CTLD_PID="$SLURM_HOME/slurmctld.pid"
SLURMD_PID="$SLURM_HOME/slurmd.pid"
MUNGE_STARTED="$SLURM_HOME/munged.started"
MUNGE_PID=/run/munge/munged.pid

node_name() { uname -n | cut -d. -f1; }  # `hostname` may not be installed

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    say "slurm: creating a munge key"
    mungekey --create --keyfile=/etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o munge -g munge -m 700 /var/lib/munge /var/log/munge
  munge_works && return 0
  say "slurm: starting munged"
  (cd / && runuser -u munge -- /usr/sbin/munged)
  touch "$MUNGE_STARTED"
  wait_for munge_works || die "munged does not answer"
}

# The node line for this machine, from slurmd's own reading of it (CPUs, sockets, memory).
node_line() {
  local facts
  facts="$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //')"
  printf 'NodeName=%s NodeAddr=127.0.0.1 %s State=UNKNOWN\n' "$(node_name)" "$facts"
}

write_conf() {
  cat <<CONF
$MARKER: a single-node cluster for
# the test suite. Rewritten by \`slurm.sh up\`; remove it to use a slurm.conf of your own.
ClusterName=serotiny
SlurmctldHost=$(node_name)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SLURM_HOME/slurmctld
SlurmdSpoolDir=$SLURM_HOME/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$SLURM_HOME/slurmctld.log
SlurmdLogFile=$SLURM_HOME/slurmd.log
# No cgroups in a container: track processes through /proc, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Jobs may be requeued (preemption, \`scontrol requeue\`, submitit's timeout path).
JobRequeue=1
# Finished jobs stay visible to squeue for an hour: a test can tell what was submitted.
MinJobAge=3600
ReturnToService=2
SlurmdTimeout=300
KillWait=30
$(node_line)
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

cluster_answers() {
  scontrol ping 2>/dev/null | grep -q "is UP" \
    && sinfo -h -p "$PARTITION" -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)'
}

up() {
  need_root
  ensure_packages ${SERVICE_PACKAGES[slurm]}
  mkdir -p "$SLURM_HOME/slurmctld" "$SLURM_HOME/slurmd"
  chmod 755 "$STATE_DIR"
  # The node must resolve its own name (slurmd, and DDP's rank 0 address from the node list).
  getent hosts "$(node_name)" >/dev/null || echo "127.0.0.1 $(node_name)" >>/etc/hosts
  start_munge

  if [ -e "$SLURM_CONF" ] && ! grep -qF "$MARKER" "$SLURM_CONF"; then
    die "$SLURM_CONF is not ours; move it away to let this script write its own"
  fi
  local conf changed=""
  conf="$(write_conf)"
  if [ ! -e "$SLURM_CONF" ] || [ "$conf" != "$(cat "$SLURM_CONF")" ]; then
    mkdir -p "$(dirname "$SLURM_CONF")"
    printf '%s\n' "$conf" >"$SLURM_CONF"
    changed=1
  fi
  if [ -n "$changed" ] && { pid_alive "$CTLD_PID" || pid_alive "$SLURMD_PID"; }; then
    say "slurm: slurm.conf changed, restarting the daemons"
    stop_daemons
  fi
  if ! pid_alive "$CTLD_PID"; then
    say "slurm: starting slurmctld"
    slurmctld
  fi
  if ! pid_alive "$SLURMD_PID"; then
    say "slurm: starting slurmd"
    slurmd
  fi
  WAIT_SECONDS=60 wait_for scontrol ping || die "slurmctld does not answer ($SLURM_HOME)"
  # A node that was down when the daemons stopped comes back down: bring it back.
  if ! WAIT_SECONDS=20 wait_for cluster_answers; then
    scontrol update NodeName="$(node_name)" State=RESUME >/dev/null 2>&1 || true
    WAIT_SECONDS=60 wait_for cluster_answers || {
      sinfo -N -l >&2 || true
      die "the node is not up (logs in $SLURM_HOME)"
    }
  fi
  local cpus memory
  cpus="$(sinfo -h -N -p "$PARTITION" -o %c | head -1)"
  memory="$(sinfo -h -N -p "$PARTITION" -o %m | head -1)"
  env_set SEROTINY_SLURM_PARTITION "$PARTITION"
  env_set SEROTINY_SLURM_CPUS "$cpus"
  env_set SEROTINY_SLURM_MEMORY_MB "$memory"
  say "slurm: up (partition $PARTITION, one node of $cpus CPUs and $memory MB)"
}

stop_daemons() {
  stop_pid_file "$SLURMD_PID" 30
  stop_pid_file "$CTLD_PID" 30
}

down() {
  env_unset_prefix SEROTINY_SLURM_
  if pid_alive "$CTLD_PID" || pid_alive "$SLURMD_PID"; then
    say "slurm: stopping slurmd and slurmctld"
    # Jobs still running would outlive slurmd: cancel them first.
    scancel --full --quiet --partition "$PARTITION" 2>/dev/null || true
    stop_daemons
  fi
  if [ -e "$MUNGE_STARTED" ]; then
    say "slurm: stopping munged"
    stop_pid_file "$MUNGE_PID" 10
    rm -f "$MUNGE_STARTED"
  fi
}

status() {
  command -v scontrol >/dev/null && cluster_answers
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if status; then echo "slurm: up"; else echo "slurm: down"; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
