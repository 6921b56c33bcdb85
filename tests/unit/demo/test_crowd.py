"""demo/crowd.py: the simulated crowd votes through the real queue, and the overview and curation show it."""

from collections import Counter

import pytest

from accounts.roles import Role
from accounts.services import user_role
from annotations.models import Assignment, ConsensusRun, GoldLabel, Imagette, Vote
from annotations.readers import read_ground_truth
from annotations.selectors import overview
from annotations.services.labels import label_decide
from annotations.wv_classes import class_by_slug
from demo.crowd import CROWD, crowd_simulate

pytestmark = pytest.mark.django_db
K = 3
# Gold at 30 % (the platform's default is 10 %) so that a crowd this small casts enough gold votes to rank.


@pytest.fixture
def small_crowd(settings):
    settings.CRYOLABEL_VOTES_PER_ITEM, settings.CRYOLABEL_GOLD_RATE = K, 0.3
    settings.CRYOLABEL_CONSENSUS_METHOD = "dawid_skene"
    return settings


def test_simulated_crowd_labels_through_the_queue(small_crowd, ingested, demo_imagette_files, client_as, expert):
    truth_file = demo_imagette_files / "ground_truth.csv"
    truth = {key: slug for key, (slug, _) in read_ground_truth(truth_file).items()}
    # A quarter of the items imported with their labels, as the demo's TenGeoP set: gold is picked among them.
    for item in ingested[:15]:
        label_decide(imagette=item, label_mask=1 << class_by_slug(truth[item.key]).index, source="imported")

    report = crowd_simulate(truth_files=[truth_file], items=30, gold=8, seed=3)

    assert report is not None and report.total == Vote.objects.count()
    assert GoldLabel.objects.count() == 8
    gold = set(GoldLabel.objects.values_list("imagette_id", flat=True))
    assert report.gold_votes == Vote.objects.filter(imagette_id__in=gold).count() > 0
    # The queue's rules held: k counted votes on every completed item, never more on any, no lease left behind.
    counted = Counter(Vote.objects.exclude(imagette_id__in=gold).values_list("imagette_id", flat=True))
    assert max(counted.values()) == K
    complete = Imagette.objects.filter(queue_state=Imagette.QueueState.COMPLETE)
    assert 25 <= complete.count() <= 30
    assert all(counted[item.pk] == item.vote_count == K for item in complete)
    assert not Assignment.objects.exists()
    assert Imagette.objects.filter(queue_state=Imagette.QueueState.OPEN).exists()  # work left for people

    # Skills show in gold accuracy: the careful annotator above the careless one.
    figures = overview()
    accuracy = {row["annotator"]: row["gold_accuracy"] for row in figures["annotators"]}
    assert set(accuracy) == {p.username for p in CROWD}
    assert accuracy["crowd1"] > accuracy["crowd8"]
    # The consensus ran (no job needed): alpha for every class the crowd saw, items settled by it.
    assert ConsensusRun.objects.count() == 1 and figures["consensus_method"] == "dawid_skene"
    seen = {truth[item.key] for item in complete}
    assert len(seen) >= 8
    assert all(figures["agreement_per_class"][slug] is not None for slug in seen)
    assert figures["imagettes"]["consensus"] == complete.count()
    # Curation has disputed items first, with real agreement figures.
    page = client_as(expert).get("/api/v1/consensus/").json()
    first = page["results"][0]
    assert first["consensus"]["agreement"] is not None and first["consensus"]["agreement"] < 1

    # Ordinary annotators with the known passwords; a second run adds nothing.
    for persona in CROWD:
        user = type(expert).objects.get(username=persona.username)
        assert user_role(user) == Role.ANNOTATOR and user.check_password(f"{persona.username}-demo")
    votes = Vote.objects.count()
    assert crowd_simulate(truth_files=[truth_file], items=30, gold=8, seed=3) is None
    assert Vote.objects.count() == votes and GoldLabel.objects.count() == 8 and ConsensusRun.objects.count() == 1


def test_a_crowd_cut_short_is_finished_by_the_next_start(small_crowd, ingested, demo_imagette_files, monkeypatch):
    """Each vote is its own transaction (the crowd votes while other processes ingest), so a start stopped part-way
    leaves the votes cast so far; the next start finishes the work: the shares count what was cast, the items
    still held come first, and the consensus runs once the crowd is done."""
    import demo.crowd

    truth_file = demo_imagette_files / "ground_truth.csv"
    truth = {key: slug for key, (slug, _) in read_ground_truth(truth_file).items()}
    for item in ingested[:15]:
        label_decide(imagette=item, label_mask=1 << class_by_slug(truth[item.key]).index, source="imported")
    real_vote = demo.crowd.vote_submit
    cast = []

    def stopped_after_20(**kwargs):
        if len(cast) == 20:
            raise KeyboardInterrupt  # Ctrl-C
        cast.append(kwargs["imagette_id"])
        return real_vote(**kwargs)

    monkeypatch.setattr(demo.crowd, "vote_submit", stopped_after_20)
    with pytest.raises(KeyboardInterrupt):
        crowd_simulate(truth_files=[truth_file], items=30, gold=8, seed=3)
    assert Vote.objects.count() == 20 and Assignment.objects.exists() and not ConsensusRun.objects.exists()
    monkeypatch.setattr(demo.crowd, "vote_submit", real_vote)

    report = crowd_simulate(truth_files=[truth_file], items=30, gold=8, seed=4)

    assert report is not None and report.total == Vote.objects.count() > 20
    gold = set(GoldLabel.objects.values_list("imagette_id", flat=True))
    assert len(gold) == 8
    counted = Counter(Vote.objects.exclude(imagette_id__in=gold).values_list("imagette_id", flat=True))
    assert max(counted.values()) == K and sum(counted.values()) <= 30 * K + len(CROWD)
    assert not Assignment.objects.exists()  # what the first start held got its vote
    assert ConsensusRun.objects.count() == 1
    assert crowd_simulate(truth_files=[truth_file], items=30, gold=8, seed=5) is None
