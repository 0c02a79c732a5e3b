#!/usr/bin/env python3
"""fault_proxy.py - TCP proxy that cuts, truncates and corrupts a (TLS) stream.

Used by replication tests between a primary and a replica. Standard library
only. Usage:
  python3 tests/fault_proxy.py --listen 127.0.0.1:0 --target 127.0.0.1:PORT \
      --port-file FILE [--control-file FILE] [--cut-after-bytes N] ...
The listening port is written to FILE.tmp, then renamed to FILE, so readers
never see a partial file. Any number of clients may connect; each gets its own
connection to --target and two forwarding threads. "Upstream" means
client->server (towards --target); byte counts are per connection.

Faults (integers, 0 = off) come from flags (--cut-after-bytes N, ...) and from
`key=value` lines in --control-file, re-read whenever its mtime/size/inode
changes (polled every 50 ms). Each read starts from the flag values, so
deleting a line (or the file) reverts that key. Blank and '#' lines are
skipped; unknown keys and bad values are reported on stderr and ignored.
Write it atomically (tmp file + mv) so a half-written file is never read.
Changes also apply to open connections (at their next upstream chunk).
  cut_after_bytes=N       once exactly N upstream bytes have been forwarded
                          (a chunk crossing N is split), close both sides
                          abruptly: SO_LINGER 0, so the peers get an RST.
  cut_every_ms=N          every N ms, close all open connections abruptly.
  truncate_after_bytes=N  forward only the first N upstream bytes, stop reading
                          upstream (stalled stream, cut mid-frame), hold the
                          connection open 2 s, then close both sides with FIN.
  corrupt_at_byte=N       1-BASED (N=1 is the first byte; 0 disables): xor the
                          N-th upstream byte with 0x01, once per connection.
  refuse=1                accept new connections and close them at once.
  pause=1                 stop accepting (clients wait in the listen backlog)
                          and stop forwarding both ways until pause=0.

Why corruption is detectable: every TLS record is authenticated (AEAD tag or
MAC), so one flipped bit fails record authentication (or, in a record header,
breaks framing). The receiver sends an alert and/or drops the connection and
never delivers corrupt plaintext; the replication code just sees a failed or
closed connection, which it must survive (reconnect, resume) as after a cut.

Every event is one stderr line ("fault_proxy: cut connection 3 after 65536
bytes"). SIGTERM/SIGINT reset open connections and exit with status 0.
"""
import argparse, os, signal, socket, struct, sys, threading, time

KEYS = ("cut_after_bytes", "cut_every_ms", "truncate_after_bytes",
        "corrupt_at_byte", "refuse", "pause")
HOLD_S = 2.0
cfg = dict.fromkeys(KEYS, 0)
cond = threading.Condition()  # notified whenever cfg changes
stop = threading.Event()
conns, conns_lock = {}, threading.Lock()
LINGER0 = struct.pack("ii", 1, 0)  # close() then sends RST, not FIN

def log(msg):
    print("fault_proxy: " + msg, file=sys.stderr, flush=True)

def addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)

class Conn:
    def __init__(self, cid, client, server):
        self.cid, self.c, self.s = cid, client, server
        self.lock, self.closed, self.done = threading.Lock(), False, 0
        self.up = self.down = 0
        self.corrupted = False

    def close(self, abrupt, msg=None):
        with self.lock:
            if self.closed:
                return
            self.closed = True  # set first: pumps treat later wakeups as ours
        for sk in (self.c, self.s):
            try:
                if abrupt:
                    sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
                # SHUT_RD wakes the blocked reader thread without sending
                # anything; SHUT_RDWR also sends FIN (graceful close).
                sk.shutdown(socket.SHUT_RD if abrupt else socket.SHUT_RDWR)
            except OSError:
                pass
        for sk in (self.c, self.s):
            sk.close()
        with conns_lock:
            conns.pop(self.cid, None)
        if msg:
            log(msg)

    def faults(self, data):
        """Returns (bytes to forward, "cut"/"truncate"/None) for upstream data."""
        n0, cor = self.up, cfg["corrupt_at_byte"]
        hits = [(max(lim - n0, 0), name) for lim, name in
                ((cfg["cut_after_bytes"], "cut"),
                 (cfg["truncate_after_bytes"], "truncate"))
                if lim and n0 + len(data) >= lim]
        keep, action = min(hits) if hits else (len(data), None)
        data = bytearray(data[:keep])
        if cor and not self.corrupted and n0 < cor <= n0 + keep:
            i, self.corrupted = cor - 1 - n0, True
            data[i] ^= 0x01
            log("corrupted connection %d byte %d (1-based): 0x%02x -> 0x%02x"
                % (self.cid, cor, data[i] ^ 0x01, data[i]))
        return bytes(data), action

    def pump(self, src, dst, upstream):
        try:
            while True:
                data, action = src.recv(65536), None
                if self.closed:
                    return
                if not data:
                    break
                if upstream:
                    data, action = self.faults(data)
                while cfg["pause"] and not stop.is_set() and not self.closed:
                    with cond:
                        cond.wait(0.05)
                if self.closed:
                    return
                dst.sendall(data)
                if upstream:
                    self.up += len(data)
                else:
                    self.down += len(data)
                if action == "cut":
                    return self.close(True, "cut connection %d after %d bytes"
                                      % (self.cid, self.up))
                if action == "truncate":
                    log("truncated connection %d after %d bytes, holding %g s"
                        % (self.cid, self.up, HOLD_S))
                    stop.wait(HOLD_S)
                    return self.close(False, "closed truncated connection %d"
                                      % self.cid)
            dst.shutdown(socket.SHUT_WR)  # pass the EOF on (half-close)
        except OSError as e:
            if not self.closed:  # a peer reset us: propagate it as a reset
                self.close(True, "reset connection %d (%s)" % (self.cid, e))
            return
        with self.lock:
            self.done += 1
            last = self.done == 2
        if last:
            self.close(False, "closed connection %d (up %d, down %d bytes)"
                       % (self.cid, self.up, self.down))

def read_control(path, base):
    new = dict(base)
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, eq, val = (s.strip() for s in line.partition("="))
            try:
                if key not in KEYS or not eq or int(val) < 0:
                    raise ValueError
                new[key] = int(val)
            except ValueError:
                log("error: bad control line %r in %s (ignored)" % (line, path))
    return new

def main():
    ap = argparse.ArgumentParser(description="TCP fault-injection proxy")
    ap.add_argument("--listen", required=True, type=addr)
    ap.add_argument("--target", required=True, type=addr)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--control-file")
    for k in KEYS:
        ap.add_argument("--" + k.replace("_", "-"), dest=k, type=int, default=0)
    args = ap.parse_args()
    base = {k: getattr(args, k) for k in KEYS}
    cfg.update(base)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ls = socket.create_server(args.listen, family=socket.AF_INET6
                              if ":" in args.listen[0] else socket.AF_INET)
    ls.settimeout(0.05)  # main loop period: control file, timers, signals
    port = ls.getsockname()[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.replace(args.port_file + ".tmp", args.port_file)
    log("listening on port %d, target %s:%d" % ((port,) + args.target))
    stamp, last_cut, next_id = None, time.monotonic(), 1
    while not stop.is_set():
        if args.control_file:
            try:
                st = os.stat(args.control_file)
                key = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                key = None  # missing file: command-line settings apply
            if key != stamp:
                stamp = key
                new = read_control(args.control_file, base) if key else base
                with cond:
                    if new != cfg:
                        log("settings: " + " ".join(
                            "%s=%d" % (k, new[k]) for k in KEYS))
                    cfg.update(new)
                    cond.notify_all()
        now, every = time.monotonic(), cfg["cut_every_ms"]
        if not every or now - last_cut >= every / 1000.0:
            last_cut = now
            with conns_lock:
                victims = list(conns.values()) if every else []
            for c in victims:
                c.close(True, "cut connection %d (cut_every_ms=%d)"
                        % (c.cid, every))
        if cfg["pause"]:
            stop.wait(0.05)  # do not accept: new clients wait in the backlog
            continue
        try:
            client, peer = ls.accept()
        except socket.timeout:
            continue
        cid, next_id = next_id, next_id + 1
        if cfg["refuse"]:
            client.close()
            log("refused connection %d from %s:%d" % ((cid,) + peer[:2]))
            continue
        try:
            server = socket.create_connection(args.target, timeout=5)
        except OSError as e:
            client.close()
            log("connection %d: target unreachable (%s)" % (cid, e))
            continue
        server.settimeout(None)
        conn = Conn(cid, client, server)
        with conns_lock:
            conns[cid] = conn
        log("accepted connection %d from %s:%d" % ((cid,) + peer[:2]))
        for src, dst, up in ((client, server, True), (server, client, False)):
            threading.Thread(target=conn.pump, args=(src, dst, up),
                             daemon=True).start()
    ls.close()
    for c in list(conns.values()):
        c.close(True)
    log("exiting on signal")

if __name__ == "__main__":
    main()
