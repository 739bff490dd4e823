"""The commands the model cards record can be typed again: the script exists, takes every option
given, and is given every option it requires."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CARDS = sorted((ROOT / "src/napari_nucleiseg/weights").glob("*.json")) + sorted(
    (ROOT / "checkpoints/recipe/models").glob("*.json"))
SCRIPT = re.compile(r"python ((?:scripts|benchmarks|experiments)/[\w/]+\.py)")


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def commands(text: str) -> list[tuple[str, list[str]]]:
    """``(script, options)`` of each ``python <script>.py ...`` in ``text``, up to the next command."""
    found = []
    for match in SCRIPT.finditer(text):
        rest = re.split(r";|\bthen\b|\bpython ", text[match.end():], maxsplit=1)[0]
        found.append((match.group(1), re.findall(r"(?<![\w-])--[a-z][\w-]*", rest)))
    return found


def test_commands_are_found_in_card_text():
    text = "a; python scripts/x.py --a 1 --b-c '{\"k\": 2}'; then: python benchmarks/y.py --d"
    assert commands(text) == [("scripts/x.py", ["--a", "--b-c"]), ("benchmarks/y.py", ["--d"])]


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.stem)
def test_every_command_a_card_records_can_run(card):
    found = [c for s in _strings(json.loads(card.read_text())) for c in commands(s)]
    assert found, f"{card.name} records no command"
    for script, options in found:
        source = ROOT / script
        assert source.is_file(), f"{card.name}: {script} does not exist"
        code = source.read_text()
        for option in options:
            assert f'"{option}"' in code, f"{card.name}: {script} has no option {option}"
        for required in re.findall(r'add_argument\("(--[\w-]+)"[^\n]*required=True', code):
            assert required in options, f"{card.name}: {script} needs {required}"



def _one_stage_counts(card: Path) -> bool:
    training = json.loads(card.read_text())["training"]
    return ("steps" in training and "stages" not in training
            and len(re.findall(r"--steps-per-epoch (\d+)", training["command"])) == 1)


@pytest.mark.parametrize("card", [c for c in CARDS if _one_stage_counts(c)], ids=lambda p: p.stem)
def test_a_cards_steps_are_those_behind_its_weights(card):
    training = json.loads(card.read_text())["training"]
    per_epoch = int(re.findall(r"--steps-per-epoch (\d+)", training["command"])[0])
    assert training["steps"] == training["epochs"] * per_epoch
    assert training["steps_run"] == training["epochs_run"] * per_epoch


@pytest.mark.parametrize("folder", ["scripts", "benchmarks", "experiments", "sample_data"])
def test_every_runnable_script_parses_its_options_before_any_work(folder):
    """``--help`` answers rather than runs: a script without a parser once rewrote the samples."""
    for script in sorted((ROOT / folder).glob("*.py")):
        code = script.read_text()
        if '__name__ == "__main__"' in code:
            assert "ArgumentParser(" in code, f"{script.relative_to(ROOT)} takes no options: --help would run it"
