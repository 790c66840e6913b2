#!/usr/bin/env python3
"""A poll on PostgreSQL beside the same poll on SQLite (scale.md, "Performance").

For each workspace size and each store, with a fresh store each time, the sequence
baseline poll -> unchanged poll -> 1%-changed poll of `chatbridge run --once` against
../shared/bench/bench_server.py (the same pages for both stores, one run on one machine).
Reports per step: wall time, chatbridge's CPU (user+sys of its process tree), the
PostgreSQL server's CPU during the step (all `postgres` processes, from /proc), peak RSS,
and the events printed (checked against the changed chats).

    scripts/with-postgres.sh python3 scripts/bench_postgres.py [--chats 100000] [--repeat 1]
    python3 scripts/bench_postgres.py --postgres postgres://USER@HOST:PORT/DB
    scripts/with-postgres.sh python3 scripts/bench_postgres.py --instances [--delivery-chats 5000]

--instances: delivery throughput to ../shared/bench/bench_receiver.py with 1, 2 and 3
instances on one database (every chat of a 5,000-chat workspace changed once: one
webhook each), and how long a killed instance's source waits until another instance
polls it (lease 5 s, interval 1 s: the target is at most lease + interval).

The PostgreSQL server is POSTGRES_TEST_URL (what scripts/with-postgres.sh
starts) unless --postgres names one; each run gets a database of its own, dropped after.
Needs a release build: swift build -c release.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
BENCH = os.path.join(PROJECT, "..", "shared", "bench")
sys.path.insert(0, BENCH)

import bench  # noqa: E402  (../shared/bench/bench.py: the server, the launcher, the checks)


def postgres_cpu_seconds() -> float:
    """User+system CPU of every `postgres` process now, with that of the server's
    processes that already ended (the postmaster's children's times): the server's work."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name != "postgres":
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # utime stime cutime cstime
    return total / ticks


def psql(url: str, sql: str) -> None:
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def run_store(b: bench.Bench, srv: bench.Child, n: int, store_kind: str, pg_url: str | None, pct: float) -> list[dict]:
    work = tempfile.mkdtemp(prefix=f"cb-{store_kind}-", dir=b.tmp_root)
    database = None
    if store_kind == "sqlite":
        store = os.path.join(work, "store", "chatbridge.sqlite")
    else:
        database = "bench_" + uuid.uuid4().hex[:12]
        psql(pg_url, f"CREATE DATABASE {database}")
        store = with_database(pg_url, database)
    config = bench.chatbridge_config(os.path.join(work, "cfg"), srv.port, store)
    rows = []
    try:
        for step in bench.STEPS:
            version = pct if step == "changed" else 0
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{srv.port}/_bench/version?pct={version}", method="POST"), timeout=600).read()
            expected = srv.get(f"/_bench/expected?pct={pct}")["changed_ids"] if step == "changed" else []
            pg_before = postgres_cpu_seconds()
            res = bench.run_measured([b.bin, "run", "--once", "--config", config, "--log-level", "warning"],
                                     env=b.env, timeout=900)
            pg_cpu = postgres_cpu_seconds() - pg_before
            check = bench.check_events(res["stdout"], expected)
            if res["rc"] != 0:
                bench.log(f"{store_kind} {step}: exit {res['rc']}: {res['stderr'][-1500:]}")
            rows.append({
                "chats": n, "store": store_kind, "step": step, "wall_s": res["wall_s"], "cpu_s": res["cpu_s"],
                "db_cpu_s": pg_cpu if store_kind == "postgres" else 0.0,
                "maxrss_mb": res["maxrss_kb"] / 1024, "events": check["events"], "check": check["check"],
                "rc": res["rc"],
            })
            bench.log(f"{n} {store_kind} {step}: wall {res['wall_s']:.2f}s cpu {res['cpu_s']:.2f}s "
                      f"db {pg_cpu:.2f}s {check['check']}")
    finally:
        if database:
            psql(pg_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    return rows


def start_daemons(b: bench.Bench, config: str, count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([b.bin, "run", "--config", config, "--log-level", "warning"], env=b.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(count)]


def stop_daemons(daemons: list[subprocess.Popen]) -> None:
    for d in daemons:
        if d.poll() is None:
            d.terminate()
    for d in daemons:
        try:
            d.wait(20)
        except subprocess.TimeoutExpired:
            d.kill()
            d.wait()


def status(b: bench.Bench, config: str) -> dict:
    r = subprocess.run([b.bin, "status", "--format", "json", "--config", config], env=b.env,
                       capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}


def run_instances(b: bench.Bench, pg_url: str, chats: int, counts: list[int]) -> list[str]:
    import time
    lines = []
    srv = b.start_server(chats, [100.0], ["--null-timestamps", "0"])
    rcv = bench.Child([sys.executable, os.path.join(BENCH, "bench_receiver.py")], "bench_receiver")
    try:
        expected = srv.get("/_bench/expected?pct=100")["count"]
        for count in counts:
            work = tempfile.mkdtemp(prefix=f"cb-inst{count}-", dir=b.tmp_root)
            database = "bench_" + uuid.uuid4().hex[:12]
            psql(pg_url, f"CREATE DATABASE {database}")
            try:
                rules = os.path.join(work, "cfg", "rules.yaml")
                os.makedirs(os.path.dirname(rules), exist_ok=True)
                with open(rules, "w") as f:
                    f.write('name: all\nwhen: "true"\nsend: [hook]\n')
                extra = (f"rules: {json.dumps(rules)}\nsinks:\n  hook:\n    type: webhook\n"
                         f"    url: http://127.0.0.1:{rcv.port}/hook\n    timeout: 10s\n"
                         "delivery:\n  concurrency: 8\nlease: 5s\n")
                config = bench.chatbridge_config(os.path.join(work, "cfg"), srv.port, with_database(pg_url, database),
                                                 extra=extra)
                srv.get("/_bench/version?pct=0")
                base = bench.run_measured([b.bin, "run", "--once", "--config", config], env=b.env, timeout=900)
                if base["rc"] != 0:
                    bench.log(f"baseline failed: {base['stderr'][-1500:]}")
                rcv.get(f"/_reset?target={expected}")
                srv.get("/_bench/version?pct=100")
                # The first instance polls (interval 30s: once) and all of them deliver.
                daemons = start_daemons(b, config, count)
                deadline = time.monotonic() + 600
                st = rcv.get("/_stats")
                while st["target_t"] is None and time.monotonic() < deadline:
                    time.sleep(0.2)
                    st = rcv.get("/_stats")
                stop_daemons(daemons)
                if st["target_t"] is None:
                    lines.append(f"| {count} | {st['count']} of {expected} delivered before the deadline | |")
                    continue
                window = st["target_t"] - st["first_t"]
                lines.append(f"| {count} | {expected / window:,.0f} deliveries/s | {st['distinct_ids']:,} distinct webhook-ids |")
                bench.log(f"{count} instance(s): {expected / window:.0f} deliveries/s")
            finally:
                psql(pg_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

        # Takeover: two instances, one source; kill the holder; time until the other polled it.
        work = tempfile.mkdtemp(prefix="cb-takeover-", dir=b.tmp_root)
        database = "bench_" + uuid.uuid4().hex[:12]
        psql(pg_url, f"CREATE DATABASE {database}")
        try:
            config = bench.chatbridge_config(os.path.join(work, "cfg"), srv.port, with_database(pg_url, database),
                                             extra="lease: 5s\n")
            with open(config) as f:
                text = f.read().replace("interval: 30s", "interval: 1s")
            with open(config, "w") as f:
                f.write(text)
            srv.get("/_bench/version?pct=0")
            daemons = start_daemons(b, config, 2)
            try:
                holder = None
                deadline = time.monotonic() + 120
                while holder is None and time.monotonic() < deadline:
                    time.sleep(0.5)
                    for inst in status(b, config).get("instances", []):
                        if inst.get("sources"):
                            holder = inst["name"]
                victim = next(d for d in daemons if holder and holder.endswith(f"-{d.pid}"))
                time.sleep(2)
                os.kill(victim.pid, signal.SIGKILL)
                killed_at = time.time()
                polled_after = None
                while polled_after is None and time.monotonic() < deadline + 60:
                    time.sleep(0.1)
                    for source in status(b, config).get("sources", []):
                        at = source.get("last_poll_at")
                        if at and datetime.datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() > killed_at:
                            polled_after = time.time() - killed_at
                lines.append(f"| takeover | polled again {polled_after:.1f} s after the kill | lease 5 s + interval 1 s |")
                bench.log(f"takeover: {polled_after:.1f}s")
            finally:
                stop_daemons(daemons)
        finally:
            psql(pg_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    finally:
        rcv.stop()
        srv.stop()
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chats", default="100000", help="workspace sizes, comma-separated")
    ap.add_argument("--repeat", type=int, default=1, help="runs per store and size (medians are reported)")
    ap.add_argument("--pct", type=float, default=1.0, help="percentage of chats changed in the third poll")
    ap.add_argument("--postgres", default=os.environ.get("POSTGRES_TEST_URL"),
                    help="a PostgreSQL server URL whose user may create databases")
    ap.add_argument("--bin", default=os.path.join(PROJECT, ".build", "release", "chatbridge"))
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--instances", action="store_true",
                    help="delivery throughput with 1, 2, 3 instances and the takeover time instead")
    ap.add_argument("--delivery-chats", type=int, default=5000)
    ap.add_argument("--instance-counts", default="1,2,3", help="with --instances: how many instances, comma-separated")
    a = ap.parse_args()
    if not a.postgres:
        sys.exit("no PostgreSQL server: run through scripts/with-postgres.sh or pass --postgres")
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"no chatbridge at {a.bin}: swift build -c release")

    args = argparse.Namespace(project=PROJECT, bin=a.bin, tmp=None, keep_tmp=False)
    b = bench.Bench(args)
    bench.build_launcher(b.tmp_root)
    if a.instances:
        try:
            lines = run_instances(b, a.postgres, a.delivery_chats, [int(x) for x in a.instance_counts.split(",")])
        finally:
            b.cleanup()
        print("| instances | throughput | |")
        print("| --- | --- | --- |")
        print("\n".join(lines))
        return 0
    rows: list[dict] = []
    try:
        for n in [int(x) for x in a.chats.split(",")]:
            srv = b.start_server(n, [a.pct])
            try:
                for _ in range(a.repeat):
                    for kind in ("sqlite", "postgres"):
                        rows += run_store(b, srv, n, kind, a.postgres, a.pct)
            finally:
                srv.stop()
    finally:
        b.cleanup()

    print(f"| chats | poll | SQLite wall | SQLite CPU | PostgreSQL wall | chatbridge CPU | server CPU | events |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in sorted({r["chats"] for r in rows}):
        for step in bench.STEPS:
            def med(kind, key):
                values = [r[key] for r in rows if r["chats"] == n and r["step"] == step and r["store"] == kind]
                return statistics.median(values) if values else float("nan")
            checks = {r["check"] for r in rows if r["chats"] == n and r["step"] == step}
            print(f"| {n:,} | {step} | {med('sqlite', 'wall_s'):.2f} s | {med('sqlite', 'cpu_s'):.2f} s | "
                  f"{med('postgres', 'wall_s'):.2f} s | {med('postgres', 'cpu_s'):.2f} s | "
                  f"{med('postgres', 'db_cpu_s'):.2f} s | {','.join(sorted(checks))} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all(r["rc"] == 0 and r["check"] in ("ok", "-") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
