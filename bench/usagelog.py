"""The token endpoint with the usage log on and off, in one sitting.

    bench/run-usagelog [--db postgres|sqlite] [--rounds 5] [--duration 40] [--concurrency 8]

Two gunicorn servers (bin/serve's settings, 2 sync workers each) share one
database and Redis: one with OAUTH_USAGE_LOG=false, one with it on. wrk
loads POST /v1/oauth (Basic auth, 20 clients in turn) on each in turn, for
several short rounds, so that other load on the machine falls on both
alike. Then both servers are stopped gracefully (their workers write what
they hold) and the usage log's count of successful token requests is
compared with the number the server with the log on answered 200 (its
access log) and with what wrk counted.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402 (bench/bench.py, beside this file)

ROOT = bench.ROOT


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument(
        "--pg-url",
        default=os.environ.get(
            "BENCH_PG_URL", "postgres://root@127.0.0.1:5432/apiclients_bench_usagelog"
        ),
    )
    ap.add_argument(
        "--cache", default=os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/3")
    )
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=40, help="seconds per server in all")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--port", type=int, default=8797)
    ap.add_argument("--workers", type=int, default=2)
    return ap.parse_args()


def main():
    args = parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing (bench/run installs it with apt-get)")
    workdir = Path(tempfile.mkdtemp(prefix="apiclients-bench-usagelog-"))
    args.label = ""
    database_url = bench.prepare_database(args, workdir)
    bench.prepare_cache(args.cache)
    bench.setup_django(database_url, f"http://127.0.0.1:{args.port}", args.cache)
    seeded = bench.seed(args)
    from django.db import connections

    connections.close_all()

    servers = {}
    for name, port, on in (("off", args.port, "false"), ("on", args.port + 1, "true")):
        base = f"http://127.0.0.1:{port}"
        logdir = workdir / name
        logdir.mkdir()
        env = bench.server_env(
            database_url=database_url,
            base_url=base,
            cache_url=args.cache,
            port=port,
            workers=args.workers,
            workdir=logdir,
        )
        env["OAUTH_USAGE_LOG"] = on
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"],
            cwd=ROOT,
            env=env,
        )
        servers[name] = {"base": base, "process": process, "log": logdir / "access.log"}
    runs = {"off": [], "on": []}
    try:
        for server in servers.values():
            bench.wait_until_up(server["base"] + "/healthz")
            # CPU time of this server's workers (the database and Redis are
            # shared by both servers, so only the app's share is told apart).
            server["meter"] = bench.CpuMeter(server["process"].pid, "", "")
        basic, _ = bench.write_header_files(workdir, servers["off"]["base"], seeded["kept"])
        load = {
            "header_file": basic,
            "header": "Authorization",
            "method": "POST",
            "body": "grant_type=client_credentials",
        }
        for server in servers.values():  # warm-up, not counted below
            bench.run_wrk(server["base"] + "/v1/oauth", 4, 2, **load)
        warm = {name: _served(server["log"]) for name, server in servers.items()}
        per_round = max(1, round(args.duration / args.rounds))
        for i in range(args.rounds):
            # Alternate which goes first, so neither always follows the other.
            order = ("off", "on") if i % 2 == 0 else ("on", "off")
            for name in order:
                meter = servers[name]["meter"]
                before = meter.snapshot()
                run = bench.run_wrk(
                    servers[name]["base"] + "/v1/oauth", args.concurrency, per_round, **load
                )
                run["cpu"] = meter.used(before, meter.snapshot())["app"]
                runs[name].append(run)
    finally:
        for server in servers.values():
            server["process"].terminate()  # graceful: workers write what they hold
        for server in servers.values():
            server["process"].wait(timeout=30)

    from django.db.models import Sum

    from apiclients.models import UsageLogEntry

    logged = (
        UsageLogEntry.objects.filter(endpoint="token", outcome="ok").aggregate(n=Sum("count"))["n"]
        or 0
    )
    served_on = _served(servers["on"]["log"])
    rps = {
        name: sum(r["requests"] for r in rs) / sum(r["seconds"] for r in rs)
        for name, rs in runs.items()
    }
    errors = {name: sum(r["errors"] for r in rs) for name, rs in runs.items()}
    cpu = {
        name: 1000 * sum(r["cpu"] for r in rs) / sum(r["requests"] for r in rs)
        for name, rs in runs.items()
    }
    counted_on = sum(r["requests"] for r in runs["on"])
    print(f"load average {bench.load_average()} (1/5/15 min)")
    print(
        f"database {args.db}, concurrency {args.concurrency}, {args.rounds} rounds of {per_round}s"
    )
    for name in ("off", "on"):
        per_round_rps = ", ".join(f"{r['requests'] / r['seconds']:.0f}" for r in runs[name])
        print(
            f"usage log {name:>3}: {rps[name]:7.0f} req/s (rounds: {per_round_rps}), "
            f"errors {errors[name]}, app CPU {cpu[name]:.3f} ms/request"
        )
    print(
        f"on/off: throughput {rps['on'] / rps['off']:.1%}, "
        f"app CPU per request {cpu['on'] / cpu['off']:.1%}"
    )
    print(
        f"token requests answered 200 by the server with the log on: {served_on} "
        f"({warm['on']} of them warm-up; wrk counted {counted_on} after it)"
    )
    print(f"usage log's count of successful token requests:          {logged}")
    print("counts equal" if logged == served_on else "COUNTS DIFFER")
    return 0 if logged == served_on else 1


def _served(access_log: Path) -> int:
    if not access_log.exists():
        return 0
    pattern = re.compile(r'"POST /v1/oauth HTTP/1\.1" 200 ')
    time.sleep(0.2)
    return sum(1 for line in access_log.open() if pattern.search(line))


if __name__ == "__main__":
    raise SystemExit(main())
