#!/usr/bin/env bash
# Round-trips a file larger than 4 GiB (sparse on the source side) through a release
# ftserver and ftclient on loopback, and checks it arrives byte-identical both ways.
# Needs about 2 x SIZE of free disk in $TMPDIR (the copies are not sparse).
# Usage: bench/big_file.sh [SIZE]   (default 4G+1MiB+1, any `truncate -s` size)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-$((4 * 1024 * 1024 * 1024 + 1024 * 1024 + 1))}

cargo build --release --quiet --bin ftserver --bin ftclient
bin=target/release
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/served" "$work/local" "$work/back"

# Sparse, with real data at the start, across the 4 GiB boundary and at the end, so a
# transfer that wraps at 2^32 or drops the tail cannot pass.
src="$work/local/big.bin"
truncate -s "$size" "$src"
for offset in 0 $((4 * 1024 * 1024 * 1024 - 4096)) $((size - 4096)); do
    [ "$offset" -ge 0 ] || continue
    head -c 4096 /dev/urandom | dd of="$src" bs=1 seek="$offset" conv=notrunc status=none
done

"$bin/ftserver" 0 --bind 127.0.0.1 --root "$work/served" > "$work/server.log" &
server_pid=$!
for _ in $(seq 100); do
    port=$(awk 'NR==1 && /server up and running/ {print $2}' "$work/server.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "server did not start"; cat "$work/server.log"; exit 1; }

echo "size: $size bytes"
start=$EPOCHREALTIME
"$bin/ftclient" --dir "$work/local" 127.0.0.1 "$port" put big.bin
mid=$EPOCHREALTIME
"$bin/ftclient" --dir "$work/back" 127.0.0.1 "$port" get big.bin
end=$EPOCHREALTIME

cmp "$src" "$work/served/big.bin"
cmp "$src" "$work/back/big.bin"
awk -v a="$start" -v b="$mid" -v c="$end" 'BEGIN { printf "put: %.1f s, get: %.1f s\n", b - a, c - b }'
echo "OK: byte-identical both ways"
