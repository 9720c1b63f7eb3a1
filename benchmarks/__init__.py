"""ECMC benchmarks: ratios measured side by side in one run (DESIGN §5), never timed assertions.

    python -m benchmarks.run_cpu          # CPU table, also written to BENCHMARKS.md
    python -m benchmarks.gpu [--tiny]     # paper-sized steps on a lent GPU (see benchmarks/README.md)
"""
