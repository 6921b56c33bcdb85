"""A simulated crowd for the demo: annotators of different skills who label through the real crowd queue.

Without it `make demo` starts with one annotator account and no vote, so Curation is empty and Krippendorff's
alpha, disagreement and gold accuracy have nothing to show. Here eight demo annotators, each with a confusion of
their own (one takes micro convective cells for wind streaks, one biological slicks for low-wind areas, one
clicks nearly at random, ...), ask the queue for items (`next_items`: leases, k votes per item, gold items mixed
in at CRYOLABEL_GOLD_RATE) and vote through `vote_submit`, answering from the ground truth the demo data were
written with (`ground_truth.csv`, which the platform itself never reads). Some imported imagettes become gold
(their true class), so gold accuracy tells the annotators apart; then the consensus service runs once, so its
figures are there on the first visit.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max, Q

from accounts.demo_passwords import demo_password_hash
from accounts.roles import Role
from accounts.services import roles_ensure, user_create
from annotations.models import ConsensusRun, GoldLabel, Imagette, Vote
from annotations.readers import read_ground_truth
from annotations.services.consensus_run import consensus_run
from annotations.services.labels import gold_set
from annotations.services.queue import next_items
from annotations.services.votes import vote_submit, votes_per_item
from annotations.wv_classes import SLUGS, class_by_slug

__all__ = [
    "CROWD",
    "SIMILAR",
    "CrowdReport",
    "Persona",
    "crowd_accounts_ensure",
    "crowd_password",
    "consensus_imports_warm",
    "crowd_pending",
    "crowd_report",
    "crowd_simulate",
    "crowd_vote",
    "gold_from_truth",
    "truth_read",
]

# Classes that look alike in a WV imagette, the ones people mix up (and add as a second label when unsure).
SIMILAR: dict[str, tuple[str, ...]] = {
    "pure_ocean_waves": ("wind_streaks",),
    "wind_streaks": ("micro_convective_cells", "pure_ocean_waves"),
    "micro_convective_cells": ("wind_streaks", "rain_cells"),
    "rain_cells": ("micro_convective_cells", "atmospheric_front"),
    "biological_slicks": ("low_wind_area", "oceanic_front"),
    "sea_ice": ("icebergs",),
    "icebergs": ("sea_ice",),
    "low_wind_area": ("biological_slicks",),
    "atmospheric_front": ("oceanic_front", "rain_cells"),
    "oceanic_front": ("atmospheric_front", "biological_slicks"),
}
assert tuple(SIMILAR) == SLUGS, "one entry per class, in class order"


@dataclass(frozen=True)
class Persona:
    """How one simulated annotator labels. For an item of true class c: with `random_rate` any class at all (a
    click without looking); else the class `blind_spots` names for c, with `blind_rate`; else, with `slip`, a
    class similar to c; else c. Then, with `extra_rate`, a class similar to the answer is added as a second
    label. `share` is their part of the work, `pace` the seconds they spend on an item (low, high)."""

    username: str
    style: str
    slip: float = 0.0
    random_rate: float = 0.0
    blind_spots: Mapping[str, str] = field(default_factory=dict)
    blind_rate: float = 0.0
    extra_rate: float = 0.0
    share: float = 1.0
    pace: tuple[float, float] = (4.0, 10.0)

    def answer(self, truth: str, rng: random.Random) -> int:
        """The label mask this annotator gives an item of true class `truth`."""
        if rng.random() < self.random_rate:
            slug = rng.choice(SLUGS)
        elif truth in self.blind_spots and rng.random() < self.blind_rate:
            slug = self.blind_spots[truth]
        elif rng.random() < self.slip:
            slug = rng.choice(SIMILAR[truth])
        else:
            slug = truth
        mask = _bit(slug)
        if rng.random() < self.extra_rate:
            mask |= _bit(rng.choice(SIMILAR[slug]))
        return mask

    def seconds(self, rng: random.Random) -> float:
        return round(rng.uniform(*self.pace), 1)


def _bit(slug: str) -> int:
    return 1 << class_by_slug(slug).index


def _both_ways(a: str, b: str) -> dict[str, str]:
    return {a: b, b: a}


CROWD: tuple[Persona, ...] = (
    Persona("crowd1", "careful", slip=0.03, share=1.3, pace=(8.0, 16.0)),
    Persona("crowd2", "good", slip=0.08, share=1.2),
    Persona("crowd3", "takes micro convective cells for wind streaks and back", slip=0.05,
            blind_spots=_both_ways("wind_streaks", "micro_convective_cells"), blind_rate=0.5),
    Persona("crowd4", "takes biological slicks for low-wind areas and back", slip=0.05,
            blind_spots=_both_ways("biological_slicks", "low_wind_area"), blind_rate=0.5),
    Persona("crowd5", "mixes up the two fronts, often adds a second class", slip=0.05,
            blind_spots=_both_ways("atmospheric_front", "oceanic_front"), blind_rate=0.4, extra_rate=0.25),
    Persona("crowd6", "adds a look-alike class when unsure", slip=0.05, extra_rate=0.4, share=0.8),
    Persona("crowd7", "hasty", slip=0.2, random_rate=0.15, share=1.2, pace=(1.5, 4.0)),
    Persona("crowd8", "careless: clicks nearly at random", random_rate=0.8, share=0.8, pace=(0.5, 2.0)),
)


def crowd_password(username: str) -> str:
    """The demo crowd's known passwords, in the pattern of the other demo users (`annotator` / `annotator-demo`)."""
    return f"{username}-demo"


@transaction.atomic
def crowd_accounts_ensure(*, crowd: Sequence[Persona] = CROWD) -> list[tuple[User, Persona]]:
    """The crowd's annotator accounts, created where missing (idempotent), each with its persona. Their password
    hashes are made beforehand (accounts.demo_passwords): eleven PBKDF2 hashes were seconds of the demo's start."""
    users = {u.username: u for u in User.objects.filter(username__in=[p.username for p in crowd])}
    groups = roles_ensure() if len(users) < len(crowd) else None
    for persona in crowd:
        if persona.username in users:
            continue
        password = crowd_password(persona.username)
        users[persona.username] = user_create(username=persona.username, password=password, role=Role.ANNOTATOR,
                                              password_hash=demo_password_hash(persona.username, password),
                                              groups=groups)
    return [(users[p.username], p) for p in crowd]


def truth_read(paths: Iterable[Path]) -> dict[str, str]:
    """record key -> true class slug, from the demo data's ground_truth.csv files."""
    truth: dict[str, str] = {}
    for path in paths:
        truth.update((key, slug) for key, (slug, _split) in read_ground_truth(path).items())
    return truth


def gold_from_truth(*, truth: Mapping[str, str], count: int, rng: random.Random) -> int:
    """Make imported imagettes gold, with their true class (an expert would pick known ones), until `count` are
    gold. Returns how many are gold now."""
    missing = count - GoldLabel.objects.count()
    if missing > 0:
        candidates = [(pk, key) for pk, key in Imagette.objects.filter(label_source=Imagette.LabelSource.IMPORTED)
                      .filter(gold__isnull=True).order_by("id").values_list("pk", "key") if key in truth]
        chosen = dict(rng.sample(candidates, min(missing, len(candidates))))
        for item in Imagette.objects.filter(pk__in=list(chosen)):
            gold_set(imagette=item, label_mask=_bit(truth[chosen[item.pk]]))
    return GoldLabel.objects.count()


@dataclass
class CrowdReport:
    votes: Counter = field(default_factory=Counter)  # username -> votes cast
    gold_votes: int = 0
    complete: int = 0
    consensus: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.votes.values())


def crowd_vote(
    *, crowd: Sequence[tuple[User, Persona]], truth: Mapping[str, str], items: int, rng: random.Random, batch: int = 5,
) -> None:
    """The crowd labels about `items` items to their k votes: each annotator, in turns of `batch` items, asks the
    queue for work and answers all of it, until they have cast their share of `items` x k counted votes or the
    queue has nothing more for them. Every item the queue hands out gets its vote, so no lease is left behind.

    Resumable: the votes cast before (by a start interrupted part-way) count against each share, and the queue
    hands each annotator the items still held for them first. Each vote is its own transaction, as a person's
    is, so the crowd votes while other processes ingest."""
    k = votes_per_item()
    gold = set(GoldLabel.objects.values_list("imagette_id", flat=True))
    total_share = sum(p.share for _, p in crowd)
    cast = Counter(Vote.objects.filter(annotator__in=[user for user, _ in crowd]).exclude(imagette_id__in=gold)
                   .values_list("annotator_id", flat=True))
    left = {user.pk: max(1, round(items * k * p.share / total_share)) - cast[user.pk] for user, p in crowd}
    active = [(user, persona) for user, persona in crowd if left[user.pk] > 0]
    while active:
        rng.shuffle(active)  # turns in a new order every round, so that items are seen by varied trios
        for user, persona in list(active):
            got = next_items(annotator=user, count=min(batch, left[user.pk]), rng=rng)
            for item in got:
                vote_submit(annotator=user, imagette_id=item.pk, label_mask=persona.answer(truth[item.key], rng),
                            seconds=persona.seconds(rng))
                if item.pk not in gold:
                    left[user.pk] -= 1
            if not got or left[user.pk] <= 0:
                active.remove((user, persona))


def crowd_report(crowd: Sequence[Persona] = CROWD) -> CrowdReport:
    """What the crowd has cast, from the database (whichever start cast it)."""
    votes = Vote.objects.filter(annotator__username__in=[p.username for p in crowd])
    return CrowdReport(
        votes=Counter(votes.values_list("annotator__username", flat=True)),
        gold_votes=votes.filter(imagette__gold__isnull=False).count(),
        complete=Imagette.objects.filter(queue_state=Imagette.QueueState.COMPLETE).count(),
    )


def crowd_pending(crowd: Sequence[Persona] = CROWD) -> bool:
    """Whether the simulated crowd has still to vote or to finish (it votes once, on the first start): it is done
    when a consensus has run since its last vote."""
    last = Vote.objects.filter(annotator__username__in=[p.username for p in crowd]).aggregate(
        last=Max("created_at"))["last"]
    return last is None or not ConsensusRun.objects.filter(created_at__gte=last).exists()


def crowd_simulate(
    *, truth_files: Sequence[Path], items: int, gold: int, seed: int = 0,
) -> CrowdReport | None:
    """The whole demo crowd, once: accounts, gold labels, votes on about `items` items, a consensus run. Returns
    None (and changes nothing but the accounts) when the crowd has finished already, or when the queue holds items
    the ground truth does not know (someone else's imagettes: the crowd could not answer them). A start
    interrupted part-way is finished by the next one: gold, votes and consensus each take up what is there."""
    accounts = crowd_accounts_ensure()
    if not crowd_pending():
        return None
    truth = truth_read(path for path in truth_files if path.exists())
    answerable = Q(queue_state=Imagette.QueueState.OPEN) | Q(gold__isnull=False)
    unknown = Imagette.objects.filter(answerable).values_list("key", flat=True)
    if not truth or any(key not in truth for key in unknown.iterator()):
        return None
    rng = random.Random(seed)
    with transaction.atomic():
        gold_from_truth(truth=truth, count=gold, rng=rng)
    crowd_vote(crowd=accounts, truth=truth, items=items, rng=rng)
    report = crowd_report()
    # The service itself, not a job: the figures are there before the first page is opened. (The consensus job
    # the votes queued, as people's votes do every CRYOLABEL_CONSENSUS_EVERY completed items, runs when the worker
    # starts.)
    report.consensus = consensus_run(method=settings.CRYOLABEL_CONSENSUS_METHOD)
    return report


def consensus_imports_warm() -> None:
    """Import what the consensus needs (pandas, crowd-kit, krippendorff: seconds of imports), e.g. in a thread
    while other processes ingest, so that the crowd's consensus run does not wait for them."""
    import krippendorff  # noqa: F401

    if settings.CRYOLABEL_CONSENSUS_METHOD == "dawid_skene":
        import crowdkit.aggregation  # noqa: F401
        import pandas  # noqa: F401
