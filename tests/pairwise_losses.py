"""Straightforward pairwise-loop transcriptions of Eq. 10-12 (and of the authors' code), used as the
independent reference in tests and as the slow side of the loss benchmark."""

import math

import torch
import torch.nn.functional as F


def _sims(h, tau):
    h = F.normalize(h.double(), dim=-1)
    return (h @ h.T / tau).tolist()


def emotion_loss_loop(h, y, tau=0.1):
    S, y, n = _sims(h, tau), y.tolist(), len(y)
    pull = push = 0.0
    for i in range(n):
        denom = sum(math.exp(S[i][k]) for k in range(n) if k != i)
        pos = [j for j in range(n) if j != i and y[j] == y[i]]
        if pos:
            pull += -sum(S[i][j] - math.log(denom) for j in pos) / len(pos)
        push += math.log(1 + sum(math.exp(S[i][j]) for j in range(n) if y[j] != y[i]))
    return (pull + push) / n


def jaccard(a, b):
    a, b = {k for k, v in enumerate(a) if v}, {k for k, v in enumerate(b) if v}
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def cognition_loss_loop(h, y, tau=0.1):
    S, y, n = _sims(h, tau), y.tolist(), len(y)
    pull = push = 0.0
    for i in range(n):
        others = [j for j in range(n) if j != i]
        W = {j: jaccard(y[i], y[j]) for j in others}
        num = sum(math.exp(S[i][j]) * W[j] for j in others)
        if num > 0:
            pull += -math.log(num / sum(math.exp(S[i][j]) for j in others))
        push += math.log(1 + sum(math.exp(S[i][j]) * (1 - W[j]) for j in others))
    return (pull + push) / n


def reference_emotion_loss_loop(h, y, tau=0.1):
    """The authors' code: SupCon pull over j != i; log1p(exp(S_ij) * neg_ij) averaged over elements."""
    S, y, n = _sims(h, tau), y.tolist(), len(y)
    pull, elements = 0.0, []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        denom = sum(math.exp(S[i][k]) for k in others)
        pos = [j for j in others if y[j] == y[i]]
        pull += -sum(S[i][j] - math.log(denom) for j in pos) / max(len(pos), 1)
        elements += [math.log1p(math.exp(S[i][j]) * (y[j] != y[i])) for j in others]
    return pull / n + (sum(elements) / len(elements) if elements else 0.0)


def reference_cognition_loss_loop(h, y, tau=0.1):
    """The authors' code: 0/1 weights (Jaccard > 0), self-pair included in the pull term."""
    S, y, n = _sims(h, tau), y.tolist(), len(y)
    total = 0.0
    for i in range(n):
        pos = [jaccard(y[i], y[j]) > 0 for j in range(n)]
        e = [math.exp(S[i][j]) for j in range(n)]
        total += -math.log(sum(x for x, p in zip(e, pos) if p) / sum(e))
        total += math.log(1 + sum(x for x, p in zip(e, pos) if not p))
    return total / n
