#!/usr/bin/env python3
"""Minimal ft client (protocol v2 and v1), written from docs/PROTOCOL.md alone (no Rust).

    ft_client.py [--dir DIR] [--timeout SECS] [--trace] HOST PORT list
    ft_client.py [--dir DIR] [--timeout SECS] [--trace] HOST PORT put FILE
    ft_client.py [--dir DIR] [--timeout SECS] [--trace] HOST PORT get [--resume] NAME

Standard library only. The XXH3-128 body digest needs the optional `xxhash` package
(`pip install xxhash`): without it `get` still checks the size but skips the digest check
(with a warning), and `put` and `get --resume` are refused, since they need the digest.

`get --resume` (needs a v2 server, PROTOCOL.md section 12) downloads through a hidden
partial file `DIR/.ft-part-<xxh3-128 of the name>`, the name the reference client uses
too. When the transfer is interrupted (connection lost, timeout, Ctrl-C) the partial is
kept, and the next `get --resume NAME` asks only for the missing bytes; any other failure
removes it. Without --resume nothing is ever left behind.

`--trace` prints every frame in hex on stderr. Exit status: 0 success, 1 failure, 2 usage,
130 interrupted.
"""

import argparse
import datetime
import os
import socket
import stat
import struct
import sys
import time

try:
    import xxhash
except ImportError:
    xxhash = None

try:
    import fcntl
except ImportError:  # Windows: partials are then not locked against a second client
    fcntl = None

# --- Constants (PROTOCOL.md section 1) -------------------------------------------------

MAGIC = b"\x89FT\n"
VERSION = 2
MIN_VERSION = 1
RESUME_VERSION = 2
MAX_CHUNK = 1024 * 1024
MAX_FRAME = MAX_CHUNK + 1024
MAX_MESSAGE = 1024
MAX_HELLO_FRAME = MAX_MESSAGE + 64
CHUNK = 256 * 1024
MAX_NAME = 255
MAX_AGENT = 64
LIST_BATCH = 256
AGENT = "ft_client.py/2"
PART_PREFIX = ".ft-part-"

ERROR_KINDS = [
    "other", "not-found", "already-exists", "invalid-name", "too-large", "no-space",
    "checksum-mismatch", "size-mismatch", "busy", "timeout", "protocol", "version", "io",
    "permission-denied", "shutting-down", "cancelled", "connection", "read-only",
]
# Failures that interrupt a transfer without saying anything against its data: a
# resumable download keeps its partial after these, and removes it after any other.
INTERRUPTIONS = {"connection", "timeout", "cancelled", "shutting-down"}
ENTRY_KINDS = ["other", "file", "dir"]


class FtError(Exception):
    """A failure; `kind` is an ErrorKind label, `remote` says whether the server sent it."""

    def __init__(self, kind, message, remote=False):
        super().__init__(message)
        self.kind, self.message, self.remote = kind, message, remote

    def __str__(self):
        return f"{'server: ' if self.remote else ''}{self.kind}: {safe(self.message)}"


def protocol_error(message):
    return FtError("protocol", message)


def safe(text):
    """Text from the network, made harmless for a terminal."""
    if all(c.isprintable() for c in text):
        return text
    return repr(text)


# --- Encoding: bincode 2 "standard" (PROTOCOL.md section 3) ------------------------------

def varint(n):
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfb" + struct.pack("<H", n)
    if n < 1 << 32:
        return b"\xfc" + struct.pack("<I", n)
    return b"\xfd" + struct.pack("<Q", n)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def enc_str(s):
    b = s.encode("utf-8")
    return varint(len(b)) + b


def enc_bytes(b):
    return varint(len(b)) + b


class Reader:
    """Decodes one payload; every read is bounds-checked, leftovers are an error."""

    WIDTH = {251: 2, 252: 4, 253: 8}

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if n > len(self.data) - self.pos:
            raise protocol_error("truncated message")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def varint(self, bits):
        first = self.take(1)[0]
        if first < 251:
            return first
        width = self.WIDTH.get(first)
        if width is None or width * 8 > bits:
            raise protocol_error(f"invalid varint marker {first} for a u{bits}")
        return int.from_bytes(self.take(width), "little")

    def i64(self):
        z = self.varint(64)
        return (z >> 1) ^ -(z & 1)

    def raw(self):
        return self.take(self.varint(64))

    def string(self):
        try:
            return self.raw().decode("utf-8")
        except UnicodeDecodeError:
            raise protocol_error("invalid UTF-8 in a string") from None

    def code(self, table):
        code = self.varint(16)
        return table[code] if code < len(table) else "other"

    def finish(self, value):
        if self.pos != len(self.data):
            raise protocol_error(f"{len(self.data) - self.pos} trailing bytes")
        return value


def enc_hello(version):
    # Request::Hello = variant 0; Hello { magic, version, min_version, agent }
    return b"\x00" + MAGIC + varint(version) + varint(MIN_VERSION) + enc_str(AGENT)


def enc_put(name, size):
    return b"\x01" + enc_str(name) + varint(size)


def enc_get(name):
    return b"\x02" + enc_str(name)


def enc_get_from(name, offset, prefix):
    # Request::GetFrom (v2) = variant 4: name, offset: u64, prefix: [u8; 16] (no length)
    return b"\x04" + enc_str(name) + varint(offset) + prefix


ENC_LIST = b"\x03"


def enc_chunk(data):
    return b"\x00" + enc_bytes(data)


def enc_end(digest):
    return b"\x01" + digest  # [u8; 16], no length


def enc_abort(kind, message):
    cut = message.encode("utf-8")[:MAX_MESSAGE].decode("utf-8", "ignore")
    return b"\x02" + varint(ERROR_KINDS.index(kind)) + enc_str(cut)


def dec_response(payload):
    """Response -> (tag, fields...)."""
    r = Reader(payload)
    tag = r.varint(32)
    if tag == 0:
        hello = (r.take(4), r.varint(32), r.varint(32), r.string())
        return r.finish(("hello",) + hello)
    if tag == 1:
        return r.finish(("error", r.code(ERROR_KINDS), r.string()))
    if tag == 2:
        return r.finish(("ready",))
    if tag == 3:
        return r.finish(("stored", r.varint(64)))
    if tag == 4:
        return r.finish(("file", r.varint(64), r.i64()))
    if tag == 5:
        n = r.varint(64)
        if n > LIST_BATCH:
            raise protocol_error(f"listing batch of {n} entries")
        entries = [(r.string(), r.code(ENTRY_KINDS), r.varint(64), r.i64()) for _ in range(n)]
        return r.finish(("entries", entries))
    if tag == 6:
        return r.finish(("list_end", r.varint(64)))
    if tag == 7:  # v2
        return r.finish(("file_from", r.varint(64), r.i64(), r.varint(64)))
    if tag == 8:  # v2
        return r.finish(("ready_from", r.varint(64)))
    raise protocol_error(f"unknown response variant {tag}")


def dec_body(payload):
    r = Reader(payload)
    tag = r.varint(32)
    if tag == 0:
        return r.finish(("chunk", r.raw()))
    if tag == 1:
        return r.finish(("end", r.take(16)))
    if tag == 2:
        return r.finish(("abort", r.code(ERROR_KINDS), r.string()))
    raise protocol_error(f"unknown body variant {tag}")


# --- Frames and the connection (PROTOCOL.md sections 2, 5, 9) ----------------------------

class Conn:
    def __init__(self, host, port, timeout, trace):
        self.timeout, self.trace = timeout, trace
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise FtError("connection", f"cannot connect to {host}:{port}: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _show(self, arrow, frame):
        if self.trace:
            head = frame[:48].hex(" ")
            more = f" ... ({len(frame)} bytes)" if len(frame) > 48 else ""
            print(f"{arrow} {head}{more}", file=sys.stderr)

    def send(self, payload):
        frame = struct.pack(">I", len(payload)) + payload
        self._show("C>", frame)
        try:
            self.sock.sendall(frame)
        except OSError as e:
            raise FtError("connection", f"sending: {e}") from None

    def _exact(self, n, deadline, what):
        buf = bytearray()
        while len(buf) < n:
            if time.monotonic() > deadline:
                raise FtError("timeout", f"no complete frame within {self.timeout} s")
            try:
                got = self.sock.recv(min(n - len(buf), 1 << 20))
            except socket.timeout:
                raise FtError("timeout", f"server silent for {self.timeout} s") from None
            except OSError as e:
                raise FtError("connection", f"receiving: {e}") from None
            if not got:
                raise FtError("connection", f"connection closed by the server {what}")
            buf += got
        return bytes(buf)

    def recv(self, limit=MAX_FRAME, what="in the middle of an exchange"):
        deadline = time.monotonic() + self.timeout
        header = self._exact(4, deadline, what)
        (length,) = struct.unpack(">I", header)
        if length > limit:
            raise protocol_error(f"frame of {length} bytes exceeds the limit of {limit} "
                                 f"(first bytes {header.hex(' ')}: not an ft server?)")
        payload = self._exact(length, deadline, "in the middle of a frame")
        self._show("S>", header + payload)
        return payload

    def close(self):
        self.sock.close()


def expect(conn, *wanted, what):
    """Reads a Response; an Error becomes FtError, anything not in `wanted` a protocol error."""
    msg = dec_response(conn.recv(what=what))
    if msg[0] in wanted:
        return msg
    if msg[0] == "error":
        raise FtError(msg[1], msg[2], remote=True)
    raise protocol_error(f"expected {' or '.join(wanted)}, got {msg[0]}")


def connect(host, port, timeout, trace):
    conn = Conn(host, port, timeout, trace)
    try:
        first = dec_response(conn.recv(MAX_HELLO_FRAME, what="before saying hello"))
        if first[0] == "error":  # e.g. busy: refused before any hello
            raise FtError(first[1], first[2], remote=True)
        if first[0] != "hello":
            raise protocol_error(f"the server began with {first[0]} instead of hello")
        _, magic, server_max, server_min, _agent = first
        if magic != MAGIC:
            raise protocol_error("the server does not speak ft (bad magic)")
        version = min(server_max, VERSION)
        if version < max(server_min, MIN_VERSION):
            raise FtError("version", f"we speak v{MIN_VERSION}..v{VERSION}, "
                                     f"the server v{server_min}..v{server_max}")
        conn.send(enc_hello(version))
    except BaseException:
        conn.close()
        raise
    conn.version = version
    return conn


# --- Names (PROTOCOL.md section 10) ------------------------------------------------------

def check_name(name):
    bad = (not name or len(name.encode("utf-8")) > MAX_NAME or name in (".", "..")
           or any(c in name for c in "/\\:") or name.startswith(".ft-")
           or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name))
    if bad:
        raise FtError("invalid-name", f"invalid file name {safe(name)}")


def hasher():
    return xxhash.xxh3_128() if xxhash else None


# --- Requests (PROTOCOL.md sections 6, 7 and 12) -----------------------------------------

def do_list(conn):
    conn.send(ENC_LIST)
    count = 0
    while True:
        msg = expect(conn, "entries", "list_end", what="in the middle of a listing")
        if msg[0] == "list_end":
            if msg[1] != count:
                raise protocol_error(f"listing ended claiming {msg[1]} entries after {count}")
            return count
        for name, kind, size, modified in msg[1]:
            if not name or len(name.encode("utf-8")) > MAX_NAME:
                raise protocol_error("listing entry with a bad name length")
            try:
                when = datetime.datetime.fromtimestamp(modified, datetime.timezone.utc)
                when = f"{when:%Y-%m-%dT%H:%M:%SZ}"
            except (OverflowError, ValueError, OSError):
                when = str(modified)
            print(f"{kind:5} {size:>14} {when} {safe(name)}")
            count += 1


def do_put(conn, path):
    name = os.path.basename(os.path.normpath(path))
    check_name(name)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        conn.send(enc_put(name, size))
        expect(conn, "ready", what="before answering the upload")
        h, sent = hasher(), 0
        while sent < size:
            data = f.read(min(CHUNK, size - sent))
            if not data:
                return abort(conn, f"{name}: expected {size} bytes, got {sent} (the file shrank)")
            h.update(data)
            conn.send(enc_chunk(data))
            sent += len(data)
        if f.read(1):
            return abort(conn, f"{name}: the file grew while being sent")
    conn.send(enc_end(h.digest()))
    _, stored = expect(conn, "stored", what="before confirming the upload")
    if stored != size:
        raise protocol_error(f"the server stored {stored} bytes of {size}")
    print(f"put {safe(name)}: {size} bytes stored, xxh3-128 {h.hexdigest()}")


def abort(conn, message):
    """Ends a body with Abort; the server answers it with an Error response."""
    conn.send(enc_abort("size-mismatch", message))
    expect(conn, "error", what="after an aborted upload")
    raise FtError("size-mismatch", message)


def recv_body(conn, out, name, size, got, h):
    """Receives a body carrying bytes got..size into `out`; `h` already holds bytes 0..got.
    Returns how the digest was checked (for the message)."""
    while True:
        msg = dec_body(conn.recv(what="in the middle of a file body"))
        if msg[0] == "chunk":
            data = msg[1]
            if not 1 <= len(data) <= MAX_CHUNK or len(data) > size - got:
                # Breaks the protocol: the connection cannot go on.
                raise protocol_error(f"bad chunk of {len(data)} bytes at {got}/{size}")
            out.write(data)
            if h:
                h.update(data)
            got += len(data)
        elif msg[0] == "abort":
            raise FtError(msg[1], msg[2], remote=True)
        else:
            if got != size:
                raise FtError("size-mismatch", f"expected {size} bytes, got {got}")
            if h is None:
                print("ft_client.py: WARNING: xxhash not installed, digest NOT "
                      "verified (pip install xxhash)", file=sys.stderr)
                return "unverified"
            if h.digest() != msg[1]:  # End's digest covers the whole file
                raise FtError("checksum-mismatch", f"{name}: digest mismatch")
            return "xxh3-128 " + h.hexdigest()


def publish(path, dest, modified):
    """Makes `path` visible as `dest`, never replacing an existing file."""
    os.utime(path, (modified, modified))
    try:
        os.link(path, dest)
    except FileExistsError:
        raise FtError("already-exists", f"{dest} appeared meanwhile; kept it") from None


def do_get(conn, name, directory):
    check_name(name)
    dest = os.path.join(directory, name)
    if os.path.lexists(dest):
        raise FtError("already-exists", f"{dest} already exists locally; nothing was asked")
    # `.ft-tmp-PID-…`: a clean-up that sees PID alive leaves the file alone.
    tmp = os.path.join(directory, f".ft-tmp-{os.getpid()}-py-{time.monotonic_ns()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            conn.send(enc_get(name))
            _, size, modified = expect(conn, "file", what="before answering the download")
            shown = recv_body(conn, out, name, size, 0, hasher())
            out.flush()
            os.fsync(out.fileno())
        publish(tmp, dest, modified)
    finally:
        os.unlink(tmp)
    print(f"get {safe(name)}: {size} bytes, {shown}")


def do_get_resume(conn, name, directory):
    """get --resume: continue from (or keep, when interrupted) a hidden partial file."""
    check_name(name)
    if conn.version < RESUME_VERSION:
        # A v1 server would close the connection on GetFrom: ask nothing.
        raise FtError("version", f"the server speaks ft v{conn.version}, resuming needs "
                                 f"v{RESUME_VERSION}; run get without --resume")
    dest = os.path.join(directory, name)
    if os.path.lexists(dest):
        raise FtError("already-exists", f"{dest} already exists locally; nothing was asked")
    key = xxhash.xxh3_128(name.encode("utf-8")).hexdigest()
    part = os.path.join(directory, PART_PREFIX + key)
    # Never through a symlink; anything but a regular file there is refused.
    flags = os.O_RDWR | os.O_CREAT
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(part, flags, 0o644)
    out = os.fdopen(fd, "r+b")
    keep = False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FtError("io", f"{part} is not a regular file")
        if fcntl:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                keep = True  # another client is using it: leave it alone
                raise FtError("already-exists",
                              f"{safe(name)} is being downloaded by another process") from None
        # Step 1: hash what we have; the server continues only if its file starts with it.
        h, have = xxhash.xxh3_128(), 0
        while True:
            data = out.read(CHUNK)
            if not data:
                break
            h.update(data)
            have += len(data)
        conn.send(enc_get_from(name, have, h.digest()))
        _, size, modified, offset = expect(conn, "file_from",
                                           what="before answering the download")
        if offset > size or offset not in (0, have):
            raise protocol_error(f"the server resumes at byte {offset} of {size}, "
                                 f"we have {have}")
        if offset != have:
            # offset 0: our bytes are not a prefix of the server's file: start over.
            out.seek(0)
            out.truncate()
            h = xxhash.xxh3_128()
        out.seek(offset)
        shown = recv_body(conn, out, name, size, offset, h)
        out.flush()
        os.fsync(out.fileno())
        publish(part, dest, modified)
    except (FtError, KeyboardInterrupt) as e:
        if isinstance(e, KeyboardInterrupt) or e.kind in INTERRUPTIONS:
            keep = True
            out.flush()
            os.fsync(out.fileno())
            print(f"ft_client.py: kept {out.tell()} bytes of {safe(name)} hidden in {part}; "
                  f"run the same get --resume to continue", file=sys.stderr)
        raise
    finally:
        out.close()
        if not keep:
            os.unlink(part)
    print(f"get {safe(name)}: {size} bytes, {size - offset} moved from byte {offset}, {shown}")


def main():
    p = argparse.ArgumentParser(description="Minimal ft client (see docs/PROTOCOL.md).")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("command", choices=["list", "put", "get"])
    p.add_argument("arg", nargs="?", help="FILE for put, NAME for get")
    p.add_argument("--dir", default=".", help="where get writes (default: .)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per frame")
    p.add_argument("--trace", action="store_true", help="print frames in hex on stderr")
    p.add_argument("--resume", action="store_true",
                   help="get: continue an interrupted download (needs a v2 server)")
    args = p.parse_intermixed_args()
    if (args.arg is None) != (args.command == "list"):
        p.error(f"{args.command} takes {'no argument' if args.command == 'list' else 'one'}")
    if args.resume and args.command != "get":
        p.error("--resume applies to get only")
    try:
        if (args.command == "put" or args.resume) and xxhash is None:
            raise FtError("other", f"{'get --resume' if args.resume else 'put'} needs the "
                                   "xxhash package for the XXH3-128 digest "
                                   "(pip install xxhash); nothing was sent")
        conn = connect(args.host, args.port, args.timeout, args.trace)
        try:
            if args.command == "list":
                do_list(conn)
            elif args.command == "put":
                do_put(conn, args.arg)
            elif args.resume:
                do_get_resume(conn, args.arg, args.dir)
            else:
                do_get(conn, args.arg, args.dir)
        finally:
            conn.close()
    except FtError as e:
        print(f"ft_client.py: {e}", file=sys.stderr)
        return 130 if e.kind == "cancelled" else 1
    except KeyboardInterrupt:
        print("ft_client.py: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"ft_client.py: local error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
