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

The PostgreSQL server is POSTGRES_TEST_URL (what scripts/with-postgres.sh
starts) unless --postgres names one; each run gets a database of its own, dropped after.
Needs a release build: swift build -c release.
"""
from __future__ import annotations

import argparse
import json
import os
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
    """User+system CPU of every `postgres` process now (the server's work so far)."""
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
        total += int(fields[11]) + int(fields[12])  # utime, stime
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chats", default="100000", help="workspace sizes, comma-separated")
    ap.add_argument("--repeat", type=int, default=1, help="runs per store and size (medians are reported)")
    ap.add_argument("--pct", type=float, default=1.0, help="percentage of chats changed in the third poll")
    ap.add_argument("--postgres", default=os.environ.get("POSTGRES_TEST_URL"),
                    help="a PostgreSQL server URL whose user may create databases")
    ap.add_argument("--bin", default=os.path.join(PROJECT, ".build", "release", "chatbridge"))
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args()
    if not a.postgres:
        sys.exit("no PostgreSQL server: run through scripts/with-postgres.sh or pass --postgres")
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"no chatbridge at {a.bin}: swift build -c release")

    args = argparse.Namespace(project=PROJECT, bin=a.bin, tmp=None, keep_tmp=False)
    b = bench.Bench(args)
    bench.build_launcher(b.tmp_root)
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
