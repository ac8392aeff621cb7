"""The soak: a sustained load on the token endpoint and the bearer API, to
show that nothing fails and no worker's memory creeps. Run it with
`bench/soak` (see README); it is not part of the test run.

1. a fresh PostgreSQL database (apiclients_soak) is migrated and seeded like
   the benchmark's (bench.seed), and the Redis database of the cache flushed;
2. gunicorn serves the app with bin/serve's settings (config/gunicorn.conf.py,
   2 sync workers), rate limiting on with limits far above the load;
3. after a short warm-up, two wrk processes run side by side for --duration
   seconds, each with --concurrency connections: one POSTs /v1/oauth (Basic
   auth, rotating through 20 clients), the other GETs /v1/users with bearer
   tokens;
4. every --sample seconds the resident memory (VmRSS in /proc/<pid>/status)
   of every gunicorn worker (the master's children) is recorded;
5. throughput, errors, p50/p99 and each worker's memory over time are
   printed and written as markdown under bench/results/. It exits non-zero
   on any error or if a worker was replaced during the run.
"""

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# bench/bench.py, beside this script (its directory is first on sys.path).
from bench import (  # noqa: E402 (after the path is set)
    prepare_cache,
    seed,
    server_env,
    setup_django,
    versions,
    wait_until_up,
    write_header_files,
    wrk_command,
)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=60, help="seconds of load (at least 60)")
    ap.add_argument("--concurrency", type=int, default=64, help="connections per endpoint")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sample", type=float, default=5, help="seconds between memory samples")
    ap.add_argument("--warmup", type=int, default=10, help="seconds of load before the soak")
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--port", type=int, default=0, help="default: a free port")
    ap.add_argument(
        "--pg-url",
        default=os.environ.get("SOAK_PG_URL", "postgres://root@127.0.0.1:5432/apiclients_soak"),
        help="PostgreSQL database to (re)create for the run",
    )
    ap.add_argument(
        "--cache",
        default=os.environ.get("SOAK_CACHE_URL", "redis://127.0.0.1:6379/4"),
        help="CACHE_URL of the server; flushed before the run",
    )
    ap.add_argument("--label", default="", help="suffix of the results file")
    return ap.parse_args()


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def workers_of(master: int) -> list[int]:
    pids = []
    for task in os.listdir(f"/proc/{master}/task"):
        with open(f"/proc/{master}/task/{task}/children") as f:
            pids.extend(int(pid) for pid in f.read().split())
    return sorted(pids)


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def start_wrk(url: str, concurrency: int, duration: int, *, header_file: Path, method: str):
    env = {
        **os.environ,
        "BENCH_METHOD": method,
        "BENCH_HEADER": "Authorization",
        "BENCH_BODY": "grant_type=client_credentials" if method == "POST" else "",
    }
    cmd = wrk_command(url, concurrency, duration, header_file)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wrk_result(process: subprocess.Popen) -> dict:
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"wrk failed: {err}")
    r = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    return {
        "requests": r["requests"],
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "errors": sum(v for k, v in r.items() if k.startswith("errors_")),
        "errors_detail": {k[7:]: v for k, v in r.items() if k.startswith("errors_") and v},
    }


def main():
    args = parse_args()
    if args.duration < 60:
        raise SystemExit("a soak lasts at least 60 seconds")
    workdir = Path(tempfile.mkdtemp(prefix="apiclients-soak-"))
    if not args.port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            args.port = s.getsockname()[1]
    base_url = f"http://127.0.0.1:{args.port}"
    recreate_database(args.pg_url)
    setup_django(args.pg_url, base_url, args.cache)
    print(f"Seeding {args.clients} clients ...", flush=True)
    seeded = seed(SimpleNamespace(clients=args.clients, users=250))
    from django.db import connections

    info = versions()
    connections.close_all()
    prepare_cache(args.cache)

    env = server_env(
        database_url=args.pg_url,
        base_url=base_url,
        cache_url=args.cache,
        port=args.port,
        workers=args.workers,
        workdir=workdir,
    )
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(base_url + "/healthz")
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited: see {workdir / 'server.log'}")
        kept = seeded["kept"]
        basic, bearer = write_header_files(workdir, base_url, kept)
        token_url = base_url + "/v1/oauth"
        users_url = base_url + "/v1/users?active=true&pageSize=100"

        print(f"Warming up for {args.warmup}s ...", flush=True)
        warm = [
            start_wrk(token_url, args.concurrency, args.warmup, header_file=basic, method="POST"),
            start_wrk(users_url, args.concurrency, args.warmup, header_file=bearer, method="GET"),
        ]
        for process in warm:
            wrk_result(process)

        workers = workers_of(server.pid)
        print(
            f"Soaking for {args.duration}s at {args.concurrency} connections per endpoint; "
            f"workers {workers}",
            flush=True,
        )
        started = time.monotonic()
        load = {
            "POST /v1/oauth": start_wrk(
                token_url, args.concurrency, args.duration, header_file=basic, method="POST"
            ),
            "GET /v1/users": start_wrk(
                users_url, args.concurrency, args.duration, header_file=bearer, method="GET"
            ),
        }
        samples: list[tuple[float, dict[int, int | None]]] = []
        while any(p.poll() is None for p in load.values()):
            samples.append(
                (time.monotonic() - started, {pid: rss_kb(pid) for pid in workers_of(server.pid)})
            )
            t, rss = samples[-1]
            shown = "  ".join(f"{pid}: {kb / 1024:.1f} MB" for pid, kb in rss.items() if kb)
            print(f"  t={t:5.1f}s  {shown}", flush=True)
            time.sleep(args.sample)
        results = {name: wrk_result(p) for name, p in load.items()}
        samples.append(
            (time.monotonic() - started, {pid: rss_kb(pid) for pid in workers_of(server.pid)})
        )
        replaced = workers_of(server.pid) != workers
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()

    report = render(args, info, results, samples, workers, replaced)
    print()
    print(report)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M")
    suffix = f"-{args.label}" if args.label else ""
    out = ROOT / "bench" / "results" / f"{stamp}-soak{suffix}.md"
    out.write_text(report)
    print(f"Written to {out.relative_to(ROOT)}")
    errors = sum(r["errors"] for r in results.values())
    if errors or replaced:
        raise SystemExit(f"soak failed: {errors} errors, workers replaced: {replaced}")


def render(args, info, results, samples, workers, replaced) -> str:
    lines = [
        f"# Soak, {dt.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"- {args.duration}s of load after a {args.warmup}s warm-up; two wrk processes side by "
        f"side, {args.concurrency} connections each (one thread each, 10s timeout)",
        f"- gunicorn {info['gunicorn']}, {args.workers} sync workers (config/gunicorn.conf.py), "
        f"{info['database']}, cache {info['cache']}, rate limiting on with limits far above "
        "the load",
        f"- machine: {info['machine']}; Python {info['python']}, Django {info['django']}",
        f"- {args.clients} API clients in the tenant; the token load rotates through 20 of "
        "them, the bearer load through 5 tokens",
        "- load average at the end (1, 5, 15 min): "
        + ", ".join(f"{load:.2f}" for load in os.getloadavg())
        + " (the machine may be shared: compare memory, not throughput, across runs)",
        "",
        "## Throughput and latency",
        "",
        "| endpoint | requests | req/s | p50 ms | p99 ms | max ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        detail = f" ({r['errors_detail']})" if r["errors_detail"] else ""
        lines.append(
            f"| {name} | {r['requests']} | {r['rps']:.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['errors']}{detail} |"
        )
    total = sum(r["requests"] for r in results.values())
    errors = sum(r["errors"] for r in results.values())
    lines += [
        f"| both | {total} | {sum(r['rps'] for r in results.values()):.0f} | | | | {errors} |",
        "",
        "## Worker memory (VmRSS, MB)",
        "",
        f'Sampled every {args.sample:g}s during the load. "Warm" is the first sample at '
        "least 10s in; growth is end minus warm.",
        "",
    ]
    warm_index = next((i for i, (t, _) in enumerate(samples) if t >= 10), 0)
    mid_index = len(samples) // 2
    lines += [
        "| worker | start | warm | middle | end | growth after warm-up |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for pid in workers:

        def mb(index, pid=pid):
            kb = samples[index][1].get(pid)
            return kb / 1024 if kb else float("nan")

        growth = mb(-1) - mb(warm_index)
        lines.append(
            f"| {pid} | {mb(0):.1f} | {mb(warm_index):.1f} | {mb(mid_index):.1f} | "
            f"{mb(-1):.1f} | {growth:+.1f} |"
        )
    lines += [
        "",
        "Every sample:",
        "",
        "| t (s) | " + " | ".join(str(pid) for pid in workers) + " |",
        "|---:|" + "---:|" * len(workers),
    ]
    for t, rss in samples:
        cells = " | ".join(f"{rss.get(pid, 0) / 1024:.1f}" for pid in workers)
        lines.append(f"| {t:.0f} | {cells} |")
    lines += [
        "",
        f"Workers replaced during the run: {'yes' if replaced else 'no'}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
