"""Scoring against ground truth: ``metrics`` (DSB score, AP, F1, PQ, AJI, error maps) and
``evaluate`` (a model on labelled samples, as training validates)."""
