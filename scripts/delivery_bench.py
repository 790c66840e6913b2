#!/usr/bin/env python3
"""Delivery measurements that the shared bench does not make (no test asserts speed).

latency  detection -> first byte at the receiver, with an empty queue: the daemon
         (`chatbridge run`) polls a bench server every INTERVAL; before each poll one
         chat changes; a local receiver notes the wall-clock arrival of each request and
         compares it with the event's `occurred_at` (the detection time). Prints p50/p99.
memory   peak RSS of `chatbridge run --once` with N pending deliveries and a receiver
         that is down (connection refused), via /usr/bin/time -v.

    python3 scripts/delivery_bench.py latency --bin .build-rel/release/chatbridge [--samples 200]
    python3 scripts/delivery_bench.py memory  --bin .build-rel/release/chatbridge [--pending 100000]

Everything listens on 127.0.0.1 and stops at the end; every wait is bounded.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SHARED_BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench")
API_KEY = "bench-key-0123456789"


class Receiver:
    """Answers every request with 200 at once; notes each body and its arrival time."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.arrivals: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        buf = b""
        conn.settimeout(60)
        try:
            while True:
                first = None
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    if first is None:
                        first = time.time()
                    buf += chunk
                if first is None:
                    first = time.time()
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(rest) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                body, buf = rest[:length], rest[length:]
                with self.lock:
                    self.arrivals.append((first, body))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            return
        finally:
            conn.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


def start_bench_server(chats: int, versions: str) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen([sys.executable, os.path.join(SHARED_BENCH, "bench_server.py"), "--chats", str(chats),
                          "--api-key", API_KEY, "--versions", versions],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("READY "):
        p.kill()
        raise SystemExit(f"bench server did not start: {line!r}")
    return p, int(line.split()[1])


def write_config(work: str, server_port: int, hook_url: str, interval: str) -> str:
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        f.write('name: all\nwhen: "true"\nsend: [hook]\n')
    path = os.path.join(work, "chatbridge.yaml")
    with open(path, "w") as f:
        f.write(f"""sources:
  - name: bench
    url: http://127.0.0.1:{server_port}
    api_key: {API_KEY}
    interval: {interval}
    page_size: 250
store: {json.dumps(os.path.join(work, "store", "chatbridge.sqlite"))}
baseline: silent
rules: {json.dumps(rules)}
sinks:
  hook:
    type: webhook
    url: {hook_url}
    format: json
    timeout: 10s
delivery:
  concurrency: 8
""")
    return path


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def latency(a) -> int:
    server, port = start_bench_server(100, "0,1")  # 1% of 100 chats: one chat changes per switch
    receiver = Receiver()
    work = tempfile.mkdtemp(prefix="cb-latency-")
    cfg = write_config(work, port, f"http://127.0.0.1:{receiver.port}/hook", a.interval)
    daemon = subprocess.Popen([a.bin, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[float] = []
    try:
        time.sleep(2)  # the baseline poll
        pct = 0
        deadline = time.time() + a.samples * 10 + 30
        while len(samples) < a.samples and time.time() < deadline:
            pct = 1 - pct
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_bench/version?pct={pct}", timeout=30).read()
            wait_until = time.time() + 30
            while time.time() < wait_until:
                with receiver.lock:
                    got = list(receiver.arrivals)
                    receiver.arrivals.clear()
                if got:
                    for arrived, body in got:
                        event = json.loads(body)
                        samples.append((arrived - parse_time(event["occurred_at"])) * 1000)
                    break
                time.sleep(0.005)
    finally:
        daemon.terminate()
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
        receiver.stop()
        server.kill()
        server.wait()
    if not samples:
        print("no deliveries arrived")
        return 1
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"latency detection -> first byte over {len(samples)} single-event polls: "
          f"p50 {p(0.5):.1f} ms, p90 {p(0.9):.1f} ms, p99 {p(0.99):.1f} ms, max {samples[-1]:.1f} ms, "
          f"mean {statistics.mean(samples):.1f} ms")
    return 0


def memory(a) -> int:
    server, port = start_bench_server(100, "0")
    # A port nobody listens on: the receiver is down.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()
    work = tempfile.mkdtemp(prefix="cb-memory-")
    cfg = write_config(work, port, f"http://127.0.0.1:{dead_port}/hook", "30s")
    try:
        subprocess.run([a.bin, "run", "--once", "--config", cfg], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
        db = sqlite3.connect(os.path.join(work, "store", "chatbridge.sqlite"))
        now = time.time()
        with db:
            for i in range(a.pending):
                event_id = f"00000000-0000-7000-8000-{i:012d}"
                body = json.dumps({"id": event_id, "type": "chat.changed", "kinds": ["unread.increased"],
                                   "occurred_at": "2026-11-25T12:00:00.000Z", "source": "bench",
                                   "chat_id": f"chat-{i}", "chat": {"id": f"chat-{i}", "name": f"Chat {i}",
                                                                    "unread_count": 1, "padding": "x" * 1500},
                                   "previous": None, "changes": {"unread_count": {"from": 0, "to": 1}}})
                db.execute("INSERT INTO events (id, type, kinds, source, chat_id, occurred_at, json) "
                           "VALUES (?, 'chat.changed', 'unread.increased', 'bench', ?, ?, ?)",
                           (event_id, f"chat-{i}", now, body))
                db.execute("INSERT INTO deliveries (event_id, rule, sink, ordering_key, status, attempts, "
                           "next_attempt_at, created_at) VALUES (?, 'all', 'hook', ?, 'pending', 0, ?, ?)",
                           (event_id, f"bench/chat-{i % 20000}", now - 1, now))
        db.close()
        t0 = time.time()
        r = subprocess.run(["/usr/bin/time", "-v", a.bin, "run", "--once", "--drain-timeout", a.drain, "--config", cfg],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600)
        wall = time.time() - t0
        rss = [ln for ln in r.stderr.splitlines() if "Maximum resident set size" in ln]
        cpu = [ln.strip() for ln in r.stderr.splitlines() if "User time" in ln or "System time" in ln]
        db = sqlite3.connect(os.path.join(work, "store", "chatbridge.sqlite"))
        attempted = db.execute("SELECT count(*) FROM deliveries WHERE attempts > 0").fetchone()[0]
        pending = db.execute("SELECT count(*) FROM deliveries WHERE status = 'pending'").fetchone()[0]
        db.close()
        print(f"memory with {a.pending} pending deliveries, receiver down, run --once --drain-timeout {a.drain}: "
              f"rc {r.returncode}, wall {wall:.1f}s, {rss[0].strip() if rss else 'no rss'}; {'; '.join(cpu)}; "
              f"attempted {attempted}, still pending {pending}")
        return 0
    finally:
        server.kill()
        server.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["latency", "memory"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--interval", default="1s", help="poll interval of the daemon (latency)")
    ap.add_argument("--pending", type=int, default=100_000)
    ap.add_argument("--drain", default="30s", help="drain timeout of run --once (memory)")
    a = ap.parse_args()
    return latency(a) if a.mode == "latency" else memory(a)


if __name__ == "__main__":
    sys.exit(main())
