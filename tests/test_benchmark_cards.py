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


def test_the_report_keeps_the_hand_written_speed_page(tmp_path, monkeypatch):
    import benchmark

    (tmp_path / "speed.md").write_text("# Speed\n\n## A probe\n\nwritten by hand\n")
    (tmp_path / "robustness.md").write_text("# Robustness\n\nits table\n")
    monkeypatch.setattr(benchmark, "DOCS", tmp_path / "benchmarks.md")
    benchmark.write_report("| table |", {}, "CPU")
    page = (tmp_path / "benchmarks.md").read_text()
    speed = page.index("## Speed\n\n### A probe\n\nwritten by hand")
    assert page.index("| table |") < speed < page.index("## Robustness")


def test_the_shipped_report_ends_with_the_hand_written_pages_as_they_are():
    import benchmark

    assert (benchmark.DOCS).read_text().endswith(benchmark.hand_written_pages()), \
        "a page of benchmark.PAGES changed: run python benchmarks/benchmark.py --pages-only"


def test_refreshing_the_pages_keeps_the_measured_part(tmp_path, monkeypatch):
    import benchmark

    monkeypatch.setattr(benchmark, "DOCS", tmp_path / "benchmarks.md")
    (tmp_path / "speed.md").write_text("# Speed\n\nOLD PAGE\n")
    benchmark.write_report("| table |", {}, "CPU")
    (tmp_path / "speed.md").write_text("# Speed, renamed\n\nNEW PAGE\n")
    (tmp_path / "batch_benchmark.md").write_text("# Batch\n\nA NEW PAGE\n")
    benchmark.refresh_pages()
    page = (tmp_path / "benchmarks.md").read_text()
    assert "| table |" in page and page.endswith("\n## Speed, renamed\n\nNEW PAGE\n\n## Batch\n\nA NEW PAGE\n")
    assert "OLD PAGE" not in page


def test_update_cards_says_where_and_how_the_validation_figures_were_measured(tmp_path, monkeypatch):
    import json
    from types import SimpleNamespace

    import benchmark

    card = tmp_path / "m.json"
    card.write_text(json.dumps({"validation": {"dsb_score": 0.1, "confidence_auroc": 0.7, "measured": "old"}}))
    entry = SimpleNamespace(name="m", user=False, weights=tmp_path / "m.pt")
    monkeypatch.setattr(benchmark, "list_models", lambda: [entry])
    row = {"name": "m", "s_per_mp": 0.5, "DSB val": {"dsb_score": 0.6, "ap50": 0.8, "tp": 3}}
    monkeypatch.setattr(sys, "argv", ["/x/benchmarks/benchmark.py", "--float32", "--update-cards"])
    monkeypatch.delenv("NUCLEISEG_USER_DIR", raising=False)
    benchmark.update_cards([row], 2, "CPU X")
    saved = json.loads(card.read_text())
    v = saved["validation"]
    assert v["dsb_score"] == 0.6 and v["confidence_auroc"] == 0.7 and v["aggregation"] == benchmark.AGGREGATION
    assert v["measured"].startswith("CPU X, ") and "benchmark.py --float32 --update-cards" in v["measured"]
    assert saved["speed"]["command"] == "python benchmarks/benchmark.py --float32 --update-cards"
    assert v["measured"].endswith("confidence_auroc from the release")
