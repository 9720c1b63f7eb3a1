"""EmoCL (Eq. 10) and CogCL (Eq. 11-12): hand-computed values, a pairwise-loop reference, edge cases."""

import math

import pytest
import torch

from modeling_ecmc import cognition_contrastive_loss, emotion_contrastive_loss, jaccard_weights
from pairwise_losses import (
    cognition_loss_loop,
    emotion_loss_loop,
    reference_cognition_loss_loop,
    reference_emotion_loss_loop,
)

E = math.e


def test_emotion_loss_hand_computed():
    # S = [[1,1,0],[1,1,0],[0,0,1]] with tau = 1; sample 2 has no positive partner.
    h = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    pull = 2 * (math.log(E + 1) - 1) / 3  # rows 0, 1: -(S_01 - log(e^S_01 + e^S_02)); row 2: 0
    push = (2 * math.log(2) + math.log(3)) / 3  # rows 0, 1: log(1 + e^0); row 2: log(1 + 2 e^0)
    assert emotion_contrastive_loss(h, y, temperature=1.0).item() == pytest.approx(pull + push, rel=1e-6)


def test_cognition_loss_hand_computed():
    # y0 = {orientation, attention}, y1 = {attention}, y2 = {}; S_01 = 0, S_02 = 1, S_12 = 0, tau = 1.
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    assert jaccard_weights(y).tolist() == [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]]
    pull = (-math.log(0.5 / (1 + E)) + math.log(4) + 0.0) / 3  # row 2 has no partner of non-zero weight
    push = (math.log(1.5 + E) + math.log(2.5) + math.log(2 + E)) / 3
    assert cognition_contrastive_loss(h, y, temperature=1.0).item() == pytest.approx(pull + push, rel=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [2, 5, 17])
def test_vectorised_losses_match_pairwise_loops(seed, n):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, 8, generator=g, dtype=torch.float64)
    y_e = torch.randint(-1, 2, (n,), generator=g)
    y_c = (torch.rand(n, 4, generator=g) < 0.3).long()
    for variant, emo_loop, cog_loop in [
        ("paper", emotion_loss_loop, cognition_loss_loop),
        ("reference", reference_emotion_loss_loop, reference_cognition_loss_loop),
    ]:
        emo = emotion_contrastive_loss(h, y_e, 0.1, variant).item()
        cog = cognition_contrastive_loss(h, y_c, 0.1, variant).item()
        assert emo == pytest.approx(emo_loop(h, y_e, 0.1), rel=1e-5), variant
        assert cog == pytest.approx(cog_loop(h, y_c, 0.1), rel=1e-5), variant


def test_paper_and_reference_variants_differ():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(8, 8, generator=g)
    y_c = torch.tensor([[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]] * 2)
    assert cognition_contrastive_loss(h, y_c, variant="paper") != cognition_contrastive_loss(h, y_c, variant="reference")


EDGE_CASES = {
    "batch of one": (torch.tensor([1]), torch.tensor([[0, 1, 0, 0]])),
    "one class": (torch.tensor([-1, -1, -1, -1]), torch.tensor([[1, 0, 0, 0]] * 4)),
    "all-empty cognition sets": (torch.tensor([0, 1, -1, 0]), torch.zeros(4, 4, dtype=torch.long)),
    "no positive partner anywhere": (torch.tensor([-1, 0, 1]), torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])),
}


@pytest.mark.parametrize("variant", ["paper", "reference"])
@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_cases_are_finite_with_finite_gradients(case, variant):
    y_e, y_c = EDGE_CASES[case]
    h = torch.randn(len(y_e), 6, requires_grad=True)
    loss = emotion_contrastive_loss(h, y_e, variant=variant) + cognition_contrastive_loss(h, y_c, variant=variant)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(h.grad).all()


def test_edge_case_values():
    h = torch.randn(1, 6)
    # A single sample has no partner: both pull and push are empty sums.
    assert emotion_contrastive_loss(h, torch.tensor([0])).item() == 0.0
    assert cognition_contrastive_loss(h, torch.tensor([[1, 0, 0, 0]])).item() == 0.0
    # All-empty cognition sets: every off-diagonal weight is 1, so pull = -log 1 and push = log 1.
    h4 = torch.randn(4, 6)
    assert cognition_contrastive_loss(h4, torch.zeros(4, 4)).item() == pytest.approx(0.0, abs=1e-6)
    # One emotion class: no negatives, push = log(1 + 0) = 0; pull is the SupCon term of the loop.
    y = torch.zeros(4, dtype=torch.long)
    assert emotion_contrastive_loss(h4, y).item() == pytest.approx(emotion_loss_loop(h4, y), rel=1e-5)


def test_losses_reward_separated_classes():
    y = torch.tensor([-1, -1, 1, 1])
    separated = torch.tensor([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0], [-1.0, 0.01]])
    mixed = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.01], [-1.0, 0.01]])
    assert emotion_contrastive_loss(separated, y) < emotion_contrastive_loss(mixed, y)
