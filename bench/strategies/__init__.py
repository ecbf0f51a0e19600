"""Strategy benchmarks: `python -m bench.strategies` (see docs/benchmarks.md, "Strategies")."""
