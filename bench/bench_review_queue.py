"""The experts' review queue with 1 000 000 predictions in PostgreSQL: the next item through the HTTP API on a
real Daphne, for a few concurrent experts, each strategy in turn.

What it does:
  1. creates its own PostgreSQL database `cryolabel_bench_review_<pid>` and migrates it;
  2. loads with COPY (rows only; `data`/`preview` are fake paths, nothing reads pixels): --predictions imagettes
     (1 000 000), a crowd consensus on --consensus-share of them (20 %), an active classifier v2 with one current
     prediction per imagette (random scores; ~10 % disagreeing with the crowd, --reviewed-share 2 % already
     reviewed), and --old-predictions rows of an older, inactive v1 (not current), then VACUUM ANALYZE;
  3. creates --experts experts (accounts.services.user_create, Role.EXPERT) and their API tokens, and starts
     Daphne on the bench database (DEBUG=0, the embedded filesystem broker in the temporary folder, the
     in-memory channel layer: the queue needs neither Redis nor a worker);
  4. drives the experts at once, each on its own keep-alive HTTP/1.1 connection in a thread of its own (with
     --think S, 2 s by default, each pauses ~S s, exponential, before each round, as an expert looking at the
     imagette does; --think 0 runs them back to back, a closed loop whose latency is the machine's throughput):
       warm-up   5 rounds of next + accept, not measured;
       baseline  GET /api/v1/me/ (token auth and permission look-ups, nothing else), --rounds per expert;
       per strategy (uncertain, disagreement, random): --rounds rounds of GET /api/v1/review/next/?strategy=S
                 then POST /api/v1/review/<id>/accept/ with the label_version seen (a 409 when another expert
                 took the same item first: counted, the expert goes on);
       solo      one expert alone, next only: the service time without queueing;
  5. checks the database: every accept answered 200 is one LabelDecision (source `prediction`) with the predicted
     mask, its predictions are reviewed; every 409 wrote nothing;
  6. prints EXPLAIN ANALYZE of each strategy's query and of the crowd queue's uncertain tier (an active model
     exists here), and the cost of the automatic-retraining check run after each decision;
  7. prints p50/p95, the ratio to the baseline, PASS/FAIL against the target (p95 < 25 ms for the next item, each
     strategy), and removes the database, the temporary folder and Daphne.

Run from the repository root:  .venv/bin/python bench/bench_review_queue.py [--experts 10] [--rounds 30] [--think 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DEFAULT_PG,
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

STRATEGIES = ("uncertain", "disagreement", "random")


# ================================================================================================================
# The data set
# ================================================================================================================
@dataclass
class Loaded:
    imagettes: int = 0
    predictions: int = 0
    old_predictions: int = 0
    consensus: int = 0
    reviewed: int = 0
    disagreeing: int = 0
    active_id: int = 0
    seconds: float = 0.0


def load_data(args) -> Loaded:
    import numpy as np
    from django.db import connection

    from annotations.models import Consensus, Imagette
    from inference.models import Prediction
    from training.models import ModelVersion, Snapshot

    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    now = datetime.now(UTC)
    out = Loaded()
    n = args.predictions

    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 0.75, "val": 0.2,
                                       "test": 0.05},
                                       agreement_threshold=0.6, size=0, note="bench")
    old = ModelVersion.objects.create(network="classifier", number=1, snapshot=snapshot, checkpoint="bench/v1.pt")
    active = ModelVersion.objects.create(network="classifier", number=2, snapshot=snapshot, checkpoint="bench/v2.pt",
                                         is_active=True, activated_at=now)
    out.active_id = active.pk

    has_consensus = rng.random(n) < args.consensus_share
    crowd_class = rng.integers(0, 10, n)
    agreement = np.round(0.3 + 0.7 * rng.random(n), 3)
    settled = has_consensus & (agreement >= 0.6)
    acq0 = datetime(2016, 1, 1, tzinfo=UTC)
    secs = rng.integers(0, 366 * 86400, n)
    lats, lons = rng.uniform(-75, 78, n), rng.uniform(-180, 180, n)

    def imagette_rows():
        for i in range(n):
            pk = i + 1
            digest = f"{pk:064x}"
            product = f"S1A_WV_SLC__1SSV_2016{pk % 12 + 1:02d}01T000000_{pk // 4:08d}.SAFE"
            if has_consensus[i]:
                state, vote_count = "complete", 3
                label = (1 << int(crowd_class[i]), "consensus", float(agreement[i])) if settled[i] else (None, "", None)
            else:
                state, vote_count, label = "open", int(pk % 3 == 0), (None, "", None)
            yield (pk, f"{product}/measurement/s1a-wv1-slc-vv-{pk:08d}.tiff", digest, product, f"/bench/{product}",
                   "safe", "WV1", "VV", acq0 + timedelta(seconds=int(secs[i])), float(lats[i]), float(lons[i]),
                   23.5, 256, 256, True, f"imagettes/{digest[:2]}/{digest}.npy", f"imagettes/{digest[:2]}/{digest}.png",
                   state, vote_count, 0, label[0], label[1], label[2], 0, now - timedelta(days=30))

    def consensus_rows():
        for i in np.flatnonzero(has_consensus):
            mask = 1 << int(crowd_class[i])
            probabilities = json.dumps([1.0 if b == crowd_class[i] else 0.0 for b in range(10)])
            yield (int(i) + 1, mask, "dawid_skene", float(agreement[i]), probabilities, 3, now - timedelta(days=2))

    # Scores: entropy in [0, 1] bits, skewed towards confident; margin and confidence follow it loosely.
    entropy = np.round(rng.beta(1.2, 3.0, n), 6)
    margin = np.round(np.clip(1 - entropy - 0.1 * rng.random(n), 0, 1), 6)
    confidence = np.round(np.clip(1 - entropy * (0.6 + 0.4 * rng.random(n)), 0, 1), 6)
    mutual = np.where(rng.random(n) < 0.5, np.round(entropy * rng.random(n) * 0.3, 6), np.nan)
    top1 = rng.integers(0, 10, n)
    second = rng.random(n) < 0.15
    disagrees = has_consensus & (rng.random(n) < 0.5)
    reviewed = rng.random(n) < args.reviewed_share
    variants = [json.dumps([round(float(p), 4) for p in rng.dirichlet(np.ones(10) * 0.4)]) for _ in range(512)]
    pick = rng.integers(0, len(variants), n)

    def prediction_rows(version_id: int, ids, current: bool):
        for i in ids:
            mask = (1 << int(top1[i])) | ((1 << int((top1[i] + 4) % 10)) if second[i] else 0)
            mi = None if np.isnan(mutual[i]) else float(mutual[i])
            yield (int(i) + 1, version_id, variants[pick[i]], mask, int(top1[i]), float(confidence[i]),
                   float(entropy[i]), float(margin[i]), mi, bool(disagrees[i]) and current,
                   current, bool(reviewed[i]) and current, now - timedelta(days=1))

    pred_cols = ["imagette_id", "model_version_id", "probabilities", "label_mask", "top1", "confidence", "entropy",
                 "margin", "mutual_information", "disagrees", "is_current", "reviewed", "created_at"]
    img_cols = ["id", "key", "content_hash", "source_product", "source_path", "source_format", "swath",
                "polarisation", "acquisition_time", "center_lat", "center_lon", "incidence_angle", "width", "height",
                "is_db", "data", "preview", "queue_state", "vote_count", "reserved_count", "label_mask",
                "label_source", "label_agreement", "label_version", "created_at"]
    with connection.cursor() as cursor:
        raw = cursor.cursor
        out.imagettes = pg_copy(raw, Imagette._meta.db_table, img_cols, imagette_rows())
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{Imagette._meta.db_table}', 'id'), {n})")
        out.consensus = pg_copy(raw, Consensus._meta.db_table,
                              ["imagette_id", "label_mask", "method", "agreement", "probabilities", "n_votes",
                               "computed_at"], consensus_rows())
        # The old version's rows first (lower ids), as a table that lived through one retraining holds them.
        old_ids = np.sort(rng.choice(n, size=min(args.old_predictions, n), replace=False))
        out.old_predictions = pg_copy(raw, Prediction._meta.db_table, pred_cols,
                                    prediction_rows(old.pk, old_ids, current=False))
        out.predictions = pg_copy(raw, Prediction._meta.db_table, pred_cols,
                                prediction_rows(active.pk, range(n), current=True))
    out.reviewed = int(reviewed.sum())
    out.disagreeing = int(disagrees.sum())
    Snapshot.objects.filter(pk=snapshot.pk).update(
        size=int(settled.sum()), counts={"per_source": {"consensus": int(settled.sum())}})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    out.seconds = time.perf_counter() - t0
    return out


# ================================================================================================================
# The experts
# ================================================================================================================
@dataclass
class Phase:
    name: str
    label: str = "next  GET /review/next/"
    next_s: list[float] = field(default_factory=list)
    decide_s: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    accepted: list[tuple[int, int]] = field(default_factory=list)  # (imagette id, predicted mask)
    refused: list[int] = field(default_factory=list)
    wall: float = 0.0
    errors: list[str] = field(default_factory=list)


class Expert:
    """One expert on one keep-alive connection (blocking http.client: cheap, and the GIL is released on I/O)."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None, float]:
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        self.conn.request(method, path, body=payload, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - t0
        return response.status, (json.loads(data) if data else None), elapsed

    def close(self) -> None:
        self.conn.close()


def run_phase(port: int, tokens: list[str], name: str, *, mode: str, rounds: int, strategy: str = "uncertain",
              decide: bool = True, record: bool = True, think: float = 0.0, seed: int = 0) -> Phase:
    phase = Phase(name, label="GET /api/v1/me/" if mode == "me" else "next  GET /review/next/")
    lock = threading.Lock()
    start = threading.Barrier(len(tokens) + 1)

    def work(token: str, n: int) -> None:
        expert = Expert(port, token)
        pause = random.Random(seed * 1000 + n)
        try:
            start.wait()
            for _ in range(rounds):
                if think > 0:  # an expert looks at the imagette before the next request
                    time.sleep(pause.expovariate(1 / think))
                if mode == "me":
                    status, _, t = expert.request("GET", "/api/v1/me/")
                    with lock:
                        phase.statuses[status] += 1
                        if record:
                            phase.next_s.append(t)
                    continue
                status, data, t = expert.request("GET", f"/api/v1/review/next/?strategy={strategy}&count=1")
                with lock:
                    phase.statuses[status] += 1
                    if record:
                        phase.next_s.append(t)
                if status != 200 or not data["items"]:
                    if status != 200:
                        with lock:
                            phase.errors.append(f"next: {status} {data}")
                    continue
                if not decide:
                    continue
                item = data["items"][0]
                pk = item["imagette"]["id"]
                status, _, t = expert.request("POST", f"/api/v1/review/{pk}/accept/", {
                    "expected_version": item["imagette"]["label_version"], "prediction": item["prediction"]["id"]})
                with lock:
                    phase.statuses[status] += 1
                    if record:
                        phase.decide_s.append(t)
                    if status == 200:
                        phase.accepted.append((pk, item["prediction"]["label_mask"]))
                    elif status == 409:
                        phase.refused.append(pk)
                    else:
                        phase.errors.append(f"accept: {status}")
        except Exception as exc:  # reported, never silent
            with lock:
                phase.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            expert.close()

    threads = [threading.Thread(target=work, args=(t, n), daemon=True) for n, t in enumerate(tokens)]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    phase.wall = time.perf_counter() - t0
    return phase


def print_phase(phase: Phase) -> None:
    requests = sum(phase.statuses.values())
    rate = requests / phase.wall if phase.wall else 0
    print(f"{phase.name}: {requests} requests in {phase.wall:.1f} s ({rate:.0f}/s), statuses {dict(phase.statuses)}"
          + (f", {len(phase.accepted)} accepted, {len(phase.refused)} refused (409: another expert was first)"
             if phase.accepted or phase.refused else ""))
    print(latency_row(phase.label, phase.next_s))
    if phase.decide_s:
        print(latency_row("accept POST /review/<id>/accept/", phase.decide_s))
    for error in phase.errors[:5]:
        print(f"  ERROR {error}")


# ================================================================================================================
# Checks and in-process profile
# ================================================================================================================
def check_database(phases: list[Phase]) -> list[str]:
    from annotations.models import Imagette, LabelDecision
    from inference.models import Prediction

    problems = []
    accepted = {pk: mask for phase in phases for pk, mask in phase.accepted}
    refused_only = {pk for phase in phases for pk in phase.refused} - set(accepted)
    decisions = Counter(LabelDecision.objects.values_list("imagette_id", flat=True))
    if set(decisions) != set(accepted):
        problems.append(f"{len(set(decisions) ^ set(accepted))} imagettes differ between 200 answers and decisions")
    if any(n != 1 for n in decisions.values()):
        problems.append(f"{sum(1 for n in decisions.values() if n != 1)} imagettes decided more than once")
    rows = dict(Imagette.objects.filter(pk__in=list(accepted)).values_list("pk", "label_mask"))
    wrong = [pk for pk, mask in accepted.items() if rows.get(pk) != mask]
    if wrong:
        problems.append(f"{len(wrong)} accepted imagettes do not hold the predicted mask")
    if Imagette.objects.filter(pk__in=list(accepted)).exclude(label_source="prediction").exists():
        problems.append("an accepted imagette's label_source is not 'prediction'")
    if Prediction.objects.filter(imagette_id__in=list(accepted), reviewed=False).exists():
        problems.append("an accepted imagette still has unreviewed predictions")
    if LabelDecision.objects.filter(imagette_id__in=list(refused_only)).exists():
        problems.append("a refused (409) decision was written")
    return problems


def profile_in_process(loaded: Loaded, expert_user) -> None:
    from django.db import connection, transaction

    from annotations.services import queue as crowd_queue
    from inference.models import Prediction
    from inference.services import review
    from training.models import ModelVersion
    from training.services.retrain import new_curated_labels, retrain_reference

    active = ModelVersion.objects.get(pk=loaded.active_id)
    base = review._open_for_review(active, [])
    queries = {
        "uncertain (entropy)": review._with_item(base).order_by(*review.MEASURES["entropy"])[:1],
        "uncertain (margin)": review._with_item(base).order_by(*review.MEASURES["margin"])[:1],
        "disagreement (1st walk)": review._with_item(base.filter(disagrees=True)).order_by(
            *review.MEASURES["entropy"])[:1],
        "random (first probe round)": review._with_item(base.filter(pk__in=random.sample(
            range(1, loaded.predictions + loaded.old_predictions), review._FIRST_PROBES))),
        "uncertain (mutual information, as a plain sort would do it)": review._with_item(base).order_by(
            *review.MEASURES["mutual_information"])[:1],
    }
    for label, queryset in queries.items():
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as c:
            c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = [row[0] for row in c.fetchall()]
        timing = next((p for p in plan if p.startswith("Execution Time")), "?")
        scans = sorted({p.split(" using ")[1].split(" ")[0] for p in plan if " using " in p})
        print(f"EXPLAIN ANALYZE {label}: {timing}; indexes {', '.join(scans) or 'none'}")
        if label.startswith("uncertain (entropy)"):
            for p in plan:
                print(f"    {p}")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        review._by_mutual_information(base, count=1)
        times.append(time.perf_counter() - t0)
    print(f"uncertain (mutual information) as review_next does it, among the {review._MI_WINDOW} highest "
          f"entropies: {1000 * sorted(times)[2]:.1f} ms (median of 5)")
    # The crowd queue's pick among fresh items once a model is active (least certain first), for the expert as an
    # annotator with no history: one window of the queue (annotations.services.queue).
    from django.utils import timezone

    with transaction.atomic(), connection.cursor() as c:
        params = {"open": "open", "k": 3, "me": expert_user.pk, "expires": timezone.now(), "now": timezone.now(),
                  "window": crowd_queue.WINDOW, "level": 0, "offset": 0, "start_at": None}
        c.execute("EXPLAIN (ANALYZE, BUFFERS) " + crowd_queue._pg_take_sql("fresh", False), params)
        plan = [row[0] for row in c.fetchall()]
        transaction.set_rollback(True)  # the lease it made is not kept
    print(f"EXPLAIN ANALYZE crowd queue, one window of fresh items least certain first (FOR UPDATE SKIP LOCKED): "
          f"{next((p for p in plan if p.startswith('Execution Time')), '?')}")
    for p in plan:
        print(f"    {p}")
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        reference = retrain_reference()
        n = new_curated_labels(reference, at_most=100) if reference else 0
        times.append(time.perf_counter() - t0)
    print(f"automatic-retraining check after a decision (reference + bounded counts, {n} counted): "
          f"{1000 * sorted(times)[2]:.1f} ms (median of 5)")
    print(f"predictions: {Prediction.objects.count()} rows")


# ================================================================================================================
# Main
# ================================================================================================================
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Review queue latency (GET /api/v1/review/next/ through Daphne on PostgreSQL with 1 000 000 "
        "predictions) for a few concurrent experts, against GET /api/v1/me/ measured in the same run. Target: "
        "p95 < 25 ms for the next item, each strategy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--predictions", type=int, default=1_000_000, help="imagettes, one current prediction each")
    parser.add_argument("--old-predictions", type=int, default=0, help="rows of an older, inactive version")
    parser.add_argument("--consensus-share", type=float, default=0.2)
    parser.add_argument("--reviewed-share", type=float, default=0.02)
    parser.add_argument("--experts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=30, help="next + accept rounds per expert and strategy")
    parser.add_argument("--solo-rounds", type=int, default=100)
    parser.add_argument("--think", type=float, default=2.0,
                        help="mean pause (s, exponential) before each round of an expert: looking at the imagette and "
                        "its prediction, then pressing a key (2 s: a fast expert). 0 = back to back: a closed loop "
                        "that measures the machine's throughput, not what an expert waits")
    parser.add_argument("--target-ms", type=float, default=25.0)
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL server URL without database name")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-profile", action="store_true", help="skip EXPLAIN ANALYZE and the in-process timings")
    parser.add_argument("--keep", action="store_true", help="keep the database and the temporary folder")
    args = parser.parse_args(argv)
    exit_on_sigterm()

    pid = os.getpid()
    db_name = f"cryolabel_bench_review_{pid}"
    tmp = Path(tempfile.mkdtemp(prefix="cryolabel-bench-review-"))
    server: Server | None = None
    db_created = False
    t_all = time.perf_counter()
    try:
        print(f"bench_review_queue: {args.experts} experts x {args.rounds} rounds per strategy, think "
              f"{args.think:g} s; {args.predictions} current predictions (+{args.old_predictions} of an older version)")
        print(f"machine: {machine_line()}")
        db_url = pg_create_database(args.pg_url, db_name)
        db_created = True
        clean_platform_env(DATABASE_URL=db_url, CRYOLABEL_VAR_DIR=str(tmp / "var"),
                           MEDIA_ROOT=str(tmp / "var" / "media"), DATABASE_POOL_SIZE="4")
        django_setup()
        from django.conf import settings

        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        print(f"database {db_name} migrated in {migrate():.1f} s")
        loaded = load_data(args)
        print(f"loaded in {loaded.seconds:.1f} s (COPY + VACUUM ANALYZE): {loaded.imagettes} imagettes, "
              f"{loaded.consensus} crowd consensus rows, {loaded.predictions} current predictions of v2 "
              f"({loaded.disagreeing} disagreeing, {loaded.reviewed} already reviewed), {loaded.old_predictions} of v1")

        from accounts.roles import Role
        from accounts.services import token_for, user_create

        users = [user_create(username=f"expert{pid}-{i}", password=secrets.token_urlsafe(12), role=Role.EXPERT)
                 for i in range(args.experts)]
        tokens = [token_for(user=u) for u in users]
        env = {**os.environ, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1", "SECRET_KEY": secrets.token_urlsafe(50),
               "DATABASE_POOL_SIZE": "10", "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
        server = start_daphne(env, tmp)
        print(f"daphne on 127.0.0.1:{server.port}, DEBUG=0; broker: filesystem under {tmp}; channels: in memory")
        print()

        warm = run_phase(server.port, tokens, "warm-up", mode="review", rounds=5, record=False)
        print(f"warm-up: {sum(warm.statuses.values())} requests, statuses {dict(warm.statuses)}")
        baseline = run_phase(server.port, tokens, "baseline GET /api/v1/me/", mode="me", rounds=args.rounds,
                             think=args.think, seed=args.seed)
        print_phase(baseline)
        phases = {}
        for strategy in STRATEGIES:
            phases[strategy] = run_phase(server.port, tokens, f"strategy {strategy}", mode="review",
                                         rounds=args.rounds, strategy=strategy, think=args.think, seed=args.seed)
            print_phase(phases[strategy])
        solo = {s: run_phase(server.port, tokens[:1], f"solo {s} (one expert, next only)", mode="review",
                             rounds=args.solo_rounds, strategy=s, decide=False) for s in STRATEGIES}
        for phase in solo.values():
            print_phase(phase)
        server.stop()
        log = server.log_tail(200_000)
        if "Traceback" in log:
            print(f"daphne logged {log.count('Traceback')} tracebacks; last lines:\n{log[-2000:]}")
        print()

        problems = check_database([warm, *phases.values()])
        for p in problems:
            print(f"  PROBLEM: {p}")
        print(f"check: {'OK' if not problems else 'FAILED'}")
        from jobs.models import Job

        trains = list(Job.objects.filter(kind="train").values_list("reason", flat=True))
        if trains:
            print(f"note: automatic retraining queued {len(trains)} training job(s) (no worker here): {trains[0]!r}")
        if not args.no_profile:
            print()
            profile_in_process(loaded, users[0])

        print()
        p95_me = percentile(baseline.next_s, 95) * 1000
        ok = not problems and all(not p.errors for p in phases.values())
        print(f"summary ({args.experts} concurrent experts, think {args.think:g} s; baseline GET /api/v1/me/ p95 "
              f"{p95_me:.1f} ms):")
        for strategy, phase in phases.items():
            p95 = percentile(phase.next_s, 95) * 1000
            ok = ok and p95 < args.target_ms
            solo_p50 = percentile(solo[strategy].next_s, 50) * 1000
            print(f"  {strategy:<13} next p50 {percentile(phase.next_s, 50) * 1000:5.1f} ms, p95 {p95:5.1f} ms "
                  f"(ratio to baseline {p95 / p95_me:.2f}x); solo p50 {solo_p50:.1f} ms; "
                  f"accept p95 {percentile(phase.decide_s, 95) * 1000:.1f} ms; "
                  f"{len(phase.refused)}/{len(phase.refused) + len(phase.accepted)} accepts refused (409)")
        print(f"after the run: {load_line()}")
        worst = max(percentile(p.next_s, 95) * 1000 for p in phases.values())
        print(f"target: p95 < {args.target_ms:g} ms for the next item, each strategy; worst {worst:.1f} ms; "
              f"consistency {'OK' if not problems else 'FAILED'} -> {verdict(ok)}")
        print(f"(whole bench {time.perf_counter() - t_all:.0f} s)")
        return 0 if ok else 1
    finally:
        if server is not None:
            server.stop()
        django_close_connections()
        if db_created and not args.keep:
            pg_drop_database(args.pg_url, db_name)
        if args.keep:
            print(f"kept {tmp} and database {db_name}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
