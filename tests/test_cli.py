import json
import subprocess
import sys
import textwrap

import pytest

from mtlkit import __version__
from mtlkit.cli import main
from mtlkit.experiments import discover
from mtlkit.results import ResultsFile

EXAMPLE = textwrap.dedent(
    """
    from mtlkit.experiments import register_experiment

    @register_experiment("toy-{tag}", seed_file="000_x.txt", description="a toy experiment")
    def run(ctx):
        results = ctx.results(deviations=["none"], seeds=[0])
        if not results.has("a"):
            results.add_row("a", "acc", 0.5)
        results.add_row("b", "acc", 0.75, paper=0.8)
    """
)


def test_version_flag():
    out = subprocess.run([sys.executable, "-m", "mtlkit.cli", "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == f"mtlkit {__version__}"


def test_list_and_reproduce_use_the_data_driven_registry(tmp_path, capsys):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "toy.py").write_text(EXAMPLE.format(tag="cli"))
    (examples / "not_an_experiment.py").write_text("raise RuntimeError('must not be imported')\n")
    assert main(["list", "--examples", str(examples)]) == 0
    assert "toy-cli" in capsys.readouterr().out
    results = tmp_path / "results"
    args = ["reproduce", "toy-cli", "--mode", "reduced", "--examples", str(examples), "--results-dir", str(results)]
    assert main(args) == 0
    data = json.loads((results / "toy_cli.json").read_text())
    assert data["mode"] == "reduced" and data["command"] == "mtlkit reproduce toy-cli --mode reduced"
    assert [r["setting"] for r in data["rows"]] == ["a", "b"]
    assert {"deviations", "hardware", "wall_time_s", "mtlkit_commit", "seeds"} <= set(data)


def test_unknown_experiment_is_named(tmp_path):
    with pytest.raises(KeyError, match="no experiment named 'nope'"):
        main(["reproduce", "nope", "--examples", str(tmp_path)])


def test_results_file_continues_same_mode_and_replaces_other(tmp_path):
    path = tmp_path / "r.json"
    kw = {"experiment": "e", "seed_file": "s", "command": "c"}
    ResultsFile(path, mode="reduced", **kw).add_row("x", "acc", 0.1)
    again = ResultsFile(path, mode="reduced", **kw)
    assert again.has("x", "acc") and not again.has("x", "loss")
    again.add_row("x", "acc", 0.2)
    assert [r["ours"] for r in ResultsFile(path, mode="reduced", **kw).rows] == [0.2]
    assert ResultsFile(path, mode="full", **kw).rows == []


def test_repository_examples_register_without_side_effects():
    registry = discover()
    for name, exp in registry.items():
        assert exp.seed_file.endswith(".txt"), name
        assert exp.description, name


def test_reproduce_applies_the_experiments_cpu_settings_and_restores_them(tmp_path):
    import torch

    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "threads.py").write_text(
        textwrap.dedent(
            """
            import torch
            from mtlkit.experiments import register_experiment

            @register_experiment("toy-threads", seed_file="000_x.txt", description="d", threads=1)
            def run(ctx):
                ctx.results().add_row("threads", "n", torch.get_num_threads())
            """
        )
    )
    before = torch.get_num_threads()
    main(["reproduce", "toy-threads", "--examples", str(examples), "--results-dir", str(tmp_path)])
    assert json.loads((tmp_path / "toy_threads.json").read_text())["rows"][0]["ours"] == 1
    assert torch.get_num_threads() == before
