"""Uncertainty scores against values computed by hand: the classifier's `predict_batch` (what the prediction job
runs) over a stand-in network that returns fixed class probabilities, with and without MC dropout.

H(p) below is the binary entropy in bits, -(p log2 p + (1 - p) log2 (1 - p)):
H(0.5) = 1, H(0.9) = H(0.1) = 0.468996, H(0.8) = H(0.2) = 0.721928, H(0.7) = H(0.3) = 0.881291,
H(0.6) = H(0.4) = 0.970951, H(0.999) = H(0.001) = 0.011408.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from training.networks import get_network

CPU = torch.device("cpu")


class FixedProbabilities(nn.Module):
    """Ignores its input and answers fixed class probabilities [B, C]. With its dropout switched on (what MC
    dropout does), pass t answers `passes[t]` instead, so the spread between passes is known exactly."""

    def __init__(self, probabilities: list[list[float]], passes: list[list[list[float]]] | None = None) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.5)  # never applied: it is only the switch predict_batch turns on
        self.probabilities = torch.tensor(probabilities, dtype=torch.float64)
        self.passes = [torch.tensor(p, dtype=torch.float64) for p in passes or []]
        self.calls_with_dropout = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dropout.training and self.passes:
            p = self.passes[self.calls_with_dropout % len(self.passes)]
            self.calls_with_dropout += 1
        else:
            p = self.probabilities
        assert x.shape[0] == p.shape[0]
        return torch.logit(p).float()


@pytest.fixture(scope="module")
def classifier():
    return get_network("classifier")


def _inputs(n: int) -> torch.Tensor:
    return torch.zeros(n, 1, 8, 8)


def test_confidence_entropy_margin_and_masks_by_hand(classifier) -> None:
    model = FixedProbabilities([
        [0.9, 0.6, 0.2, 0.1],        # two classes reach 0.5
        [0.3, 0.4, 0.1, 0.2],        # none reaches 0.5: the most probable one is the prediction
        [0.5, 0.5, 0.5, 0.5],        # no idea at all
        [0.999, 0.001, 0.001, 0.001],  # sure
    ])  # fmt: skip
    ids = torch.tensor([11, 12, 13, 14])
    out = classifier.predict_batch(model, (_inputs(4), torch.zeros(4, 4), ids), CPU)

    assert out.item_ids == [11, 12, 13, 14]
    assert out.label_masks == [0b0011, 0b0010, 0b1111, 0b0001]
    assert out.top1 == [0, 1, 0, 0]
    # confidence: product of p over the predicted classes and of 1 - p over the others
    assert out.confidence.tolist() == pytest.approx([
        0.9 * 0.6 * 0.8 * 0.9,   # 0.3888
        0.7 * 0.4 * 0.9 * 0.8,   # 0.2016
        0.5**4,                  # 0.0625
        0.999**4,                # 0.996006
    ], abs=1e-5)  # fmt: skip
    # entropy: mean binary entropy over the classes, bits
    assert out.entropy.tolist() == pytest.approx([
        (0.468996 + 0.970951 + 0.721928 + 0.468996) / 4,  # 0.657718
        (0.881291 + 0.970951 + 0.468996 + 0.721928) / 4,  # 0.760792
        1.0,
        0.011408,
    ], abs=1e-5)  # fmt: skip
    # margin: best minus second-best probability
    assert out.margin.tolist() == pytest.approx([0.3, 0.1, 0.0, 0.998], abs=1e-5)
    assert out.mutual_information is None  # not asked for
    np.testing.assert_allclose(out.probabilities, model.probabilities.numpy(), atol=1e-6)

    rows = out.rows()  # what the prediction job stores, one dict per imagette
    assert [r["item_id"] for r in rows] == [11, 12, 13, 14]
    assert rows[0]["probabilities"] == pytest.approx([0.9, 0.6, 0.2, 0.1], abs=1e-6)
    assert rows[1]["label_mask"] == 2 and rows[1]["top1"] == 1
    assert rows[2]["entropy"] == pytest.approx(1.0) and rows[2]["margin"] == pytest.approx(0.0, abs=1e-6)
    assert all(r["mutual_information"] is None for r in rows)


def test_mc_dropout_mutual_information_by_hand(classifier) -> None:
    # Item 0: passes disagree on classes 0 and 1 (0.9 then 0.5; 0.1 then 0.5) and agree on 2 and 3.
    # Item 1: both passes say the same thing: no epistemic uncertainty.
    passes = [
        [[0.9, 0.1, 0.2, 0.2], [0.6, 0.3, 0.1, 0.1]],
        [[0.5, 0.5, 0.2, 0.2], [0.6, 0.3, 0.1, 0.1]],
    ]
    model = FixedProbabilities([[0.5] * 4, [0.5] * 4], passes=passes)
    out = classifier.predict_batch(model, _inputs(2), CPU, mc_dropout=2)

    assert model.calls_with_dropout == 2
    assert not model.dropout.training  # dropout is off again afterwards
    # The probabilities are the mean over the passes.
    np.testing.assert_allclose(out.probabilities, [[0.7, 0.3, 0.2, 0.2], [0.6, 0.3, 0.1, 0.1]], atol=1e-6)
    # MI per class = H(mean over passes) - mean over passes of H; then the mean over the classes.
    # Item 0, classes 0 and 1: H(0.7) - (H(0.9) + H(0.5)) / 2 = 0.881291 - (0.468996 + 1) / 2 = 0.146793;
    # classes 2 and 3: H(0.2) - H(0.2) = 0. Mean: 2 * 0.146793 / 4 = 0.073397.
    assert out.mutual_information.tolist() == pytest.approx([0.073397, 0.0], abs=1e-5)
    # The other scores are those of the mean probabilities: item 0 predicts class 0 alone.
    assert out.label_masks == [0b0001, 0b0001]
    assert out.confidence[0] == pytest.approx(0.7 * 0.7 * 0.8 * 0.8, abs=1e-5)  # 0.3136
    assert out.entropy[0] == pytest.approx((0.881291 * 2 + 0.721928 * 2) / 4, abs=1e-5)  # 0.801610
    assert out.margin[0] == pytest.approx(0.4, abs=1e-5)
    assert [r["mutual_information"] for r in out.rows()] == pytest.approx([0.073397, 0.0], abs=1e-5)


def test_more_passes_average_the_same_way(classifier) -> None:
    # Four passes cycling through two answers give the same mean and the same mutual information as two.
    passes = [[[0.9, 0.1, 0.2, 0.2]], [[0.5, 0.5, 0.2, 0.2]]]
    model = FixedProbabilities([[0.5] * 4], passes=passes)
    out = classifier.predict_batch(model, _inputs(1), CPU, mc_dropout=4)
    assert model.calls_with_dropout == 4
    assert out.mutual_information.tolist() == pytest.approx([0.073397], abs=1e-5)
    np.testing.assert_allclose(out.probabilities, [[0.7, 0.3, 0.2, 0.2]], atol=1e-6)


def test_every_score_stays_in_the_unit_interval(classifier) -> None:
    rng = np.random.default_rng(3)
    probabilities = rng.uniform(0, 1, size=(32, 10))
    probabilities[:4] = [0.0, 1.0] * 5  # saturated probabilities: logit is infinite, the sigmoid gives 0 and 1 back
    passes = [rng.uniform(0, 1, size=(32, 10)).tolist() for _ in range(3)]
    model = FixedProbabilities(probabilities.tolist(), passes=passes)
    for mc in (0, 3):
        out = classifier.predict_batch(model, _inputs(32), CPU, mc_dropout=mc)
        scores = [out.confidence, out.entropy, out.margin] + ([out.mutual_information] if mc else [])
        for values in scores:
            assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
        assert all(0 < mask < 1 << 10 for mask in out.label_masks)
