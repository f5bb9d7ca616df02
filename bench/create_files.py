#!/usr/bin/env python3
"""How fast this machine's file system takes new small files, in the ways ft could make them.

Creates --count files of --size bytes in a directory on --disk, publishes each under its
final name, fsyncs the directory, then removes them; repeats for --rounds rounds, every
variant once per round in a rotated order, and prints the median files/s of each variant
with its ratio to the first ("named, 1 thread": what ft did before it used unnamed files):

  named      open(".tmp-N", O_CREAT|O_EXCL), write, fsync, rename to the final name
  unnamed    open(dir, O_TMPFILE), write, fsync, linkat("/proc/self/fd/N", final name)

each from 1, 2 and 4 threads. Creating a name locks the directory, so named files are made
one at a time whatever the thread count; an unnamed file is created without that lock.
Linux only (O_TMPFILE); binds nothing, installs nothing, removes what it created.

Usage: bench/create_files.py [--count 1000] [--size 4096] [--rounds 5] [--disk /var/tmp]
       [--no-fsync]
"""

import argparse
import ctypes
import os
import shutil
import statistics
import tempfile
import threading
import time

LIBC = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400


def named(directory: str, i: int, data: bytes, sync: bool) -> None:
    tmp = f"{directory}/.tmp-{i}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, f"{directory}/f{i}")


def unnamed(directory: str, i: int, data: bytes, sync: bool) -> None:
    fd = os.open(directory, os.O_WRONLY | os.O_TMPFILE, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
        src = f"/proc/self/fd/{fd}".encode()
        dst = f"{directory}/f{i}".encode()
        if LIBC.linkat(AT_FDCWD, src, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), dst.decode())
    finally:
        os.close(fd)


def run(make, threads: int, directory: str, count: int, data: bytes, sync: bool) -> float:
    """Creates `count` files with `threads` threads; returns the seconds taken."""
    errors = []

    def worker(k: int) -> None:
        try:
            for i in range(k, count, threads):
                make(directory, i, data, sync)
        except OSError as e:
            errors.append(e)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    names = sorted(os.listdir(directory))
    if len(names) != count or any(os.path.getsize(f"{directory}/{n}") != len(data) for n in names):
        raise SystemExit(f"{make.__name__} x{threads}: wrong files in {directory}")
    for name in names:
        os.unlink(f"{directory}/{name}")
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=1000, help="files per run (1000)")
    p.add_argument("--size", type=int, default=4096, help="bytes per file (4096)")
    p.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    p.add_argument("--disk", default="/var/tmp", help="where to create them (/var/tmp)")
    p.add_argument("--no-fsync", action="store_true", help="skip the per-file fsync")
    args = p.parse_args()
    if not 1 <= args.count <= 100_000 or not 0 <= args.size <= 1 << 20:
        p.error("--count is 1..100000 and --size 0..1 MiB")
    variants = [(f"{make.__name__}, {t} thread{'s' if t > 1 else ''}", make, t)
                for make in (named, unnamed) for t in (1, 2, 4)]
    data = os.urandom(args.size)
    base = tempfile.mkdtemp(prefix="ft-create-", dir=args.disk)
    times = {label: [] for label, _, _ in variants}
    try:
        for r in range(args.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for label, make, threads in order:
                t = run(make, threads, base, args.count, data, not args.no_fsync)
                times[label].append(t)
                print(f"[round {r + 1}/{args.rounds}] {label}: {args.count / t:.0f} files/s",
                      flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    sync = "no fsync" if args.no_fsync else "fsync per file"
    print(f"\n{args.count} files of {args.size} bytes in {args.disk}, {sync}, "
          f"medians of {args.rounds} rounds")
    first = statistics.median(times[variants[0][0]])
    for label, _, _ in variants:
        m = statistics.median(times[label])
        print(f"  {label:<20} {args.count / m:>8.0f} files/s  {first / m:5.2f}x")


if __name__ == "__main__":
    main()
