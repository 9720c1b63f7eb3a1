"""Stage-1 contrastive losses: EmoCL (Eq. 10) and CogCL (Eq. 11-12), vectorised over the batch.

Conventions where the equations are ambiguous (DESIGN §1): every sum over j runs over j != i; a row
with no positive (Eq. 10) or no partner of non-zero Jaccard weight (Eq. 12) contributes 0 to the
pull term and still contributes its push term; both losses are means over the N rows. Batches of
one, one class and all-empty cognition sets are therefore finite.

`variant="reference"` reproduces the authors' public code instead (documented in the README):
its emotion separation term is log(1 + exp(S_ij)) averaged over every off-diagonal element (zero
for positives), and its cognition loss uses 0/1 weights (W_ij > 0) with the self-pair kept in the
pull term.

This file travels inside saved checkpoints: it imports only torch.
"""

import torch
import torch.nn.functional as F

LOSS_VARIANTS = ("paper", "reference")


def _masked_logsumexp(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise log(sum_j mask_ij * exp(scores_ij)); -inf-free: an empty row gives a huge negative."""
    very_negative = torch.finfo(scores.dtype).min / 2
    return torch.logsumexp(scores.masked_fill(~mask, very_negative), dim=1)


def _similarity(features: torch.Tensor, temperature: float) -> torch.Tensor:
    features = F.normalize(features.float(), p=2, dim=-1)
    return features @ features.T / temperature


def jaccard_weights(cognition_labels: torch.Tensor) -> torch.Tensor:
    """Eq. 11: W_ij = 1 if both label sets are empty, 0 if exactly one is, else |i∩j| / |i∪j|."""
    labels = cognition_labels.float()
    intersection = labels @ labels.T
    sizes = labels.sum(dim=1)
    union = sizes[:, None] + sizes[None, :] - intersection
    empty = sizes == 0
    both_empty = empty[:, None] & empty[None, :]
    return torch.where(both_empty, torch.ones_like(union), intersection / union.clamp(min=1))


def emotion_contrastive_loss(h_e: torch.Tensor, emotion_labels: torch.Tensor, temperature: float = 0.1,
                             variant: str = "paper") -> torch.Tensor:
    """EmoCL, Eq. 10. `h_e` (N, d) need not be normalised; `emotion_labels` (N,) in {-1, 0, 1}."""
    scores = _similarity(h_e, temperature)
    n = scores.shape[0]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=scores.device)
    same = emotion_labels[:, None] == emotion_labels[None, :]
    positives = same & off_diagonal
    negatives = ~same  # never the diagonal

    # log p_ij = S_ij - log sum_{k != i} exp(S_ik)
    log_p = scores - _masked_logsumexp(scores, off_diagonal)[:, None]
    num_positives = positives.sum(dim=1)
    pull = -torch.where(positives, log_p, 0.0).sum(dim=1) / num_positives.clamp(min=1)

    if variant == "reference":
        # The authors' code: log1p(exp(S_ij) * neg_ij) averaged over the N(N-1) off-diagonal elements.
        if n == 1:
            return pull.mean()
        per_element = torch.log1p(torch.exp(scores) * negatives)
        return pull.mean() + per_element[off_diagonal].mean()
    push = F.softplus(_masked_logsumexp(scores, negatives))  # log(1 + sum_{j: M_ij=0, j!=i} exp(S_ij))
    return pull.mean() + push.mean()


def cognition_contrastive_loss(h_c: torch.Tensor, cognition_labels: torch.Tensor, temperature: float = 0.1,
                               variant: str = "paper") -> torch.Tensor:
    """CogCL, Eq. 12 with the Jaccard weights of Eq. 11. `cognition_labels` (N, 4) in {0, 1}."""
    scores = _similarity(h_c, temperature)
    n = scores.shape[0]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=scores.device)
    weights = jaccard_weights(cognition_labels)

    if variant == "reference":
        # The authors' code: 0/1 weights, self-pair kept in the pull term (numerator and denominator).
        positive = weights > 0
        pull = _masked_logsumexp(scores, torch.ones_like(positive)) - _masked_logsumexp(scores, positive)
        push = F.softplus(_masked_logsumexp(scores, ~positive))
        return (pull + push).mean()

    weights = weights * off_diagonal
    has_partner = (weights > 0).any(dim=1)
    # -log( sum_{j!=i} W_ij exp(S_ij) / sum_{j!=i} exp(S_ij) ), as log-sum-exps of S_ij + log W_ij
    log_weights = torch.log(weights.clamp(min=torch.finfo(scores.dtype).tiny))
    numerator = _masked_logsumexp(scores + log_weights, weights > 0)
    denominator = _masked_logsumexp(scores, off_diagonal)
    pull = torch.where(has_partner, denominator - numerator, 0.0)
    # log(1 + sum_{j!=i} exp(S_ij) (1 - W_ij))
    log_one_minus = torch.log((1 - weights).clamp(min=torch.finfo(scores.dtype).tiny))
    push = F.softplus(_masked_logsumexp(scores + log_one_minus, off_diagonal & (weights < 1)))
    return pull.mean() + push.mean()
