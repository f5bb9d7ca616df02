#!/bin/bash
# A quick before/after of small-file transfers: several ft builds and an rsync daemon, in
# interleaved rounds, each copy into a fresh directory (nothing is deleted between rounds).
#
#   bench/ab_small.sh DISK SRCDIR ROUNDS BINDIR...
#   TLS=1 bench/ab_small.sh /mnt/ftj /usr/share/man/man1 3 /tmp/ft-old /work/main/target/release
#
# DISK: where the copies go (a fresh journaled ext4 image, or /var/tmp); SRCDIR: a directory
# of real files, copied once to DISK (symbolic links left out; names ft refuses, such as
# those holding ':', must not be in it); BINDIR: each holds an ftserver and an ftclient.
# Each round, for each build then rsync: put -r into a fresh directory, then get -r into a
# fresh directory; the page cache is synced before each run. Prints wall time, files/s, the
# client's user and system CPU seconds and the server's CPU in clock ticks (1/100 s; for
# rsync the daemon's children). ft runs with --plain unless TLS=1. Each copy is checked to
# hold as many files and bytes as the source (not byte by byte: bench/run.py's corpus
# workload does that). Everything it started is stopped when it ends, and DISK/ab removed.
# bench/run.py --only corpus is the reference; this script is for telling builds apart fast.
set -euo pipefail
DISK=$1; SRC=$2; R=$3; shift 3; BINS=("$@")
W=$DISK/ab
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f -- "--config=$W/rsyncd.conf" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W"; mkdir -p "$W/data/src" "$W/root" "$W/state"
NAME=$(basename "$SRC")
cp -a "$SRC" "$W/data/src/$NAME"; cp -a "$SRC" "$W/root/$NAME"; find "$W" -type l -delete
N=$(find "$W/data/src/$NAME" -type f | wc -l)
BYTES=$(find "$W/data/src/$NAME" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
echo "files $N, bytes $BYTES"
cat > "$W/rsyncd.conf" <<C
pid file = $W/rsyncd.pid
use chroot = no
[bench]
path = $W/data
read only = no
uid = root
gid = root
C
RPORT=$((20000 + RANDOM % 20000))
rsync --daemon --config="$W/rsyncd.conf" --port=$RPORT --address=127.0.0.1
declare -A PORT SPID
i=0
for B in "${BINS[@]}"; do
  i=$((i + 1))
  if [ -n "${TLS:-}" ]; then SF=(--state-dir "$W/state"); else SF=(--plain); fi
  mkdir -p "$W/data/put$i"
  "$B/ftserver" $((RPORT + i)) --bind 127.0.0.1 --root "$W/data/put$i" "${SF[@]}" > "$W/srv$i.log" 2>&1 &
  SPID[p$i]=$!; PORT[p$i]=$((RPORT + i)); PIDS+=($!)
  sleep 1  # the first start makes the TLS identity the others share
  "$B/ftserver" $((RPORT + 100 + i)) --bind 127.0.0.1 --root "$W/root" "${SF[@]}" > "$W/gsrv$i.log" 2>&1 &
  SPID[g$i]=$!; PORT[g$i]=$((RPORT + 100 + i)); PIDS+=($!)
done
sleep 1
if [ -n "${TLS:-}" ]; then CF=(--fingerprint "$(awk '/^fingerprint/ {print $2}' "$W/srv1.log")"); else CF=(--plain); fi
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rsync_cpu() { awk '{print $16 + $17}' "/proc/$(cat "$W/rsyncd.pid")/stat"; }
check() {  # DIR: as many files and bytes as the source
  local n b
  n=$(find "$1" -type f | wc -l); b=$(find "$1" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  [ "$n" = "$N" ] && [ "$b" = "$BYTES" ] || { echo "CHECK FAILED: $1 holds $n files, $b bytes"; exit 1; }
}
run() {  # LABEL DEST COMMAND...: prints wall, files/s, client CPU
  local label=$1 dest=$2; shift 2
  sync
  local t0 t1
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$W/t" "$@" > /dev/null
  t1=$(date +%s.%N)
  check "$dest"
  printf "%-40s %6.3f s %6.0f files/s cli %s" "$label" "$(echo "$t1 - $t0" | bc)" \
    "$(echo "$N / ($t1 - $t0)" | bc)" "$(cat "$W/t")"
}
k=0
for r in $(seq "$R"); do
  i=0
  for B in "${BINS[@]}"; do
    i=$((i + 1)); k=$((k + 1)); c0=$(cpu "${SPID[p$i]}")
    run "put $B" "$W/data/put$i/p$k" "$B/ftclient" "${CF[@]}" --dir "$W/data/src" 127.0.0.1 "${PORT[p$i]}" put -r --to "p$k" "$NAME"
    echo " srv $(( $(cpu "${SPID[p$i]}") - c0 ))"
  done
  k=$((k + 1)); mkdir "$W/data/rp$k"; d0=$(rsync_cpu)
  run "put rsync -r" "$W/data/rp$k" rsync -W --no-compress -q -r "$W/data/src/$NAME" "rsync://127.0.0.1:$RPORT/bench/rp$k/"
  sleep 0.2; echo " srv $(( $(rsync_cpu) - d0 ))"
  i=0
  for B in "${BINS[@]}"; do
    i=$((i + 1)); k=$((k + 1)); mkdir "$W/data/g$k"; c0=$(cpu "${SPID[g$i]}")
    run "get $B" "$W/data/g$k" "$B/ftclient" "${CF[@]}" --dir "$W/data/g$k" 127.0.0.1 "${PORT[g$i]}" get -r "$NAME"
    echo " srv $(( $(cpu "${SPID[g$i]}") - c0 ))"
  done
  k=$((k + 1)); mkdir "$W/data/rg$k"; d0=$(rsync_cpu)
  run "get rsync -r" "$W/data/rg$k" rsync -W --no-compress -q -r "rsync://127.0.0.1:$RPORT/bench/src/$NAME" "$W/data/rg$k/"
  sleep 0.2; echo " srv $(( $(rsync_cpu) - d0 ))"
done
