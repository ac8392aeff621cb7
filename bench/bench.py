"""The benchmark: token endpoint and bearer API against the framework ceiling,
and the console at 10,000 clients. Run it with `bench/run` (see README).

In one run, on this machine:
1. a fresh database (PostgreSQL by default) is migrated and seeded with one
   tenant of N API clients and some console users; a few secrets are kept;
2. the console is measured in-process: SQL queries and server time of the
   list page (first page, a search, a sorted page), the details drawer and a
   create;
3. gunicorn (2 sync workers, with the settings bin/serve uses in production:
   config/gunicorn.conf.py) serves the app with the shared cache on Redis, and
   wrk, a separate process, loads GET /healthz (the ceiling), POST /v1/oauth
   (Basic auth) and GET /v1/users (Bearer) at each concurrency for a bounded
   time. The three take turns in short rounds, so that load from elsewhere on
   the machine falls on all of them alike and the ratios stay honest;
4. a table is printed and written as markdown under bench/results/.

Rate limiting is on (it is in production), with limits raised above what the
benchmark sends: the point is to measure its cost, not to be refused.
"""

import argparse
import base64
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_PG_URL", "postgres://root@127.0.0.1:5432/apiclients_bench"),
        help="PostgreSQL database to (re)create for the run",
    )
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=250)
    ap.add_argument("--duration", type=int, default=12, help="seconds per endpoint and concurrency")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="the endpoints take turns this many times per concurrency, so that load "
        "from elsewhere on the machine hits them all alike",
    )
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--port", type=int, default=8799)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--label", default="", help="suffix of the results file")
    ap.add_argument(
        "--cache",
        default=os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/3"),
        help="CACHE_URL of the server (rate limits); flushed before the run",
    )
    ap.add_argument("--skip-console", action="store_true")
    ap.add_argument(
        "--console-only",
        action="store_true",
        help="seed, measure the console and the management API in-process, print, stop",
    )
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also load the floor views of bench/floor_urls.py: what any token endpoint "
        "of this design must do (sign; + the client lookup; + the rate-limit check)",
    )
    return ap.parse_args()


def prepare_database(args, workdir: Path) -> str:
    if args.db == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    import psycopg

    url = args.pg_url
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


# Limits far above what 20 clients on one address send at full speed.
RATE_LIMIT_ENV = {
    "OAUTH_RATE_LIMIT_PER_CLIENT": "10000000",
    "OAUTH_RATE_LIMIT_PER_IP": "10000000",
}


def prepare_cache(url: str) -> None:
    if url.startswith("redis://"):
        import redis

        redis.Redis.from_url(url).flushdb()


def setup_django(database_url: str, base_url: str, cache_url: str):
    os.environ["DATABASE_URL"] = database_url
    os.environ["BASE_URL"] = base_url
    os.environ["CACHE_URL"] = cache_url
    os.environ.update(RATE_LIMIT_ENV)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(args) -> dict:
    """One tenant with N clients and some users; returns kept credentials."""
    import random

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from apiclients import secrets
    from apiclients.accounts import user_create
    from apiclients.models import ApiClient, Membership, Role
    from apiclients.services import api_client_create

    rng = random.Random(42)
    admin, _ = user_create(username="bench-admin", tenant_name="Bench", role=Role.CLOUD_ADMIN)
    tenant = admin.membership.tenant

    kept = []
    for i in range(20):
        client, secret = api_client_create(
            tenant=tenant,
            name=f"Kept integration {i:02d}",
            grants=["users:read", "audit-log:read", "alerts:read"],
            actor=admin,
        )
        kept.append((client.client_id, secret))

    now = timezone.now()
    batch = []
    for i in range(args.clients - len(kept)):
        c = ApiClient(
            tenant=tenant,
            name=f"Integration {i:05d} {rng.choice(['SIEM', 'SOAR', 'backup', 'HR sync'])}",
            description="Seeded for the benchmark",
            client_id=secrets.new_client_id(),
            grants=["alerts:read"],
            is_active=rng.random() > 0.1,
            last_redeemed_at=now - dt.timedelta(minutes=rng.randint(1, 200_000))
            if rng.random() > 0.3
            else None,
            created_by=admin,
            updated_by=admin,
        )
        c.set_secret(secrets.new_secret())
        batch.append(c)
    ApiClient.objects.bulk_create(batch, batch_size=1000)

    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"user{i:04d}", is_active=rng.random() > 0.2) for i in range(args.users)]
    )
    Membership.objects.bulk_create(
        [Membership(user=u, tenant=tenant, role=rng.choice([r.value for r in Role])) for u in users]
    )
    # A small tenant beside it: the console's query count must not grow
    # with the number of clients.
    small_admin, _ = user_create(
        username="bench-small-admin", tenant_name="Small", role=Role.CLOUD_ADMIN
    )
    small = small_admin.membership.tenant
    for i in range(10):
        api_client_create(tenant=small, name=f"Small integration {i}", actor=small_admin)

    from django.db import connection

    if connection.vendor == "postgresql":
        # As autovacuum would soon: plans for the real row counts.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"admin": admin, "small_admin": small_admin, "kept": kept}


def measure_console(seeded: dict, repeats: int = 15) -> list[dict]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    admin = seeded["admin"]
    client_id = seeded["kept"][3][0]
    base = "/administration/integrations/api-clients/"
    web = Client()
    web.force_login(admin)
    small = Client()
    small.force_login(seeded["small_admin"])
    from apiclients.access_tokens import access_token_create

    # The management API, called with personal access tokens.
    pat = access_token_create(user=admin, name="bench", days=1)[1]
    small_pat = access_token_create(user=seeded["small_admin"], name="bench", days=1)[1]
    mgmt = "/v1/api-clients"
    first = web.get(mgmt, HTTP_AUTHORIZATION=f"Bearer {pat}").json()

    def create_data(n):
        return {
            "name": f"Bench create {n}",
            "description": "",
            "grants": ["users:read"],
            "ip_mode": "all",
            "ip_allowlist": "",
            "status": "active",
        }

    cases = [
        ("List, first page, tenant of 10 clients", "small", base, None),
        ("List, first page", "get", base, None),
        ("List, search", "get", base + "?q=Integration+0042", None),
        ("List, sorted by last redeemed", "get", base + "?sort=-last_redeemed", None),
        ("List, page 200", "get", base + "?page=200", None),
        ("Details drawer", "get", f"{base}{client_id}/", None),
        ("Create (POST)", "post", base + "new/", create_data),
        ("Management API list, tenant of 10 clients", "api-small", mgmt, None),
        ("Management API list, first page (50)", "api", mgmt, None),
        (
            "Management API list, next page (cursor)",
            "api",
            f"{mgmt}?cursor={first['nextCursor']}",
            None,
        ),
        ("Management API list, 200 a page", "api", f"{mgmt}?pageSize=200", None),
        ("Management API list, search", "api", f"{mgmt}?search=Integration+0042", None),
        ("Management API list, inactive", "api", f"{mgmt}?status=inactive", None),
        ("Management API read", "api", f"{mgmt}/{client_id}", None),
    ]
    rows = []
    for label, method, url, data in cases:
        times, queries, statuses = [], [], set()
        for n in range(repeats):
            with CaptureQueriesContext(connection) as ctx:
                t0 = time.perf_counter()
                if method == "small":
                    resp = small.get(url)
                elif method == "api":
                    resp = web.get(url, HTTP_AUTHORIZATION=f"Bearer {pat}")
                elif method == "api-small":
                    resp = web.get(url, HTTP_AUTHORIZATION=f"Bearer {small_pat}")
                elif method == "get":
                    resp = web.get(url)
                else:
                    resp = web.post(url, data(n))
                times.append((time.perf_counter() - t0) * 1000)
            queries.append(len(ctx.captured_queries))
            statuses.add(resp.status_code)
        rows.append(
            {
                "case": label,
                "status": ",".join(str(s) for s in sorted(statuses)),
                "queries": max(queries),
                "median_ms": statistics.median(times[2:]),
                "p90_ms": sorted(times[2:])[int(len(times[2:]) * 0.9) - 1],
            }
        )
    return rows


def measure_api_queries(seeded: dict, base_url: str, repeats: int = 50) -> list[dict]:
    """SQL statements per request on the token and bearer paths (in-process,
    so every statement is seen)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client_id, secret = seeded["kept"][0]
    basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    api = Client()

    def token():
        r = api.post(
            "/v1/oauth",
            "grant_type=client_credentials",
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=basic,
        )
        assert r.status_code == 200, r.content
        return r

    from django.conf import settings
    from django.test import override_settings

    from oauth import coherence

    rows = []
    # With the client cache (as served), then without it (every request
    # loads its client: what a worker does while it has no lease).
    for cached, suffix in ((True, ""), (False, " (client cache off)")):
        with override_settings(OAUTH={**settings.OAUTH, "CLIENT_CACHE": cached}):
            coherence.shutdown()
            if cached:
                deadline = time.monotonic() + 5
                while not coherence.live() and time.monotonic() < deadline:
                    time.sleep(0.01)
            # The first token of a client writes "last redeemed" (then at most
            # once per OAUTH_LAST_REDEEMED_INTERVAL): count the steady state.
            token()
            bearer = "Bearer " + token().json()["access_token"]
            api.get("/v1/users?active=true&pageSize=100", HTTP_AUTHORIZATION=bearer)
            with CaptureQueriesContext(connection) as ctx:
                for _ in range(repeats):
                    token()
            rows.append(_per_request("POST /v1/oauth" + suffix, ctx, repeats))
            with CaptureQueriesContext(connection) as ctx:
                for _ in range(repeats):
                    r = api.get("/v1/users?active=true&pageSize=100", HTTP_AUTHORIZATION=bearer)
                    assert r.status_code == 200, r.content
            rows.append(_per_request("GET /v1/users" + suffix, ctx, repeats))
    coherence.shutdown()
    return rows


def _per_request(label: str, ctx, repeats: int) -> dict:
    kinds: dict[str, int] = {}
    for q in ctx.captured_queries:
        kind = q["sql"].lstrip().split(None, 1)[0].upper()
        kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "endpoint": label,
        "requests": repeats,
        "per_request": len(ctx.captured_queries) / repeats,
        "kinds": ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
    }


def wait_until_up(url: str, timeout: float = 30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:  # noqa: S310 (loopback)
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not come up at {url}")


def fetch_token(base_url: str, client_id: str, secret: str) -> str:
    req = urllib.request.Request(  # noqa: S310 (loopback)
        base_url + "/v1/oauth",
        data=b"grant_type=client_credentials",
        method="POST",
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310
        return json.load(r)["access_token"]


class CpuMeter:
    """CPU time (user + system) used by the gunicorn workers, the database
    backends serving them and Redis: per request, it says what an endpoint
    costs even when other work on the machine makes throughput noisy."""

    def __init__(self, server_pid: int, database_url: str, cache_url: str):
        self.server_pid = server_pid
        self.database_url = database_url
        self.cache_pid = None
        if cache_url.startswith("redis://"):
            import redis

            self.cache_pid = redis.Redis.from_url(cache_url).info("server")["process_id"]

    def _pids(self) -> dict[str, list[int]]:
        workers = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.server_pid:
                workers.append(int(stat.parent.name))
        backends = []
        if self.database_url.startswith("postgres"):
            import psycopg

            name = self.database_url.rsplit("/", 1)[1]
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                backends = [
                    pid
                    for (pid,) in conn.execute(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        [name],
                    )
                ]
        return {"app": workers, "db": backends, "cache": [self.cache_pid] if self.cache_pid else []}

    @staticmethod
    def _cpu(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> dict[str, dict[int, float]]:
        return {kind: {p: self._cpu(p) for p in pids} for kind, pids in self._pids().items()}

    @staticmethod
    def used(before, after) -> dict[str, float]:
        # Only processes alive at both ends count (a backend that came and
        # went in between is lost; with persistent connections there are none).
        return {
            kind: sum(after[kind][p] - before[kind].get(p, after[kind][p]) for p in after[kind])
            for kind in after
        }


def write_header_files(workdir: Path, base_url: str, kept) -> tuple[Path, Path]:
    """Authorization headers for wrk to rotate through: Basic for each kept
    client, Bearer tokens fetched for the first five."""
    basic = workdir / "basic.txt"
    basic.write_text(
        "".join(
            "Basic " + base64.b64encode(f"{cid}:{sec}".encode()).decode() + "\n"
            for cid, sec in kept
        )
    )
    bearer = workdir / "bearer.txt"
    bearer.write_text(
        "".join("Bearer " + fetch_token(base_url, cid, sec) + "\n" for cid, sec in kept[:5])
    )
    return basic, bearer


def wrk_command(url: str, concurrency: int, duration: int, header_file=None) -> list[str]:
    """wrk with the report script (bench/wrk_report.lua); the headers to take
    turns with, one per line, in `header_file`. One wrk thread: it keeps up
    easily, and on a small machine every core it does not take is left to
    the server. (bench.py and soak.py)"""
    cmd = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "bench" / "wrk_report.lua"),
        url,
    ]
    if header_file:
        cmd += ["--", str(header_file)]
    return cmd


def server_env(
    *, database_url: str, base_url: str, cache_url: str, port: int, workers: int, workdir: Path
) -> dict:
    """The environment of the gunicorn under load: bin/serve's settings, on
    the benchmark's port, with rate limits above the load; the access log is
    written, as in production, to a file instead of the terminal."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "BASE_URL": base_url,
        "CACHE_URL": cache_url,
        **RATE_LIMIT_ENV,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "ACCESS_LOG": str(workdir / "access.log"),
        "GUNICORN_LOG_LEVEL": "warning",
    }


def run_wrk(url, concurrency, duration, *, header_file=None, header="", method="GET", body=""):
    cmd = wrk_command(url, concurrency, duration, header_file)
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_HEADER": header, "BENCH_BODY": body}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    r = json.loads(line)
    errors = sum(v for k, v in r.items() if k.startswith("errors_"))
    return {
        "seconds": r["duration_us"] / 1e6,
        "cpu": {},
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "errors": errors,
        "non_2xx": r["errors_status"],
        "requests": r["requests"],
    }


def combine(runs: list[dict]) -> dict:
    """The rounds of one endpoint: throughput over all of them, the median
    round's p50 and p99, and the worst round's p99."""
    return {
        "rps": sum(r["requests"] for r in runs) / sum(r["seconds"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "p99_max_ms": max(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        # ms of CPU per request
        "cpu": {
            kind: 1000 * sum(r["cpu"].get(kind, 0) for r in runs) / sum(r["requests"] for r in runs)
            for kind in ("app", "db", "cache")
        },
    }


def versions() -> dict:
    import django
    import jwt
    from django.db import connection

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SHOW server_version")
            db = "PostgreSQL " + cur.fetchone()[0]
        else:
            cur.execute("select sqlite_version()")
            db = "SQLite " + cur.fetchone()[0]
    gunicorn = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--version"], capture_output=True, text=True
    ).stdout.strip()
    gunicorn = gunicorn.removeprefix("gunicorn ").strip("()").removeprefix("version ")
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "django": django.get_version(),
        "pyjwt": jwt.__version__,
        "database": db,
        "gunicorn": gunicorn,
        "wrk": " ".join(wrk.split()[:2]) if wrk else "?",
        "cache": cache_version(),
    }


def cache_version() -> str:
    from django.conf import settings

    backend = settings.CACHES["default"]["BACKEND"]
    if "redis" not in backend.lower():
        return backend.rsplit(".", 1)[-1]
    import redis

    info = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"]).info("server")
    return f"Redis {info['redis_version']}"


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    args = parse_args()
    if not shutil.which("wrk") and not args.console_only:
        raise SystemExit("wrk is missing (bench/run installs it with apt-get)")
    workdir = Path(tempfile.mkdtemp(prefix="apiclients-bench-"))
    base_url = f"http://127.0.0.1:{args.port}"
    database_url = prepare_database(args, workdir)
    prepare_cache(args.cache)
    setup_django(database_url, base_url, args.cache)
    load_before = load_average()

    print(f"Seeding {args.clients} clients and {args.users} users ...", flush=True)
    t0 = time.perf_counter()
    seeded = seed(args)
    print(f"  seeded in {time.perf_counter() - t0:.1f}s", flush=True)

    console = [] if args.skip_console else measure_console(seeded)
    if console:
        print("\n".join(console_lines(console)), flush=True)
    if args.console_only:
        return
    api_queries = measure_api_queries(seeded, base_url)
    from django.db import connections

    info = versions()
    connections.close_all()
    prepare_cache(args.cache)

    env = server_env(
        database_url=database_url,
        base_url=base_url,
        cache_url=args.cache,
        port=args.port,
        workers=args.workers,
        workdir=workdir,
    )
    if args.floor:
        env["DJANGO_SETTINGS_MODULE"] = "bench.floor_settings"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"],
        cwd=ROOT,
        env=env,
    )
    results = []
    try:
        wait_until_up(base_url + "/healthz")
        meter = CpuMeter(server.pid, database_url, args.cache)
        kept = seeded["kept"]
        basic, bearer = write_header_files(workdir, base_url, kept)
        endpoints = [
            ("GET /healthz", base_url + "/healthz", {}),
            (
                "POST /v1/oauth",
                base_url + "/v1/oauth",
                {
                    "header_file": basic,
                    "header": "Authorization",
                    "method": "POST",
                    "body": "grant_type=client_credentials",
                },
            ),
            (
                "GET /v1/users",
                base_url + "/v1/users?active=true&pageSize=100",
                {"header_file": bearer, "header": "Authorization"},
            ),
        ]
        if args.floor:
            ids = workdir / "client_ids.txt"
            ids.write_text("".join(cid + "\n" for cid, _ in kept))
            floor = {"header_file": ids, "header": "X-Client-Id", "method": "POST"}
            endpoints[2:2] = [
                ("floor: sign", base_url + "/bench/floor/sign", floor),
                ("floor: + lookup", base_url + "/bench/floor/lookup", floor),
                ("floor: sign + limits", base_url + "/bench/floor/limits-only", floor),
                ("floor: + limits", base_url + "/bench/floor/limits", floor),
            ]
        # Warm up every worker and code path once.
        for _, url, kw in endpoints:
            run_wrk(url, 4, 2, **kw)
        per_round = max(1, round(args.duration / args.rounds))
        for c in [int(x) for x in args.concurrency.split(",")]:
            runs = {name: [] for name, _, _ in endpoints}
            for _ in range(args.rounds):
                for name, url, kw in endpoints:
                    before = meter.snapshot()
                    run = run_wrk(url, c, per_round, **kw)
                    run["cpu"] = meter.used(before, meter.snapshot())
                    runs[name].append(run)
            ceiling = None
            for name, _, _ in endpoints:
                r = combine(runs[name])
                if ceiling is None:
                    ceiling = r["rps"]
                r.update(endpoint=name, concurrency=c, ratio=r["rps"] / ceiling)
                results.append(r)
                print(
                    f"  c={c:<3} {name:<17} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms"
                    f"  p99 {r['p99_ms']:6.1f} ms (worst {r['p99_max_ms']:6.1f})"
                    f"  errors {r['errors']}  ratio {r['ratio']:.0%}"
                    f"  CPU/req app {r['cpu']['app']:.2f} db {r['cpu']['db']:.2f}"
                    f" cache {r['cpu']['cache']:.2f} ms",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(timeout=10)

    info["load"] = f"{load_before} before, {load_average()} after"
    report = render(args, info, results, console, api_queries)
    print()
    print(report)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M")
    suffix = f"-{args.label}" if args.label else ""
    out = ROOT / "bench" / "results" / f"{stamp}-{args.db}{suffix}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
    print(f"Written to {out.relative_to(ROOT)}")


def render(args, info, results, console, api_queries) -> str:
    per_round = max(1, round(args.duration / args.rounds))
    lines = [
        f"# Benchmark, {dt.datetime.now():%Y-%m-%d %H:%M}"
        + (f" ({args.label})" if args.label else ""),
        "",
        f"- database: {info['database']} ({args.db}); cache: {info['cache']} ({args.cache})",
        f"- machine: {info['machine']}; load average (1/5/15 min) {info['load']}",
        f"- Python {info['python']}, Django {info['django']}, PyJWT {info['pyjwt']}, "
        f"gunicorn {info['gunicorn']} with {args.workers} sync workers "
        f"(config/gunicorn.conf.py), {info['wrk']} (1 thread)",
        f"- {args.clients} API clients and {args.users} users in the tenant; per concurrency "
        f"the endpoints take turns for {args.rounds} rounds of {per_round}s each, after a 2s "
        "warm-up of each endpoint",
        "",
        "## HTTP (wrk, separate process, loopback)",
        "",
        "req/s over all rounds; p50 and p99 of the median round, and the worst round's p99.",
        "CPU per request: milliseconds of CPU time used by the gunicorn workers (app), the",
        "PostgreSQL backends serving them (db) and Redis (cache), over all rounds; it",
        "varies much less than throughput when other work shares the machine.",
        "",
        "| concurrency | endpoint | req/s | p50 ms | p99 ms | worst p99 ms | errors "
        "| vs /healthz | CPU/req app | db | cache |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cpu = r["cpu"]
        lines.append(
            f"| {r['concurrency']} | {r['endpoint']} | {r['rps']:.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['p99_max_ms']:.1f} | {r['errors']} | {r['ratio']:.0%} "
            f"| {cpu['app']:.2f} | {cpu['db']:.2f} | {cpu['cache']:.2f} |"
        )
    lines += [
        "",
        "## SQL per request (in-process, every statement counted)",
        "",
        "| endpoint | requests | statements per request | of which |",
        "|---|---:|---:|---|",
    ]
    for q in api_queries:
        lines.append(
            f"| {q['endpoint']} | {q['requests']} | {q['per_request']:.2f} | {q['kinds']} |"
        )
    if console:
        lines += ["", *console_lines(console)]
    return "\n".join(lines) + "\n"


def console_lines(console) -> list[str]:
    lines = [
        "## Console and management API (in-process, Django test client, an admin)",
        "",
        "| request | status | SQL queries | median ms | p90 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for c in console:
        lines.append(
            f"| {c['case']} | {c['status']} | {c['queries']} | {c['median_ms']:.1f} "
            f"| {c['p90_ms']:.1f} |"
        )
    return lines


if __name__ == "__main__":
    main()
