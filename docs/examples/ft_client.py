#!/usr/bin/env python3
"""Minimal ft client (protocol v3 down to v1), written from docs/PROTOCOL.md alone (no Rust).

    ft_client.py --fingerprint SHA256:FP [--user NAME] [OPTIONS] HOST PORT list
    ft_client.py --fingerprint SHA256:FP [--user NAME] [OPTIONS] HOST PORT put FILE
    ft_client.py --fingerprint SHA256:FP [--user NAME] [OPTIONS] HOST PORT get [--resume] NAME
    ft_client.py --plain [OPTIONS] HOST PORT list|put FILE|get [--resume] NAME

    OPTIONS: --dir DIR, --timeout SECS, --trace

TLS by default (PROTOCOL.md sections 5.1 and 5.2): the client reads the server's plain
greeting, starts TLS 1.3 on `Error{tls-required}`, and checks that the SHA-256 fingerprint of
the server's certificate is the one given with `--fingerprint` (the `fingerprint SHA256:...`
line ftserver prints) before it sends anything inside TLS. Unlike ftclient, this example
keeps no known_hosts file: in TLS mode `--fingerprint` is required. A server that greets in
plain is refused (nothing is sent); `--plain` talks to `ftserver --plain` in clear, with the
v1 and v2 servers too.

`--user NAME` logs in (section 5.4) with the password from the environment variable
FT_PASSWORD (or, on a terminal, a prompt); never with --plain, which would send the
password in clear.

Standard library only (TLS through `ssl`). The XXH3-128 body digest needs the optional `xxhash` package
(`pip install xxhash`): without it `get` still checks the size but skips the digest check
(with a warning), and `put` and `get --resume` are refused, since they need the digest.

`get --resume` (needs a v2 or later server, PROTOCOL.md section 12) downloads through a hidden
partial file `DIR/.ft-part-<xxh3-128 of the name>`, the name the reference client uses
too. When the transfer is interrupted (connection lost, timeout, Ctrl-C) the partial is
kept, and the next `get --resume NAME` asks only for the missing bytes; any other failure
removes it. Without --resume nothing is ever left behind.

`--trace` prints every frame in hex on stderr (in TLS mode, as sent and received inside
TLS; the bytes of a password are shown as `**`). Exit status: 0 success, 1 failure, 2 usage,
130 interrupted.
"""

import argparse
import base64
import datetime
import getpass
import hashlib
import ipaddress
import os
import re
import socket
import ssl
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
VERSION = 3
MIN_VERSION = 1
RESUME_VERSION = 2
LOGIN_VERSION = 3
MAX_CHUNK = 1024 * 1024
MAX_FRAME = MAX_CHUNK + 1024
MAX_MESSAGE = 1024
MAX_HELLO_FRAME = MAX_MESSAGE + 64
CHUNK = 256 * 1024
MAX_NAME = 255
MAX_AGENT = 64
LIST_BATCH = 256
AGENT = "ft_client.py/3"
PART_PREFIX = ".ft-part-"

ERROR_KINDS = [
    "other", "not-found", "already-exists", "invalid-name", "too-large", "no-space",
    "checksum-mismatch", "size-mismatch", "busy", "timeout", "protocol", "version", "io",
    "permission-denied", "shutting-down", "cancelled", "connection", "read-only",
    "auth-failed", "tls-required", "identity-changed",
]
# Failures that interrupt a transfer without saying anything against its data: a
# resumable download keeps its partial after these, and removes it after any other.
INTERRUPTIONS = {"connection", "timeout", "cancelled", "shutting-down"}
ENTRY_KINDS = ["other", "file", "dir"]
ROLES = ["other", "read", "write"]  # Role codes; "other" (0 or unknown) allows nothing


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


def enc_login(user, password):
    # Request::Login (v3) = variant 7: user: String, password: String
    return b"\x07" + enc_str(user) + enc_str(password)


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
    if tag == 9:  # v3: LoggedIn { role: Role }, the role a u16 code like ErrorKind
        return r.finish(("logged_in", r.code(ROLES)))
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

def fingerprint_of(der):
    """`SHA256:` + unpadded base64 of the SHA-256 of a DER certificate (section 5.2)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


class Conn:
    def __init__(self, host, port, timeout, trace):
        self.host, self.port = host, port
        self.timeout, self.trace = timeout, trace
        self.version, self.role = None, None  # set by connect() and login()
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise FtError("connection", f"cannot connect to {host}:{port}: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def where(self):
        return f"the server at {self.host} port {self.port}"

    def _show(self, arrow, frame, secret=None):
        if self.trace:
            shown = [f"{b:02x}" for b in frame[:48]]
            if secret:  # payload offsets of bytes never to print (a password)
                for i in range(4 + secret[0], min(4 + secret[1], len(shown))):
                    shown[i] = "**"
            more = f" ... ({len(frame)} bytes)" if len(frame) > 48 else ""
            print(f"{arrow} {' '.join(shown)}{more}", file=sys.stderr)

    def send(self, payload, secret=None):
        frame = struct.pack(">I", len(payload)) + payload
        self._show("C>", frame, secret)
        try:
            self.sock.sendall(frame)
        except OSError as e:
            raise FtError("connection", f"sending: {e}") from None

    def _exact(self, n, deadline, what):
        # recv asks for exactly what is missing: before TLS starts, no byte beyond the
        # greeting may be consumed from the socket.
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

    def start_tls(self, pinned):
        """TLS 1.3 on the same socket (section 5.2), then the pin check; raises
        `identity-changed` before anything is sent inside TLS if the certificate differs."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        # Trust is the pin, not a CA or a name: OpenSSL still checks the handshake signature
        # (CertificateVerify) against the certificate's key, and the pin names the certificate.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            ipaddress.ip_address(self.host)
            sni = None  # no SNI for an IP address; the server ignores SNI anyway
        except ValueError:
            sni = self.host
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=sni)
        except socket.timeout:
            raise FtError("timeout", f"TLS handshake with {self.where()}: no answer "
                                     f"within {self.timeout} s") from None
        except OSError as e:  # ssl.SSLError included
            raise FtError("connection", f"TLS handshake with {self.where()} failed: {e}") from None
        found = fingerprint_of(self.sock.getpeercert(binary_form=True))
        if self.trace:
            print(f"-- {self.sock.version()} {self.sock.cipher()[0]}, server certificate "
                  f"{found}; the frames below travel inside TLS", file=sys.stderr)
        if found != pinned:
            raise FtError("identity-changed",
                          f"{self.where()} presented the certificate {found}, not the pinned "
                          f"{pinned}; nothing was sent inside TLS. Someone may be intercepting "
                          f"the connection, or the server was given a new identity: compare "
                          f"with the fingerprint line the server printed")

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


def greet(conn, pinned):
    """Reads the plain greeting (section 5.1); with `pinned` (TLS mode) starts TLS on
    `Error{tls-required}`. Returns the server's Hello."""
    greeting = dec_response(conn.recv(MAX_HELLO_FRAME, what="before its greeting"))
    if greeting[0] == "error" and greeting[1] == "tls-required":
        if pinned is None:
            raise FtError("tls-required", f"{conn.where()} requires TLS (it said: "
                                          f"{safe(greeting[2])}): run without --plain, with "
                                          f"--fingerprint SHA256:... as the server printed it")
        conn.start_tls(pinned)
        return dec_response(conn.recv(MAX_HELLO_FRAME, what="before saying hello"))
    if greeting[0] == "hello" and pinned is not None:
        # Never fall back to plain: close having sent nothing.
        raise FtError("tls-required", f"{conn.where()} does not use TLS (it was started "
                                      f"with --plain); connect with --plain, and only on a "
                                      f"network you trust")
    return greeting  # a plain server's hello, or a refusal such as busy


def connect(host, port, timeout, trace, pinned):
    """Greeting, TLS unless `pinned` is None (--plain), hellos (sections 5.1-5.3)."""
    conn = Conn(host, port, timeout, trace)
    try:
        first = greet(conn, pinned)
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


def login(conn, user, password):
    """Login right after the hellos (section 5.4); a refusal closes the connection."""
    if conn.version < LOGIN_VERSION:
        raise FtError("version", f"the server speaks ft v{conn.version}, logging in needs "
                                 f"v{LOGIN_VERSION}; the password was not sent")
    payload = enc_login(user, password)
    conn.send(payload, secret=(len(payload) - len(password.encode("utf-8")), len(payload)))
    _, conn.role = expect(conn, "logged_in", what="before answering the login")
    conn.user = user


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
    if conn.role is not None and conn.role != "write":
        # The server would refuse it (section 5.5): ask nothing.
        raise FtError("permission-denied", f"user {safe(conn.user)} has the role {conn.role} "
                                           f"and may not upload; nothing was sent")
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


FINGERPRINT_SHAPE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


def main():
    p = argparse.ArgumentParser(
        description="Minimal ft client (see docs/PROTOCOL.md). TLS by default, trusting the "
                    "server whose certificate has the fingerprint given with --fingerprint; "
                    "this example keeps no known_hosts file, so in TLS mode --fingerprint is "
                    "required.",
        epilog="The password for --user comes from the environment variable FT_PASSWORD (or, "
               "on a terminal, a prompt). Exit status: 0 success, 1 failure, 2 usage, "
               "130 interrupted.")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("command", choices=["list", "put", "get"])
    p.add_argument("arg", nargs="?", help="FILE for put, NAME for get")
    p.add_argument("--fingerprint", metavar="SHA256:FP",
                   help="the server's fingerprint, as the `fingerprint` line ftserver prints "
                        "(required unless --plain)")
    p.add_argument("--plain", action="store_true",
                   help="no TLS, for a server run with --plain: everything travels in clear")
    p.add_argument("--user", metavar="NAME",
                   help="log in as NAME (password from FT_PASSWORD); not with --plain")
    p.add_argument("--dir", default=".", help="where get writes (default: .)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per frame")
    p.add_argument("--trace", action="store_true", help="print frames in hex on stderr")
    p.add_argument("--resume", action="store_true",
                   help="get: continue an interrupted download (needs a v2 or later server)")
    args = p.parse_intermixed_args()
    if (args.arg is None) != (args.command == "list"):
        p.error(f"{args.command} takes {'no argument' if args.command == 'list' else 'one'}")
    if args.resume and args.command != "get":
        p.error("--resume applies to get only")
    if args.plain:
        if args.user is not None:
            p.error("--user cannot be used with --plain: the password would travel in clear")
        if args.fingerprint is not None:
            p.error("--fingerprint has no use with --plain (no TLS, no certificate)")
    elif args.fingerprint is None:
        p.error("TLS needs --fingerprint SHA256:... (the `fingerprint` line the server "
                "printed; this example keeps no known_hosts), or --plain for a server run "
                "with --plain")
    elif not FINGERPRINT_SHAPE.fullmatch(args.fingerprint):
        p.error(f"--fingerprint {safe(args.fingerprint)}: expected SHA256: and 43 characters "
                f"of base64, as ftserver prints it")
    password = None
    if args.user is not None:
        password = os.environ.get("FT_PASSWORD")
        if password is None:
            if not sys.stdin.isatty():
                p.error("--user needs the password in the environment variable FT_PASSWORD "
                        "(there is no terminal to ask it on)")
            password = getpass.getpass(f"password for {args.user}: ")
    try:
        if (args.command == "put" or args.resume) and xxhash is None:
            raise FtError("other", f"{'get --resume' if args.resume else 'put'} needs the "
                                   "xxhash package for the XXH3-128 digest "
                                   "(pip install xxhash); nothing was sent")
        pinned = None if args.plain else args.fingerprint
        conn = connect(args.host, args.port, args.timeout, args.trace, pinned)
        try:
            if args.user is not None:
                login(conn, args.user, password)
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
