"""The crowd queue under 50 concurrent annotators: next item + vote, through a real Daphne, on PostgreSQL.

What it does:
  1. creates its own PostgreSQL database `cryolabel_bench_<pid>` and migrates it;
  2. loads a realistic state (rows only; `data`/`preview` are fake paths) with COPY:
       --annotators bulk annotators (2 000), --imagettes imagettes (100 000): 65 % open with 0-2 votes,
       25 % complete (k = 3 votes, settled by a consensus run), 10 % settled by an imported label (no votes);
       --gold of the open/complete ones are gold items, which also carry the uncounted votes annotators cast on
       gold, so that the total is --votes (300 000); every (annotator, imagette) pair votes at most once and
       vote_count equals the number of votes on every non-gold item;
       --leases active leases (assignments) of bulk annotators on open items and --expired-leases expired ones,
       with reserved_count as the queue keeps it;
       --heavy annotators (the first bulk ones) cast --heavy-votes votes each, all on still-open started items
       (real crowds are skewed: a few people cast tens of thousands of votes); they are among the measured clients,
       and their `next` must cost what anyone's does;
     then, with --analyze, VACUUM ANALYZE; without it (the default) the database stays as freshly loaded, never
     analyzed, with autovacuum off on the queue's tables for the run: the queries must not need statistics;
  3. creates --clients annotators (accounts.services.user_create, Role.ANNOTATOR) and their API tokens
     (accounts.services.token_for), and starts Daphne (`python -m daphne ... eoplatform.asgi:application`) on the
     bench database, with the local Redis as broker and channel layer (own key prefix), DEBUG=0;
  4. drives the clients (a light keep-alive HTTP/1.1 client on asyncio streams, one connection each), all at once,
     each pausing --think s on average (exponential) between rounds, as an annotator looking at the imagette:
       warm-up   --warmup rounds of next + vote, not measured;
       baseline  the same clients doing GET /api/v1/me/ twice per round (token auth + permission lookups,
                 no queue), then GET /healthz twice per round: the platform's floor at the same concurrency;
       queue     --rounds rounds of GET /api/v1/queue/next/?count=1 then POST /api/v1/votes/, latency of each
                 request and of the pair recorded (the target is checked on these);
       capacity  --capacity-rounds rounds back to back (no think time): the throughput, for information;
       solo      one client alone, --solo-rounds rounds: the service time without queueing;
     with --bridge both, steps 3-4 run once per HTTP bridge (CRYOLABEL_HTTP_BRIDGE: builtin, then a2wsgi), Daphne
     restarted each time, --passes times each, alternated (builtin, a2wsgi, builtin, a2wsgi) on the same database,
     so that drift on a shared machine and the queue state the votes move on fall on both alike;
  5. checks the database: every vote the clients got a 201 for is stored exactly once with what was sent, the
     clients have no other votes, no item has more than k counted votes (vote_count = votes on non-gold items),
     queue_state agrees with vote_count, reserved_count agrees with the leases;
  6. profiles in-process (queries and SQL time per request, EXPLAIN ANALYZE of the queue query);
  7. prints p50/p95/max, PASS/FAIL against the target (p95 < 25 ms for next and for vote), with --bridge both a
     table of both bridges and the ratios a2wsgi/builtin, and removes the database, its Redis keys, the temporary
     folder and Daphne.

Run from the repository root:  .venv/bin/python bench/bench_crowd_queue.py [--rounds 20] [--clients 50] [--think 2]
                                [--bridge builtin|a2wsgi|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DEFAULT_PG,
    DEFAULT_REDIS,
    Server,
    clean_platform_env,
    django_close_connections,
    django_setup,
    exit_on_sigterm,
    latency_row,
    load_line,
    machine_line,
    migrate,
    percentile,
    pg_copy,
    pg_create_database,
    pg_drop_database,
    start_daphne,
    verdict,
)

K = 3  # CRYOLABEL_VOTES_PER_ITEM, the default the platform runs with (checked against settings below)


# ================================================================================================================
# The data set
# ================================================================================================================
@dataclass
class Loaded:
    imagettes: int = 0
    votes: int = 0
    counted_votes: int = 0
    gold_votes: int = 0
    gold: int = 0
    annotators: int = 0
    leases: int = 0
    expired_leases: int = 0
    heavy: int = 0
    heavy_votes: int = 0
    states: Counter = field(default_factory=Counter)
    gold_ids: set[int] = field(default_factory=set)
    seconds: float = 0.0


def load_data(args) -> Loaded:
    """Annotators, imagettes, votes, gold and leases, consistent with what the queue maintains."""
    import numpy as np
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from accounts.roles import Role
    from accounts.services import roles_ensure
    from annotations.models import Assignment, GoldLabel, Imagette, Vote

    t_start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    now = datetime.now(UTC)
    out = Loaded()

    # --- annotators (bulk: an unusable password, no hashing) ---------------------------------------------------
    groups: dict[Role, Group] = roles_ensure()
    users = User.objects.bulk_create(
        [User(username=f"bulk{i:05d}", password="!bench-unusable", date_joined=now) for i in range(args.annotators)],
        batch_size=2000,
    )
    through = User.groups.through
    through.objects.bulk_create([through(user_id=u.pk, group_id=groups[Role.ANNOTATOR].pk) for u in users],
                                batch_size=2000)
    annotator_ids = np.array([u.pk for u in users], dtype=np.int64)
    n_ann = len(annotator_ids)
    out.annotators = n_ann

    # --- imagettes --------------------------------------------------------------------------------------------
    n = args.imagettes
    draw = rng.random(n)
    state = np.where(draw < 0.65, "open", np.where(draw < 0.90, "complete", "settled"))
    vote_count = np.where(state == "open", rng.integers(0, K, n), np.where(state == "complete", K, 0))
    candidates = np.flatnonzero(state != "settled")
    gold_idx = np.sort(rng.choice(candidates, size=min(args.gold, len(candidates)), replace=False))
    is_gold = np.zeros(n, dtype=bool)
    is_gold[gold_idx] = True
    counted_total = int(vote_count.sum())
    extra_total = args.votes - counted_total
    if extra_total < 0 or (extra_total and not len(gold_idx)):
        raise SystemExit(f"--votes {args.votes} does not fit the mix: the open/complete items alone carry "
                         f"{counted_total} counted votes (at most {K} each); the rest goes on gold items")
    extra = np.zeros(n, dtype=np.int64)
    if len(gold_idx):
        share = np.full(len(gold_idx), extra_total // len(gold_idx))
        share[: extra_total % len(gold_idx)] += 1
        room = n_ann - vote_count[gold_idx]
        if (share > room).any():
            raise SystemExit(f"--votes {args.votes}: {int(share.max())} uncounted votes per gold item but only "
                             f"{n_ann} annotators; raise --gold or --annotators")
        extra[gold_idx] = share

    # Heavy annotators (positions 0..heavy-1): the first voter of --heavy-votes open started non-gold items each.
    started = np.flatnonzero((state == "open") & (vote_count > 0) & ~is_gold)
    wanted = args.heavy * args.heavy_votes
    if wanted > len(started):
        raise SystemExit(f"--heavy {args.heavy} x --heavy-votes {args.heavy_votes} = {wanted} votes on open started "
                         f"items, but only {len(started)} such items; raise --imagettes")
    heavy_items = rng.permutation(started)[:wanted]
    base = rng.integers(0, n_ann, n)
    base[heavy_items] = np.repeat(np.arange(args.heavy), args.heavy_votes)
    out.heavy, out.heavy_votes = args.heavy, args.heavy_votes

    # Leases: active ones on open non-gold items with room, expired ones likewise (not yet released).
    open_room = np.flatnonzero((state == "open") & ~is_gold)
    lease_idx = rng.choice(open_room, size=min(args.leases + args.expired_leases, len(open_room)), replace=False)
    reserved = np.zeros(n, dtype=np.int64)
    reserved[lease_idx] = 1

    acq0 = datetime(2016, 1, 1, tzinfo=UTC)
    table = Imagette._meta.db_table
    columns = ["id", "key", "content_hash", "source_product", "source_path", "source_format", "swath", "polarisation",
               "acquisition_time", "center_lat", "center_lon", "incidence_angle", "pixel_spacing", "min_lat",
               "max_lat", "min_lon", "max_lon", "width", "height", "is_db", "data", "preview", "queue_state",
               "vote_count", "reserved_count", "label_mask", "label_source", "label_agreement", "label_version",
               "created_at"]
    lats = rng.uniform(-75, 78, n)
    lons = rng.uniform(-180, 180, n)
    secs = rng.integers(0, 366 * 86400, n)
    label_bits = rng.integers(0, 10, n)

    def imagette_rows():
        for i in range(n):
            pk = i + 1
            digest = f"{pk:064x}"
            product = f"S1A_WV_SLC__1SSV_2016{pk % 12 + 1:02d}01T000000_{pk // 4:08d}.SAFE"
            st = str(state[i])
            if st == "settled":
                label = (1 << int(label_bits[i]), "imported", None, 1)
            elif st == "complete":
                label = (1 << int(label_bits[i]), "consensus", round(float(0.5 + 0.5 * rng.random()), 3), 0)
            else:
                label = (None, "", None, 0)
            lat, lon = float(lats[i]), float(lons[i])
            yield (pk, f"{product}/measurement/s1a-wv{1 + pk % 2}-slc-vv-{pk:08d}.tiff", digest, product,
                   f"/data/bench/{product}", "safe", f"WV{1 + pk % 2}", "VV",
                   acq0 + timedelta(seconds=int(secs[i])), lat, lon, 23.5 if pk % 2 else 36.5, 4.1,
                   lat - 0.1, lat + 0.1, lon - 0.1, lon + 0.1, 256, 256, True,
                   f"imagettes/{digest[:2]}/{digest}.npy", f"imagettes/{digest[:2]}/{digest}.png", st,
                   int(vote_count[i]), int(reserved[i]), label[0], label[1], label[2], label[3],
                   now - timedelta(days=60))

    # --- votes: distinct annotators per item ------------------------------------------------------------------
    # Counted votes (at most K): a base annotator (random, or a heavy one above) and two random distinct offsets.
    off1 = rng.integers(1, n_ann // 2, n)
    off2 = rng.integers(n_ann // 2, n_ann, n)
    offsets = np.stack([np.zeros(n, dtype=np.int64), off1, off2], axis=1)
    voters = (base[:, None] + offsets) % n_ann  # positions into annotator_ids; row i: its first vote_count used
    vote_masks = rng.integers(0, 10, args.votes + 10)
    second = rng.random(args.votes + 10) < 0.1
    vote_seconds = np.round(rng.lognormal(1.3, 0.6, args.votes + 10), 2)
    vote_age = rng.integers(60, 60 * 86400, args.votes + 10)
    vote_table = Vote._meta.db_table
    vote_columns = ["imagette_id", "annotator_id", "label_mask", "seconds", "created_at"]
    gold_extra_voters: dict[int, np.ndarray] = {}
    for i in gold_idx:
        taken = set(voters[i, : vote_count[i]].tolist())
        pool = np.setdiff1d(np.arange(n_ann), np.fromiter(taken, dtype=np.int64, count=len(taken)))
        gold_extra_voters[int(i)] = rng.choice(pool, size=int(extra[i]), replace=False)

    def vote_rows():
        j = 0
        for i in range(n):
            who = list(voters[i, : vote_count[i]])
            if is_gold[i]:
                who.extend(gold_extra_voters[i].tolist())
            for position in who:
                bit = int(vote_masks[j])
                mask = (1 << bit) | ((1 << ((bit + 3) % 10)) if second[j] else 0)
                yield (i + 1, int(annotator_ids[position]), mask, float(vote_seconds[j]),
                       now - timedelta(seconds=int(vote_age[j])))
                j += 1

    lease_rows = []
    for m, i in enumerate(lease_idx):
        voted = set(voters[i, : vote_count[i]].tolist())
        position = int(rng.integers(0, n_ann))
        while position in voted:
            position = (position + 1) % n_ann
        expired = m >= args.leases
        expires = now - timedelta(minutes=5) if expired else now + timedelta(minutes=15)
        lease_rows.append((int(i) + 1, int(annotator_ids[position]), expires, True, expires - timedelta(minutes=15)))

    with connection.cursor() as cursor:
        raw = cursor.cursor
        out.imagettes = pg_copy(raw, table, columns, imagette_rows())
        out.votes = pg_copy(raw, vote_table, vote_columns, vote_rows())
        pg_copy(raw, GoldLabel._meta.db_table, ["imagette_id", "label_mask", "created_at"],
              ((int(i) + 1, 1 << int(label_bits[i]), now - timedelta(days=30)) for i in gold_idx))
        pg_copy(raw, Assignment._meta.db_table, ["imagette_id", "annotator_id", "expires_at", "counted", "created_at"],
              lease_rows)
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    out.counted_votes = counted_total
    out.gold_votes = int(extra.sum())
    out.gold = len(gold_idx)
    out.gold_ids = {int(i) + 1 for i in gold_idx}
    out.leases = min(args.leases, len(lease_idx))
    out.expired_leases = len(lease_idx) - out.leases
    out.states = Counter(state.tolist())

    with connection.cursor() as cursor:
        if args.analyze:
            cursor.execute("VACUUM ANALYZE")
        else:  # as freshly loaded: no statistics, and none gathered behind the bench's back
            for model in (Imagette, Vote, Assignment, GoldLabel):
                cursor.execute(f"ALTER TABLE {model._meta.db_table} SET (autovacuum_enabled = false)")
    out.seconds = time.perf_counter() - t_start
    return out


# ================================================================================================================
# CPU accounting (where the cores went during a phase)
# ================================================================================================================
_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _postgres_cpu() -> float:
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "postgres":
                    total += _proc_cpu(int(entry))
            except OSError:
                pass
    return total


def _machine_busy() -> tuple[float, float]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


def cpu_snapshot(server: Server) -> dict[str, float]:
    busy, total = _machine_busy()
    t = os.times()
    return {"daphne": sum(_proc_cpu(p.pid) for p in server.procs), "postgres": _postgres_cpu(),
            "client": t.user + t.system, "busy": busy, "total": total, "wall": time.perf_counter()}


def cpu_line(before: dict[str, float], after: dict[str, float]) -> str:
    wall = after["wall"] - before["wall"]
    cores = os.cpu_count() or 1
    share = {k: 100 * (after[k] - before[k]) / wall for k in ("daphne", "postgres", "client")}
    busy = 100 * (after["busy"] - before["busy"]) / max(after["total"] - before["total"], 1e-9) * cores
    return (f"CPU (100 % = one core, {cores} cores): daphne {share['daphne']:.0f} %, postgres (all backends on the "
            f"server) {share['postgres']:.0f} %, this client {share['client']:.0f} %, whole machine {busy:.0f} %")


# ================================================================================================================
# The load
# ================================================================================================================
@dataclass
class Phase:
    name: str
    first: list[float] = field(default_factory=list)  # next item, or the first baseline GET
    second: list[float] = field(default_factory=list)  # vote, or the second baseline GET
    pair: list[float] = field(default_factory=list)
    heavy_first: list[float] = field(default_factory=list)  # next, of the heavy annotators only
    statuses: Counter = field(default_factory=Counter)
    accepted: list[tuple[int, int, int, int]] = field(default_factory=list)  # (vote id, user id, imagette, mask)
    empty: int = 0
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    cpu: str = ""
    threads: list[int] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


SLUG_LIST: list[str] = []


class _RawResponse:
    __slots__ = ("status_code", "content")

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code, self.content = status_code, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, one connection per annotator: a small fraction
    of httpx's CPU per request, so that on a 2-core machine the load generator takes less from the server.
    Handles Content-Length and chunked bodies and servers that close the connection."""

    def __init__(self, base_url: str) -> None:
        host_port = base_url.split("://", 1)[1].rstrip("/")
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _send(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> _RawResponse:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: application/json"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        reader = self.reader
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, chunked, close = None, False, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b""):
                        pass
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            content = b"".join(parts)
        elif length is not None:
            content = await reader.readexactly(length)
        else:
            content, close = await reader.read(), True
        if close:
            await self.aclose()
        return _RawResponse(status, content)

    async def _request(self, method, path, headers, body):
        try:
            return await self._send(method, path, headers, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            await self.aclose()  # a kept-alive connection the server closed meanwhile: one retry, fresh
            return await self._send(method, path, headers, body)

    async def get(self, path: str, headers: dict[str, str]) -> _RawResponse:
        return await self._request("GET", path, headers, None)

    async def post(self, path: str, json: dict, headers: dict[str, str]) -> _RawResponse:  # noqa: A002
        return await self._request("POST", path, headers, _json_dumps(json))

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def _json_dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


async def _annotator(client, user_id: int, token: str, phase: Phase, rounds: int, deadline: float | None,
                     think: float, rng: random.Random, mode: str, start: asyncio.Event, record: bool) -> None:
    import httpx

    headers = {"Authorization": f"Token {token}"}
    await start.wait()
    if think > 0:  # annotators do not all arrive in the same millisecond
        await asyncio.sleep(rng.uniform(0, think))
    done = 0
    while (done < rounds) if deadline is None else (time.perf_counter() < deadline):
        done += 1
        try:
            if mode == "queue":
                t0 = time.perf_counter()
                r1 = await client.get("/api/v1/queue/next/?count=1", headers=headers)
                t1 = time.perf_counter()
                phase.statuses[f"next {r1.status_code}"] += 1
                items = r1.json() if r1.status_code == 200 else []
                if not items:
                    phase.empty += 1
                    if r1.status_code != 200 and len(phase.errors) < 5:
                        phase.errors.append(f"next -> {r1.status_code} {r1.text[:200]}")
                    continue
                bits = rng.sample(range(len(SLUG_LIST)), 2 if rng.random() < 0.1 else 1)
                body = {"imagette": items[0]["id"], "labels": [SLUG_LIST[b] for b in bits],
                        "seconds": round(rng.uniform(1.0, 9.0), 2)}
                r2 = await client.post("/api/v1/votes/", json=body, headers=headers)
                t2 = time.perf_counter()
                phase.statuses[f"vote {r2.status_code}"] += 1
                if r2.status_code == 201:
                    mask = sum(1 << b for b in bits)
                    phase.accepted.append((r2.json()["id"], user_id, items[0]["id"], mask))
                elif len(phase.errors) < 5:
                    phase.errors.append(f"vote on {items[0]['id']} -> {r2.status_code} {r2.text[:200]}")
            else:
                path = "/api/v1/me/" if mode == "me" else "/healthz"
                t0 = time.perf_counter()
                r1 = await client.get(path, headers=headers)
                t1 = time.perf_counter()
                r2 = await client.get(path, headers=headers)
                t2 = time.perf_counter()
                for r in (r1, r2):
                    phase.statuses[f"{path} {r.status_code}"] += 1
                    if r.status_code != 200 and len(phase.errors) < 5:
                        phase.errors.append(f"{path} -> {r.status_code} {r.text[:200]}")
        except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            phase.statuses[f"transport error {type(exc).__name__}"] += 1
            if len(phase.errors) < 5:
                phase.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        if record:
            if user_id in HEAVY_IDS:
                phase.heavy_first.append(t1 - t0)
            phase.first.append(t1 - t0)
            phase.second.append(t2 - t1)
            phase.pair.append(t2 - t0)
        if think > 0:
            await asyncio.sleep(rng.expovariate(1.0 / think))


CLIENT_KIND = ["raw"]
HEAVY_IDS: set[int] = set()


async def _drive(base_url: str, clients: list[tuple[int, str]], phase: Phase, *, rounds: int,
                 duration: float | None, think: float, mode: str, seed: int, record: bool = True) -> None:
    import httpx

    limits = httpx.Limits(max_connections=len(clients), max_keepalive_connections=len(clients))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as shared:
        raw = [RawClient(base_url) for _ in clients] if CLIENT_KIND[0] == "raw" else []
        start = asyncio.Event()
        deadline = None if not duration else time.perf_counter() + duration
        tasks = [
            asyncio.create_task(_annotator(raw[n] if raw else shared, uid, token, phase, rounds, deadline, think,
                                           random.Random(seed * 1000 + n), mode, start, record))
            for n, (uid, token) in enumerate(clients)
        ]
        await asyncio.sleep(0)
        t0 = time.perf_counter()
        start.set()
        try:
            await asyncio.gather(*tasks)
        finally:
            phase.wall = time.perf_counter() - t0
            for client in raw:
                await client.aclose()


def run_phase(server: Server, clients, name: str, *, mode: str, rounds: int, duration: float | None = None,
              think: float = 0.0, seed: int = 0, record: bool = True, sample_threads: bool = False) -> Phase:
    phase = Phase(name)
    before = cpu_snapshot(server)
    if sample_threads:

        async def sampled():
            async def sampler():
                while True:
                    phase.threads.append(max(server.threads(), default=0))
                    await asyncio.sleep(0.25)

            s = asyncio.create_task(sampler())
            try:
                await _drive(server.base_url, clients, phase, rounds=rounds, duration=duration, think=think,
                             mode=mode, seed=seed, record=record)
            finally:
                s.cancel()

        asyncio.run(sampled())
    else:
        asyncio.run(_drive(server.base_url, clients, phase, rounds=rounds, duration=duration, think=think,
                           mode=mode, seed=seed, record=record))
    phase.cpu = cpu_line(before, cpu_snapshot(server))
    return phase


def print_phase(phase: Phase, labels: tuple[str, str, str]) -> None:
    rate = phase.requests / phase.wall if phase.wall else 0.0
    print(f"{phase.name}: {phase.requests} requests in {phase.wall:.1f} s = {rate:.0f} requests/s; "
          f"statuses {dict(sorted(phase.statuses.items()))}" + (f"; {phase.empty} empty next" if phase.empty else ""))
    for label, values in zip(labels, (phase.first, phase.second, phase.pair), strict=True):
        print(latency_row(label, values))
    if phase.heavy_first:
        print(latency_row("next  (heavy annotators)", phase.heavy_first))
    print(f"  {phase.cpu}")
    if phase.threads:
        print(f"  daphne threads during the run: max {max(phase.threads)} (sampled every 0.25 s)")
    for error in phase.errors:
        print(f"  error: {error}")


# ================================================================================================================
# Checks and profile
# ================================================================================================================
def check_database(loaded: Loaded, accepted: list[tuple[int, int, int, int]], client_ids: list[int],
                   since) -> list[str]:
    """Every 201 stored once as sent; no other votes by the clients since the run began (the heavy ones came with
    votes of their own); counts consistent. Returns problems."""
    from django.db import connection

    from annotations.models import Assignment, GoldLabel, Imagette, Vote

    problems: list[str] = []
    im, vt, gl, asg = (m._meta.db_table for m in (Imagette, Vote, GoldLabel, Assignment))
    ids = [a[0] for a in accepted]
    if len(set(ids)) != len(ids):
        problems.append(f"the server answered 201 with the same vote id twice ({len(ids) - len(set(ids))} times)")
    with connection.cursor() as c:
        c.execute(f"SELECT id, annotator_id, imagette_id, label_mask FROM {vt} WHERE id = ANY(%s)", [ids])
        stored = {row[0]: row[1:] for row in c.fetchall()}
        missing = [i for i in ids if i not in stored]
        wrong = [a for a in accepted if a[0] in stored and stored[a[0]] != a[1:]]
        if missing:
            problems.append(f"{len(missing)} votes answered 201 are not stored (e.g. id {missing[0]})")
        if wrong:
            problems.append(f"{len(wrong)} stored votes differ from what was sent (e.g. {wrong[0]})")
        c.execute(f"SELECT count(*) FROM {vt} WHERE annotator_id = ANY(%s) AND created_at >= %s", [client_ids, since])
        by_clients = c.fetchone()[0]
        if by_clients != len(set(ids)):
            problems.append(f"the clients have {by_clients} votes stored but got {len(set(ids))} answered 201")
        c.execute(f"SELECT count(*) FROM (SELECT 1 FROM {vt} GROUP BY annotator_id, imagette_id "
                  f"HAVING count(*) > 1) d")
        if (dups := c.fetchone()[0]):
            problems.append(f"{dups} (annotator, imagette) pairs have more than one vote")
        # Non-gold items: every vote counted, so vote_count = votes <= k. Gold items: vote_count <= k only
        # (votes cast on gold through a gold assignment are not counted).
        c.execute(f"""
            SELECT count(*) FILTER (WHERE g.id IS NULL AND coalesce(v.n, 0) <> i.vote_count),
                   count(*) FILTER (WHERE g.id IS NULL AND coalesce(v.n, 0) > %s),
                   count(*) FILTER (WHERE i.vote_count > %s),
                   count(*) FILTER (WHERE (i.queue_state = 'complete') <> (i.vote_count >= %s)
                                      AND i.queue_state <> 'settled'),
                   count(*) FILTER (WHERE i.queue_state = 'settled' AND i.vote_count <> 0),
                   max(i.vote_count)
            FROM {im} i
            LEFT JOIN (SELECT imagette_id, count(*) n FROM {vt} GROUP BY imagette_id) v ON v.imagette_id = i.id
            LEFT JOIN {gl} g ON g.imagette_id = i.id""", [K, K, K])
        mismatch, over_votes, over_count, bad_state, settled_votes, max_count = c.fetchone()
        if mismatch:
            problems.append(f"{mismatch} non-gold imagettes have vote_count different from their votes")
        if over_votes or over_count:
            problems.append(f"{over_votes} non-gold imagettes hold more than k={K} votes, "
                            f"{over_count} imagettes have vote_count > k")
        if bad_state:
            problems.append(f"{bad_state} imagettes have queue_state disagreeing with vote_count")
        if settled_votes:
            problems.append(f"{settled_votes} settled imagettes got counted votes")
        c.execute(f"""
            SELECT count(*) FROM {im} i
            LEFT JOIN (SELECT imagette_id, count(*) FILTER (WHERE expires_at > now()) live, count(*) n
                       FROM {asg} WHERE counted GROUP BY imagette_id) a ON a.imagette_id = i.id
            WHERE i.reserved_count < coalesce(a.live, 0) OR i.reserved_count > coalesce(a.n, 0)""")
        if (bad_reserved := c.fetchone()[0]):
            problems.append(f"{bad_reserved} imagettes have reserved_count disagreeing with their leases")
        c.execute(f"SELECT count(*) FROM {vt}")
        total = c.fetchone()[0]
    print(f"check: {len(ids)} votes answered 201, {len(stored)} found by id, {by_clients} stored for the clients; "
          f"{total} votes in all (loaded {loaded.votes}); max vote_count {max_count} (k={K})")
    return problems


class _SqlRecorder:
    """Each query's SQL and time (execute_wrapper), and each commit's, on the default connection."""

    def __init__(self) -> None:
        self.items: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.items.append((time.perf_counter() - t0, sql))

    @contextmanager
    def installed(self):
        from django.db import connection

        connection.ensure_connection()
        original = connection._commit

        def timed_commit():
            t0 = time.perf_counter()
            try:
                return original()
            finally:
                self.items.append((time.perf_counter() - t0, "COMMIT"))

        connection._commit = timed_commit
        try:
            with connection.execute_wrapper(self):
                yield self
        finally:
            del connection._commit


def _in_process_pairs(client, n: int, per: dict | None = None) -> None:
    for _ in range(n):
        rec = _SqlRecorder()
        with rec.installed():
            t0 = time.perf_counter()
            r = client.get("/api/v1/queue/next/?count=1")
            wall = time.perf_counter() - t0
        if per is not None:
            per["next"].append((wall, rec.items))
        items = r.json() if r.status_code == 200 else []
        if not items:
            return
        rec = _SqlRecorder()
        with rec.installed():
            t0 = time.perf_counter()
            client.post("/api/v1/votes/", {"imagette": items[0]["id"], "labels": [SLUG_LIST[0]]},
                        content_type="application/json")
            wall = time.perf_counter() - t0
        if per is not None:
            per["vote"].append((wall, rec.items))


def profile_in_process(loaded: Loaded, clients_users, bulk_user, *, cprofile: bool = False) -> None:
    """Queries and SQL time per request without concurrency, and the plan of the queue query."""
    from django.db import connection, transaction
    from django.test import Client

    from accounts.services import token_for
    from annotations.models import Imagette

    user = clients_users[0]
    client = Client(HTTP_AUTHORIZATION=f"Token {token_for(user=user)}")
    per: dict[str, list[tuple[float, list[tuple[float, str]]]]] = {"next": [], "vote": []}
    _in_process_pairs(client, 30, per)
    print("in-process, one request at a time (django.test.Client, same database, no HTTP server, no Daphne):")
    for name, rows in per.items():
        if not rows:
            continue
        rows.sort(key=lambda r: r[0])
        median = rows[len(rows) // 2]
        counts = sorted(len(r[1]) for r in rows)
        sql_ms = sorted(1000 * sum(t for t, _ in r[1]) for r in rows)
        wall_ms = 1000 * median[0]
        print(f"  {name:<5} {counts[len(counts) // 2]} statements (min {counts[0]}, max {counts[-1]}), "
              f"SQL + commit {sql_ms[len(sql_ms) // 2]:.1f} ms of {wall_ms:.1f} ms for the whole request "
              f"(medians of {len(rows)}); the median request:")
        for t, sql in median[1]:
            print(f"    {1000 * t:6.2f} ms  {sql[:120]}{'...' if len(sql) > 120 else ''}")
    waiting = Imagette.objects.filter(queue_state=Imagette.QueueState.COMPLETE, label_source="")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        n_waiting = waiting.count()
        times.append(time.perf_counter() - t0)
    print(f"  the count consensus_maybe_schedule() runs after every vote that completes an item while no consensus "
          f"job is pending (complete, label_source ''): {1000 * sorted(times)[2]:.1f} ms (median of 5; "
          f"{n_waiting} such rows now)")
    if cprofile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        _in_process_pairs(client, 20)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(40)
        print("cProfile of 20 in-process next + vote pairs (cumulative):")
        print("\n".join(line[:160] for line in buf.getvalue().splitlines()[:60]))

    from django.utils import timezone

    from annotations.services import queue as votes

    for who, label in ((user, "a bench client"), (bulk_user, "a heavy annotator")):
        for tier, level in (("level", K - 1), ("level", 1), ("fresh", 0)):
            with transaction.atomic(), connection.cursor() as c:
                params = {"open": "open", "k": K, "me": who.pk, "expires": timezone.now(), "now": timezone.now(),
                          "window": votes.WINDOW, "level": level, "offset": 0, "start_at": None}
                c.execute("EXPLAIN (ANALYZE, BUFFERS) " + votes._pg_take_sql(tier, False), params)
                plan = [row[0] for row in c.fetchall()]
                transaction.set_rollback(True)  # the lease it made is not kept
            timing = next((p for p in plan if p.startswith("Execution Time")), "?")
            print(f"EXPLAIN ANALYZE of one pick ({tier}{f' {level} votes' if tier == 'level' else ''} window) for "
                  f"{label}: {timing}")
            if who is bulk_user and tier == "level" and level == 1:
                for p in plan:
                    print(f"    {p}")
    waiting_sql = Imagette.objects.filter(queue_state=Imagette.QueueState.COMPLETE, label_source="").query
    sql, params = waiting_sql.sql_with_params()
    with connection.cursor() as c:
        c.execute("EXPLAIN (ANALYZE) SELECT count(*) FROM (" + sql + ") s", params)
        plan = [row[0] for row in c.fetchall()]
    print("EXPLAIN ANALYZE of the 'completed, waiting for consensus' count run after an item completes "
          f"(consensus_maybe_schedule): {next((p for p in plan if p.startswith('Execution Time')), '?')}")
    for p in plan:
        print(f"    {p}")


# ================================================================================================================
# Passes: one Daphne, one HTTP bridge, every measured phase
# ================================================================================================================
BRIDGES = ("builtin", "a2wsgi")


def a2wsgi_version() -> str | None:
    """The a2wsgi version installed in this interpreter (Daphne runs under the same one), or None."""
    from importlib import metadata

    try:
        return metadata.version("a2wsgi")
    except metadata.PackageNotFoundError:
        return None


@dataclass
class Pass:
    bridge: str
    number: int  # 1, 2, ... per bridge
    warm: Phase
    baselines: list[Phase]
    queue: Phase
    capacity: Phase | None
    solo: Phase
    tracebacks: int = 0

    @property
    def accepted(self) -> list[tuple[int, int, int, int]]:
        return (self.warm.accepted + self.queue.accepted + self.solo.accepted
                + (self.capacity.accepted if self.capacity else []))


QUEUE_LABELS = ("next  GET /queue/next/", "vote  POST /votes/", "pair  next + vote")


def run_pass(args, env: dict[str, str], clients, tmp: Path, bridge: str, number: int, *, parser) -> Pass:
    """Start Daphne with CRYOLABEL_HTTP_BRIDGE=`bridge`, run warm-up, baselines, queue, capacity and solo, stop it.
    Pass `number` of each bridge uses the same seeds, so the bridges see the same think times and labels."""
    log_dir = tmp / f"daphne-{bridge}-{number}"
    log_dir.mkdir(parents=True, exist_ok=True)
    seed = args.seed + 10 * (number - 1)
    tag = f"[{bridge} #{number}] " if args.bridge == "both" else ""
    duration = args.duration or None
    server = start_daphne({**env, "CRYOLABEL_HTTP_BRIDGE": bridge}, log_dir, servers=args.servers, port=args.port)
    try:
        print(f"{tag}daphne: {args.servers} process(es) at {server.base_url}, HTTP bridge {bridge}, DEBUG=0, "
              f"DATABASE_POOL_SIZE={args.pool_size} per process, CRYOLABEL_HTTP_THREADS="
              f"{args.http_threads or 'default'}; {load_line()}")
        warm = run_phase(server, clients, f"{tag}warm-up", mode="queue", rounds=args.warmup, seed=seed + 1,
                         record=False)
        print(f"{tag}warm-up: {warm.requests} requests in {warm.wall:.1f} s, statuses {dict(warm.statuses)}")
        baselines: list[Phase] = []
        for name in [b.strip() for b in args.baselines.split(",") if b.strip()]:
            if name not in ("me", "healthz"):
                parser.error(f"unknown baseline {name!r}")
            phase = run_phase(server, clients,
                              f"{tag}baseline GET {'/api/v1/me/' if name == 'me' else '/healthz'}",
                              mode=name, rounds=args.rounds, duration=duration, think=args.think, seed=seed + 2)
            print_phase(phase, ("GET (1st of round)", "GET (2nd of round)", "both"))
            baselines.append(phase)
        queue = run_phase(server, clients, f"{tag}queue", mode="queue", rounds=args.rounds, duration=duration,
                          think=args.think, seed=seed + 3, sample_threads=True)
        print_phase(queue, QUEUE_LABELS)
        capacity = None
        if args.capacity_rounds and args.think > 0:
            capacity = run_phase(server, clients, f"{tag}capacity (the same annotators back to back, no think time)",
                                 mode="queue", rounds=args.capacity_rounds, seed=seed + 5)
            print_phase(capacity, QUEUE_LABELS)
        solo = run_phase(server, clients[:1], f"{tag}solo (one client)", mode="queue", rounds=args.solo_rounds,
                         seed=seed + 4)
        print_phase(solo, QUEUE_LABELS)
    finally:
        server.stop()
    log = server.log_tail(200_000)
    tracebacks = log.count("Traceback")
    if tracebacks or "ERROR" in log:
        print(f"{tag}daphne logged {tracebacks} tracebacks; last lines:\n{log[-2000:]}")
    print()
    return Pass(bridge, number, warm, baselines, queue, capacity, solo, tracebacks)


def pooled(phases: list[Phase], name: str) -> Phase:
    """The samples, statuses and wall time of several runs of one phase together (the passes of one bridge)."""
    out = Phase(name)
    for p in phases:
        out.first += p.first
        out.second += p.second
        out.pair += p.pair
        out.heavy_first += p.heavy_first
        out.statuses.update(p.statuses)
        out.empty += p.empty
        out.wall += p.wall
    return out


def summarize(args, passes: list[Pass], problems: list[str], label: str = "") -> bool:
    """The summary of one bridge (its passes pooled); returns whether it met the target."""
    queue = pooled([p.queue for p in passes], "queue")
    solo = pooled([p.solo for p in passes], "solo")
    caps = [p.capacity for p in passes if p.capacity is not None]
    capacity = pooled(caps, "capacity") if caps else None
    baselines = [pooled([p.baselines[i] for p in passes], passes[0].baselines[i].name)
                 for i in range(len(passes[0].baselines))]
    p95_next, p95_vote = (percentile(queue.first, 95) * 1000, percentile(queue.second, 95) * 1000)
    p95_pair = percentile(queue.pair, 95) * 1000
    p95_heavy = percentile(queue.heavy_first, 95) * 1000 if queue.heavy_first else 0.0
    rate = queue.requests / queue.wall if queue.wall else 0
    over = f" over {len(passes)} passes" if len(passes) > 1 else ""
    print(f"summary{label} ({args.clients} concurrent annotators, think {args.think:g} s, {len(queue.pair)} measured "
          f"pairs{over}, {rate:.0f} requests/s):")
    print(f"  p95 next {p95_next:.1f} ms, vote {p95_vote:.1f} ms, pair {p95_pair:.1f} ms; solo (no queueing) "
          f"p50 next {percentile(solo.first, 50) * 1000:.1f} ms, vote {percentile(solo.second, 50) * 1000:.1f} ms")
    if queue.heavy_first:
        print(f"  heavy annotators ({args.heavy} with {args.heavy_votes} votes each): p95 next {p95_heavy:.1f} ms "
              f"({len(queue.heavy_first)} requests)")
    for b in baselines:
        p95_b = percentile(b.first + b.second, 95) * 1000
        print(f"  {b.name.split('] ')[-1]}: p95 {p95_b:.1f} ms at {b.requests / b.wall if b.wall else 0:.0f} "
              f"requests/s -> ratio next/baseline {p95_next / p95_b:.2f}x, vote/baseline {p95_vote / p95_b:.2f}x")
    if args.think == 0 and rate:
        print(f"  closed loop without think time: each client waits on the others, so latency ~ "
              f"clients / throughput = {args.clients} / {rate:.0f} per s = {1000 * args.clients / rate:.0f} ms "
              f"per request (Little's law); the solo numbers are the service time")
    if capacity is not None and capacity.wall:
        c_rate = capacity.requests / capacity.wall
        print(f"  capacity: {c_rate:.0f} requests/s back to back ({c_rate / 2:.0f} labels/s, "
              f"{c_rate / 2 * 3600:,.0f} an hour), p95 next {percentile(capacity.first, 95) * 1000:.0f} ms "
              f"(queueing: {args.clients} clients / {c_rate:.0f} per s); the offered load above was "
              f"{rate:.0f} requests/s")
    ok = bool(p95_next < args.target_ms and p95_vote < args.target_ms and p95_heavy < args.target_ms
              and not problems and queue.pair)
    print(f"  target: p95 < {args.target_ms:g} ms for next (every client, and the heavy ones alone) and for vote; "
          f"measured next {p95_next:.1f} ms (heavy {p95_heavy:.1f} ms), vote {p95_vote:.1f} ms; "
          f"{'unanalyzed' if not args.analyze else 'analyzed'} database; consistency "
          f"{'OK' if not problems else 'FAILED'} -> {verdict(ok)}")
    return ok


def _figures(passes: list[Pass]) -> dict[str, float]:
    queue = pooled([p.queue for p in passes], "queue")
    solo = pooled([p.solo for p in passes], "solo")
    caps = [p.capacity for p in passes if p.capacity is not None and p.capacity.wall]
    return {
        "solo p50 next (ms)": percentile(solo.first, 50) * 1000,
        "solo p50 vote (ms)": percentile(solo.second, 50) * 1000,
        "queue p50 next (ms)": percentile(queue.first, 50) * 1000,
        "queue p95 next (ms)": percentile(queue.first, 95) * 1000,
        "queue p50 vote (ms)": percentile(queue.second, 50) * 1000,
        "queue p95 vote (ms)": percentile(queue.second, 95) * 1000,
        "capacity (req/s)": (sum(c.requests for c in caps) / sum(c.wall for c in caps)) if caps else float("nan"),
    }


def compare_bridges(args, by_bridge: dict[str, list[Pass]]) -> None:
    """The table of both bridges, the ratio a2wsgi/builtin of each figure and the loss the issue's rule weighs."""
    builtin, other = _figures(by_bridge["builtin"]), _figures(by_bridge["a2wsgi"])
    n = len(by_bridge["builtin"])
    print(f"bridges compared ({args.clients} concurrent annotators, think {args.think:g} s; passes alternated "
          f"builtin, a2wsgi x {n}; samples of the passes pooled; a2wsgi {a2wsgi_version()}):")
    print(f"  {'':<22} {'builtin':>9} {'a2wsgi':>9} {'a2wsgi/builtin':>15} {'a2wsgi loss':>12}")
    losses: dict[str, float] = {}
    for key, b in builtin.items():
        a = other[key]
        ratio = a / b if b else float("nan")
        loss = (1 - ratio) if key.startswith("capacity") else (ratio - 1)  # > 0: a2wsgi worse
        losses[key] = loss
        print(f"  {key:<22} {b:9.1f} {a:9.1f} {ratio:14.2f}x {100 * loss:+11.1f} %")
    for bridge, passes in by_bridge.items():
        per = "; ".join(
            f"#{p.number}: solo p50 next {percentile(p.solo.first, 50) * 1000:.1f} / vote "
            f"{percentile(p.solo.second, 50) * 1000:.1f} ms"
            + (f", capacity {p.capacity.requests / p.capacity.wall:.0f} req/s" if p.capacity and p.capacity.wall
               else "")
            for p in passes)
        print(f"  {bridge} per pass: {per}")
    steady = [k for k in losses if k.startswith(("solo p50", "capacity"))]
    worst = max(steady, key=lambda k: losses[k])
    within = all(losses[k] <= 0.10 for k in steady)
    print(f"  rule (the least noisy figures: solo p50 of next and vote, capacity): a2wsgi's worst loss "
          f"{100 * losses[worst]:+.1f} % ({worst}) -> {'within' if within else 'NOT within'} 10 %")


# ================================================================================================================
# Main
# ================================================================================================================
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Crowd queue latency under concurrent annotators (next item + vote through Daphne on "
        "PostgreSQL), against a trivial authenticated GET measured in the same run. Target: p95 < 25 ms for "
        "each request.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent annotators")
    parser.add_argument("--rounds", type=int, default=20, help="next + vote rounds per annotator (measured)")
    parser.add_argument("--duration", type=float, default=0,
                        help="run each measured phase for this many seconds instead of --rounds")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds per annotator first")
    parser.add_argument("--think", type=float, default=2.0,
                        help="mean pause (s, exponential) between an annotator's rounds: looking at the imagette and "
                        "pressing its keys. 2 s is a fast annotator (30 labels a minute, 50 of them: 90 000 votes an "
                        "hour, a month's crowd work in four hours). 0 = back to back: robots, which measures the "
                        "server's capacity (Little's law), not what an annotator waits")
    parser.add_argument("--capacity-rounds", type=int, default=10,
                        help="also run this many back-to-back rounds per annotator and print the throughput (0 = skip)")
    parser.add_argument("--solo-rounds", type=int, default=50, help="rounds of one lone client (service time)")
    parser.add_argument("--imagettes", type=int, default=100_000)
    parser.add_argument("--votes", type=int, default=300_000)
    parser.add_argument("--annotators", type=int, default=2000, help="bulk annotators the votes come from")
    parser.add_argument("--gold", type=int, default=1000, help="gold items (they carry the uncounted votes)")
    parser.add_argument("--leases", type=int, default=500, help="active leases of bulk annotators")
    parser.add_argument("--expired-leases", type=int, default=200, help="expired, not yet released leases")
    parser.add_argument("--heavy", type=int, default=3,
                        help="heavy annotators among the clients, with --heavy-votes votes each on open started items")
    parser.add_argument("--heavy-votes", type=int, default=12_000)
    parser.add_argument("--analyze", action="store_true",
                        help="VACUUM ANALYZE after loading (default: measure the freshly loaded, unanalyzed database)")
    parser.add_argument("--servers", type=int, default=1,
                        help="Daphne processes sharing one listening socket (bench-only deployment experiment)")
    parser.add_argument("--bridge", choices=["builtin", "a2wsgi", "both"], default="builtin",
                        help="CRYOLABEL_HTTP_BRIDGE for Daphne: the platform's own bridge (eoplatform.http_bridge), "
                        "a2wsgi's WSGIMiddleware, or both on the same database, in alternated passes, with the "
                        "ratios a2wsgi/builtin (the a2wsgi side is skipped, with a message, where it is not installed)")
    parser.add_argument("--passes", type=int, default=0,
                        help="passes per bridge (Daphne started afresh, warm-up and every phase again); 0 = 2 with "
                        "--bridge both (builtin, a2wsgi, builtin, a2wsgi: drift on a shared machine cancels), else 1")
    parser.add_argument("--http-threads", type=int, default=0,
                        help="CRYOLABEL_HTTP_THREADS for Daphne (0 = the platform's default)")
    parser.add_argument("--pool-size", type=int, default=10, help="DATABASE_POOL_SIZE per Daphne process")
    parser.add_argument("--consensus-every", type=int, default=0,
                        help="CRYOLABEL_CONSENSUS_EVERY for Daphne (0 = leave the platform default)")
    parser.add_argument("--baselines", default="me,healthz",
                        help="comma list of baseline phases to run: me (GET /api/v1/me/), healthz (GET /healthz)")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw",
                        help="load generator: a minimal keep-alive HTTP/1.1 client on asyncio streams, one "
                        "connection per annotator (light on CPU), or one shared httpx.AsyncClient")
    parser.add_argument("--cprofile", action="store_true",
                        help="also cProfile 20 in-process next + vote pairs and print where the Python time goes")
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process profile and EXPLAIN")
    parser.add_argument("--target-ms", type=float, default=25.0, help="p95 target for next and for vote")
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server URL without database name")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--port", type=int, default=0, help="Daphne port (0 = a free one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database and the temporary folder")
    args = parser.parse_args(argv)
    exit_on_sigterm()

    pid = os.getpid()
    db_name = f"cryolabel_bench_{pid}"
    prefix = f"cryolabel-bench-{pid}"
    tmp = Path(tempfile.mkdtemp(prefix="cryolabel-bench-queue-"))
    db_created = False
    t_all = time.perf_counter()
    try:
        print(f"bench_crowd_queue: {args.clients} annotators x {args.rounds if not args.duration else '-'} rounds"
              f"{f' / {args.duration:g} s' if args.duration else ''}, think {args.think:g} s; data "
              f"{args.imagettes} imagettes, {args.votes} votes, {args.annotators} annotators")
        print(f"machine: {machine_line()}")
        db_url = pg_create_database(args.pg_url, db_name)
        db_created = True
        clean_platform_env(
            DATABASE_URL=db_url, CRYOLABEL_VAR_DIR=str(tmp / "var"), MEDIA_ROOT=str(tmp / "var" / "media"),
            CELERY_BROKER_URL=args.redis_url, REDIS_URL=args.redis_url, CELERY_KEY_PREFIX=f"{prefix}:",
            CHANNELS_PREFIX=prefix, DATABASE_POOL_SIZE="4",
        )
        django_setup()
        from django.conf import settings

        if settings.CRYOLABEL_VOTES_PER_ITEM != K:
            raise SystemExit(f"this bench assumes k={K}; CRYOLABEL_VOTES_PER_ITEM is "
                             f"{settings.CRYOLABEL_VOTES_PER_ITEM}")
        # Only this process: the bench's 50 users need no slow password hash (they use tokens).
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        from annotations.wv_classes import SLUGS

        SLUG_LIST[:] = list(SLUGS)
        CLIENT_KIND[0] = args.client
        print(f"database {db_name} migrated in {migrate():.1f} s")

        loaded = load_data(args)
        print(f"loaded in {loaded.seconds:.1f} s (COPY{' + VACUUM ANALYZE' if args.analyze else ', not analyzed'}): "
              f"{loaded.imagettes} imagettes "
              f"({', '.join(f'{k} {v}' for k, v in sorted(loaded.states.items()))}), {loaded.votes} votes "
              f"({loaded.counted_votes} counted, {loaded.gold_votes} uncounted on {loaded.gold} gold items), "
              f"{loaded.annotators} annotators ({loaded.heavy} heavy with {loaded.heavy_votes} votes each on open "
              f"items), {loaded.leases} active + {loaded.expired_leases} expired leases")

        from django.contrib.auth.models import User

        from accounts.roles import Role
        from accounts.services import token_for, user_create

        users = [user_create(username=f"bench{pid}-{n:02d}", password=secrets.token_urlsafe(12),
                             role=Role.ANNOTATOR) for n in range(args.clients - args.heavy)]
        heavy_users = list(User.objects.filter(username__in=[f"bulk{i:05d}" for i in range(args.heavy)]))
        HEAVY_IDS.update(u.pk for u in heavy_users)
        users = heavy_users + users  # the heavy ones are measured clients too
        clients = [(u.pk, token_for(user=u)) for u in users]
        bulk_user = heavy_users[0] if heavy_users else User.objects.get(username="bulk00000")

        env = {
            **os.environ, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1", "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_POOL_SIZE": str(args.pool_size), "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING",
        }
        if args.http_threads:
            env["CRYOLABEL_HTTP_THREADS"] = str(args.http_threads)
        if args.consensus_every:
            env["CRYOLABEL_CONSENSUS_EVERY"] = str(args.consensus_every)
        bridges = list(BRIDGES) if args.bridge == "both" else [args.bridge]
        if "a2wsgi" in bridges and a2wsgi_version() is None:
            if args.bridge == "a2wsgi":
                raise SystemExit("--bridge a2wsgi: a2wsgi is not installed in this interpreter (pip install a2wsgi)")
            print("a2wsgi is not installed in this interpreter (pip install a2wsgi): measuring the builtin bridge "
                  "only, no comparison")
            bridges = ["builtin"]
        rounds_of_passes = args.passes or (2 if len(bridges) > 1 else 1)
        print(f"HTTP bridge(s): {', '.join(bridges)}; {rounds_of_passes} pass(es) each"
              f"{', alternated' if len(bridges) > 1 else ''}; broker/channels: {args.redis_url} prefix {prefix}")
        print()

        from django.utils import timezone

        run_started = timezone.now()
        passes: list[Pass] = []
        for number in range(1, rounds_of_passes + 1):
            for bridge in bridges:
                passes.append(run_pass(args, env, clients, tmp, bridge, number, parser=parser))

        accepted = [a for p in passes for a in p.accepted]
        problems = check_database(loaded, accepted, [u.pk for u in users], run_started)
        for p in problems:
            print(f"  PROBLEM: {p}")
        print(f"check: {'OK' if not problems else 'FAILED'}")
        from jobs.models import Job

        queued = Job.objects.filter(kind="consensus").count()
        if queued:
            print(f"note: {queued} consensus job(s) queued by completed items (no worker runs in this bench)")
        if not args.no_profile:
            print()
            profile_in_process(loaded, users, bulk_user, cprofile=args.cprofile)

        # --- summary --------------------------------------------------------------------------------------------
        by_bridge = {b: [p for p in passes if p.bridge == b] for b in bridges}
        ok = True
        for bridge, its_passes in by_bridge.items():
            print()
            ok = summarize(args, its_passes, problems, f" [{bridge} bridge]" if len(bridges) > 1 else "") and ok
        if len(bridges) > 1:
            print()
            compare_bridges(args, by_bridge)
        print(f"after the run: {load_line()}")
        print(f"(whole bench {time.perf_counter() - t_all:.0f} s)")
        return 0 if ok else 1
    finally:
        django_close_connections()
        if db_created and not args.keep:
            pg_drop_database(args.pg_url, db_name)
        _redis_cleanup(args.redis_url, prefix)
        if args.keep:
            print(f"kept {tmp} and database {db_name}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _redis_cleanup(url: str, prefix: str) -> None:
    """Delete this run's keys (broker and channel layer), nothing else."""
    try:
        import redis

        r = redis.Redis.from_url(url)
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            r.delete(*keys)
        r.close()
    except Exception as exc:  # cleanup must not hide the result
        print(f"(redis cleanup: {type(exc).__name__}: {exc})")


if __name__ == "__main__":
    sys.exit(main())
