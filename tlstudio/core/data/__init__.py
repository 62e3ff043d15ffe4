"""Scanning a folder into a split, and turning its files into batches (datasets, pipelines, loaders)."""
