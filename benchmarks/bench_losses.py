"""Contrastive losses: the vectorised EmoCL / CogCL (`modeling_ecmc.losses_ecmc`) against straightforward
pairwise loops over every (i, j) in Python (`tests/pairwise_losses.py`, the independent reference the
tests use; the authors' public cognition loss also loops over pairs in Python).

Same inputs, forward values compared (the loops run in float64, the vectorised losses in float32),
then the median time of one forward pass of each, both on one thread (the tensors are tiny, and a
second OpenMP thread only adds waiting, badly so when another process holds the other core).

    python -m benchmarks.bench_losses [--quick]
"""

from __future__ import annotations

import importlib.util

import torch

from benchmarks.common import REPO_ROOT, Row, quick_main, timeit

FEATURE_DIM = 256  # d_e of the pooled embeddings h_e / h_c (paper: 768; the cost of S = h h^T / tau is not the point here)
TAU = 0.1


def load_pairwise_reference():
    """tests/pairwise_losses.py as a module (tests/ is not a package)."""
    path = REPO_ROOT / "tests" / "pairwise_losses.py"
    spec = importlib.util.spec_from_file_location("ecmc_pairwise_losses", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_batch(n: int, seed: int = 0):
    """Embeddings and labels with roughly MMDA's label mix (DESIGN §2): ~32 % negative emotion,
    cognition deficits at 1-16 % each, so most rows have an empty cognition set."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, FEATURE_DIM, generator=g)
    emotion = torch.multinomial(torch.tensor([0.32, 0.43, 0.25]), n, replacement=True, generator=g) - 1
    cognition = (torch.rand(n, 4, generator=g) < torch.tensor([0.05, 0.15, 0.18, 0.25])).long()
    return h, emotion, cognition


def cognition_loss_torch_loop(h, y, tau=TAU):
    """Eq. 11-12 written the way a training script loops over pairs: torch scalars per (i, j), so it is
    differentiable (the Python-float loop above is not), with S = h h^T / tau computed once."""
    h = torch.nn.functional.normalize(h, dim=-1)
    S = h @ h.T / tau
    sets = [frozenset(k for k, v in enumerate(row) if v) for row in y.tolist()]
    n = len(sets)
    total = h.new_zeros(())
    for i in range(n):
        numerator = h.new_zeros(())
        denominator = h.new_zeros(())
        push = h.new_zeros(())
        for j in range(n):
            if j == i:
                continue
            a, b = sets[i], sets[j]
            w = 1.0 if not a and not b else (0.0 if not a or not b else len(a & b) / len(a | b))
            e = torch.exp(S[i, j])
            numerator = numerator + w * e
            denominator = denominator + e
            push = push + (1.0 - w) * e
        if numerator.item() > 0:
            total = total - torch.log(numerator / denominator)
        total = total + torch.log1p(push)
    return total / n


def run(quick: bool = False, sizes=(64, 256)) -> list[Row]:
    from modeling_ecmc.losses_ecmc import cognition_contrastive_loss, emotion_contrastive_loss

    ref = load_pairwise_reference()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # both sides single-threaded: tiny tensors, and immune to a busy second core
    try:
        return _run(ref, quick, sizes, emotion_contrastive_loss, cognition_contrastive_loss)
    finally:
        torch.set_num_threads(threads)


def _run(ref, quick, sizes, emotion_contrastive_loss, cognition_contrastive_loss) -> list[Row]:
    cases = [
        ("EmoCL (Eq. 10)", "paper", emotion_contrastive_loss, ref.emotion_loss_loop, "emotion"),
        ("CogCL (Eq. 11-12)", "paper", cognition_contrastive_loss, ref.cognition_loss_loop, "cognition"),
        ("EmoCL, authors' variant", "reference", emotion_contrastive_loss, ref.reference_emotion_loss_loop, "emotion"),
        ("CogCL, authors' variant", "reference", cognition_contrastive_loss, ref.reference_cognition_loss_loop, "cognition"),
    ]
    rows = []
    for name, variant, vectorised, loop, kind in cases:
        for n in sizes:
            h, emotion, cognition = make_batch(n, seed=n)
            labels = emotion if kind == "emotion" else cognition
            loop_repeats = 1 if quick else 3
            t_loop, v_loop = timeit(lambda: loop(h, labels, TAU), repeats=loop_repeats, warmup=0 if quick else 1)
            with torch.no_grad():
                t_vec, v_vec = timeit(lambda: vectorised(h, labels, TAU, variant).item(), repeats=5 if quick else 30,
                                      warmup=2)
            rel = abs(v_vec - v_loop) / max(abs(v_loop), 1e-12)
            same = "yes" if rel < 1e-5 else "NO"
            rows.append(Row(
                benchmark=name, size=f"batch {n}", baseline="pairwise Python loop", baseline_value=t_loop,
                ours="vectorised (torch)", ours_value=t_vec, unit="s",
                check=f"{same}: {v_vec:.5f} vs {v_loop:.5f} (rel. diff {rel:.0e})",
                extra={"loss_vectorised": v_vec, "loss_loop": v_loop, "relative_difference": rel},
            ))
    # Training needs gradients: a differentiable per-pair loop in torch ops vs the vectorised loss,
    # forward + backward (the Python-float loop above cannot backpropagate).
    for n in sizes[:1] if quick else sizes:
        h, _, cognition = make_batch(n, seed=n)

        def loop_step():
            x = h.clone().requires_grad_(True)
            loss = cognition_loss_torch_loop(x, cognition)
            loss.backward()
            return loss.item(), x.grad

        def vectorised_step():
            x = h.clone().requires_grad_(True)
            loss = cognition_contrastive_loss(x, cognition, TAU, "paper")
            loss.backward()
            return loss.item(), x.grad

        t_loop, (v_loop, g_loop) = timeit(loop_step, repeats=1, warmup=0)
        t_vec, (v_vec, g_vec) = timeit(vectorised_step, repeats=5 if quick else 30, warmup=2)
        rel = abs(v_vec - v_loop) / max(abs(v_loop), 1e-12)
        grad_rel = ((g_vec - g_loop).norm() / g_loop.norm().clamp(min=1e-12)).item()
        same = "yes" if rel < 1e-5 and grad_rel < 1e-4 else "NO"
        rows.append(Row(
            benchmark="CogCL (Eq. 11-12), forward + backward", size=f"batch {n}",
            baseline="pairwise loop of torch ops", baseline_value=t_loop, ours="vectorised (torch)",
            ours_value=t_vec, unit="s", check=f"{same}: loss rel. diff {rel:.0e}, gradient rel. diff {grad_rel:.0e}",
            extra={"loss_vectorised": v_vec, "loss_loop": v_loop, "relative_difference": rel,
                   "gradient_relative_difference": grad_rel},
        ))
    return rows


def main(argv=None):
    quick_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
