"""The card fields that benchmarks/benchmark.py --update-cards writes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from benchmark import card_test_scores  # noqa: E402


def test_card_test_scores_keep_only_data_set_scores():
    row = {"name": "m", "s_per_mp": 0.5,
           "DSB val": {"dsb_score": 0.6, "ap50": 0.8},
           "MoNuSeg test": {"dsb_score": 0.123456, "ap50": 0.5, "n_images": 14},
           "card": {"name": "m", "config": {"base": 32}}}
    fields = card_test_scores(row)
    assert fields == {"MoNuSeg test": {"dsb_score": 0.1235, "ap50": 0.5, "n_images": 14}}
