"""Datasets (SpineBench dataset folders under DATASETS_ROOT) and their cases."""
