#!/usr/bin/env bash
# A real SLURM launch on one machine: starts a one-node SLURM cluster (munge, slurmctld,
# slurmd; Debian's slurm-wlm, installed if missing; needs root), then checks that
#   srun --ntasks 2 pretext pretrain ...   trains the same weights, byte for byte, as
#   torchrun --nproc-per-node 2 ...        (both: 2 Gloo processes, one libtorch thread each)
# and that `srun --ntasks 2 pretext finetune` reports what one process does.
# The daemons it started are stopped at the end; its files stay in the folder printed.
#
#   bash bench/slurm-local.sh            # after ./x build (uses target/release/pretext)
set -euo pipefail
cd "$(dirname "$0")/.."
pretext=${PRETEXT:-$PWD/target/release/pretext}
[[ -x $pretext ]] || { echo "error: $pretext is missing: build it first (./x build)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "error: starting SLURM's daemons needs root" >&2; exit 1; }
if ! command -v srun >/dev/null || ! command -v slurmctld >/dev/null; then
    echo "installing slurm-wlm (Debian)..."
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm >/dev/null
fi
torchrun=${TORCHRUN:-$(command -v torchrun || echo "$HOME/.cache/pretext/venv/bin/torchrun")}
[[ -x $torchrun ]] || { echo "error: no torchrun (./x env sets up the venv that has it)" >&2; exit 1; }

work=$(mktemp -d /tmp/pretext-slurm.XXXXXX)
node=$(hostname)
mkdir -p "$work/spool/ctld" "$work/spool/d" /run/munge
export SLURM_CONF=$work/slurm.conf
cat > "$SLURM_CONF" <<EOF
ClusterName=pretextlocal
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPort=16817
SlurmdPort=16818
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmdSpoolDir=$work/spool/d
StateSaveLocation=$work/spool/ctld
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
JobCompType=jobcomp/none
MpiDefault=none
NodeName=$node CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

started=()
stop() {
    for pidfile in "${started[@]}"; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
}
trap stop EXIT
if ! pgrep -x munged >/dev/null; then
    [[ -f /etc/munge/munge.key ]] || mungekey -c
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    su -s /bin/sh munge -c /usr/sbin/munged
fi
slurmctld -f "$SLURM_CONF" && started+=("$work/slurmctld.pid")
slurmd -f "$SLURM_CONF" && started+=("$work/slurmd.pid")
for _ in $(seq 30); do
    sinfo -h -o %T 2>/dev/null | grep -qx idle && break
    sleep 1
done
sinfo

export OMP_NUM_THREADS=1 MASTER_PORT=29531
args=(pretrain --method simclr --data embedded --steps 20 --batch-size 64 --workers 1
      --set health.knn_every=0 --set train.log_every=1)
echo "== srun --ntasks 2 pretext pretrain (20 SimCLR steps, global batch 64)"
srun --ntasks 2 --kill-on-bad-exit=1 "$pretext" "${args[@]}" --out "$work/srun" 2> "$work/srun.log"
grep -E "data parallel|done:" "$work/srun.log"
echo "== torchrun --nproc-per-node 2 --no-python pretext pretrain (the same)"
"$torchrun" --nproc-per-node 2 --master-port 29532 --no-python "$pretext" "${args[@]}" --out "$work/torchrun" 2> "$work/torchrun.log"
weights=checkpoints/step-20/weights.safetensors
if cmp -s "$work/srun/$weights" "$work/torchrun/$weights"; then
    echo "the same weights after 20 steps, byte for byte"
else
    echo "error: srun and torchrun trained different weights" >&2
    exit 1
fi

echo "== pretext finetune: one process, then srun --ntasks 2"
finetune=(finetune "$work/srun" --labels 600 --epochs 5)
"$pretext" "${finetune[@]}" --json "$work/one.json" 2> "$work/finetune-one.log" | grep "^test accuracy"
srun --ntasks 2 --kill-on-bad-exit=1 "$pretext" "${finetune[@]}" --json "$work/two.json" \
    2> "$work/finetune-two.log" | grep "^test accuracy"
python3 - "$work/one.json" "$work/two.json" <<'EOF'
import json, sys
one, two = (json.load(open(path)) for path in sys.argv[1:])
gap = max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(one["epochs"], two["epochs"]))
print(f"epoch losses within {gap:.1e} (relative); held-out accuracy "
      f"{100 * one['test_accuracy']:.2f}% vs {100 * two['test_accuracy']:.2f}%")
sys.exit(0 if gap < 1e-3 and abs(one["test_accuracy"] - two["test_accuracy"]) <= 0.01 else 1)
EOF
echo "done; files in $work"
