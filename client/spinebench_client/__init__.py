"""Command-line client of a SpineBench server (requests + tqdm only)."""

__version__ = "0.1.0"
