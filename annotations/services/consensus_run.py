"""Run consensus over every vote and store it: the `consensus` job's work."""

from __future__ import annotations

import math

from django.db import connection, transaction

from annotations.consensus import consensus, krippendorff_alpha_per_class
from annotations.models import ConsensusRun, Imagette, Vote
from annotations.services.labels import consensus_store, retrain_check_after_commit
from annotations.wv_classes import WV_CLASSES
from jobs.models import Job
from jobs.services import job_submit


def consensus_run(*, method: str) -> dict:
    votes = list(Vote.objects.values_list("imagette_id", "annotator_id", "label_mask").iterator(chunk_size=10_000))
    if not votes:
        return {"method": method, "items": 0, "votes": 0, "alpha_per_class": {}, "message": "no votes yet"}
    results = consensus(votes, method=method, n_classes=len(WV_CLASSES))
    written = consensus_store(results.values(), method=method)
    alphas = krippendorff_alpha_per_class(votes, n_classes=len(WV_CLASSES))
    alpha_by_slug = {
        c.slug: (None if alphas.get(c.index) is None or math.isnan(alphas[c.index]) else round(alphas[c.index], 4))
        for c in WV_CLASSES
    }
    settled = Imagette.objects.filter(label_source=Imagette.LabelSource.CONSENSUS).count()
    ConsensusRun.objects.create(method=method, items=written, votes=len(votes), alpha_per_class=alpha_by_slug)
    retrain_check_after_commit()  # items the crowd just settled are new curated labels
    return {
        "method": method, "items": written, "votes": len(votes), "settled_by_consensus": settled,
        "alpha_per_class": alpha_by_slug,
        "message": f"{method} consensus over {written} imagettes from {len(votes)} votes",
    }


def consensus_maybe_schedule(*, every: int) -> Job | None:
    """Queue a consensus job when `every` more items completed since the last one (and none is
    pending). Called by vote_submit after commit, so the crowd's work settles without an admin."""
    if every <= 0:
        return None
    # One round trip, run after every vote that completes an item: whether no consensus job is pending and at
    # least `every` completed items wait for one (counted up to `every` only: the count must not grow with the
    # backlog).
    imagettes, jobs = Imagette._meta.db_table, Job._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT NOT EXISTS (SELECT 1 FROM {jobs} WHERE kind = %s AND state IN (%s, %s)),
                   (SELECT COUNT(*) FROM (SELECT 1 FROM {imagettes} WHERE queue_state = %s AND label_source = ''
                                          LIMIT %s) w)""",
                       ["consensus", Job.State.QUEUED, Job.State.RUNNING, Imagette.QueueState.COMPLETE, every])
        none_pending, waiting = cursor.fetchone()
    if not none_pending or waiting < every:
        return None
    with transaction.atomic():
        # The whole count only now, when a job is due (rare): the reason the Jobs page shows.
        waiting = Imagette.objects.filter(queue_state=Imagette.QueueState.COMPLETE, label_source="").count()
        return job_submit(kind="consensus", reason=f"{waiting} imagettes completed their votes")
