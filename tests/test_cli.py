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
    out = subprocess.run([sys.executable, "-m", "mtlkit.cli", "--version"], capture_output=True, text=True, check=True)
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


def test_unknown_experiment_is_one_line_naming_it(tmp_path, capsys):
    assert main(["reproduce", "nope", "--examples", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no experiment named 'nope'" in err


def test_a_missing_examples_folder_says_what_to_pass(tmp_path, capsys):
    assert main(["reproduce", "toy", "--examples", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "absent") in err


def test_without_a_checkout_the_examples_folder_must_be_given(tmp_path, monkeypatch, capsys):
    from mtlkit import experiments

    # An installed wheel: the package's parent folder is site-packages, with no pyproject.toml.
    fake = tmp_path / "site-packages" / "mtlkit" / "experiments.py"
    fake.parent.mkdir(parents=True)
    (tmp_path / "site-packages" / "examples").mkdir()  # someone else's top-level examples/ folder
    monkeypatch.setattr(experiments, "__file__", str(fake))
    monkeypatch.delenv("MTLKIT_EXAMPLES", raising=False)
    for argv in (["list"], ["reproduce", "toy"], ["status"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--examples DIR" in err and "MTLKIT_EXAMPLES" in err


def test_examples_import_siblings_without_touching_sys_path_or_modules(tmp_path):
    examples = tmp_path / "examples"
    (examples / "one").mkdir(parents=True)
    (examples / "two").mkdir()
    # Two folders each with a helper of the same bare name: each example sees its own sibling.
    for folder, value in (("one", 1), ("two", 2)):
        (examples / folder / "shared_helper.py").write_text(
            f"from dataclasses import dataclass\n\n@dataclass\nclass Budget:\n    epochs: int = {value}\n"
        )
        (examples / folder / "exp.py").write_text(
            "from __future__ import annotations\n"
            "from shared_helper import Budget\n"
            "from mtlkit.experiments import register_experiment\n"
            f"@register_experiment('toy-{folder}', seed_file='000_x.txt', description=str(Budget().epochs))\n"
            "def run(ctx):\n    return Budget().epochs\n"
        )
    path_before, modules_before = list(sys.path), set(sys.modules)
    registry = discover(examples)
    assert sys.path == path_before and set(sys.modules) == modules_before
    assert {name: exp.description for name, exp in registry.items()} == {"toy-one": "1", "toy-two": "2"}
    assert registry["toy-two"].run(None) == 2 and registry["toy-one"].source.endswith("exp.py")
    assert discover(examples).keys() == registry.keys()  # loading again is not "registered twice"


def test_one_name_in_two_files_is_refused(tmp_path):
    (tmp_path / "a.py").write_text(EXAMPLE.format(tag="twice"))
    (tmp_path / "b.py").write_text(EXAMPLE.format(tag="twice"))
    with pytest.raises(ValueError, match="'toy-twice' is registered twice"):
        discover(tmp_path)


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
        assert (exp.seed_file or "").endswith(".txt") or (exp.origin or "").startswith("issue "), name
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


def test_an_experiment_names_exactly_one_of_seed_file_and_origin():
    from mtlkit.experiments import register_experiment

    assert register_experiment("b", origin="issue 18", description="d")(lambda ctx: None).provenance == "issue 18"
    for kw in ({}, {"seed_file": "000_x.txt", "origin": "issue 18"}, {"origin": ""}):
        with pytest.raises(ValueError, match=r"experiment 'b'.*(seed_file / origin|origin must be)"):
            register_experiment("b", description="d", **kw)


def test_check_rewrites_the_checks_of_a_finished_file_from_the_registered_gates(tmp_path, capsys):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "toy.py").write_text(EXAMPLE.format(tag="gated"))
    results = tmp_path / "results"
    assert main(["reproduce", "toy-gated", "--mode", "reduced", "--examples", str(examples), "--results-dir",
                 str(results)]) == 0  # fmt: skip
    path = results / "toy_gated.json"
    before = json.loads(path.read_text())
    assert before["checks"] == []
    # A gate added after the run: `check` evaluates it on the stored rows and leaves the rest alone.
    gated = EXAMPLE.format(tag="gated").replace(
        'description="a toy experiment")',
        'description="d", gates=[Gate("b trains", key="ours", above=0.8, settings="b", per_row=True)])',
    )
    (examples / "toy.py").write_text("from mtlkit.gates import Gate\n" + gated)
    args = ["check", "toy-gated", "--examples", str(examples), "--results-dir", str(results)]
    assert main(args) == 0
    assert "toy-gated: 1 gates, b trains FAILED (fails on 1 of 1 rows)" in capsys.readouterr().out
    after = json.loads(path.read_text())
    assert after["checks"][0]["failed_rows"] == [{"setting": "b", "metric": "acc"}]
    assert {k: v for k, v in after.items() if k != "checks"} == {k: v for k, v in before.items() if k != "checks"}
    assert main([*args, "--mode", "full"]) == 0
    assert "no full-mode results file" in capsys.readouterr().out
    # A file with planned configurations still to run belongs to its run: left alone unless forced.
    path.write_text(json.dumps({**before, "planned": ["x", "y"], "progress": {"x": 1.0}}))
    assert main(args) == 0
    assert "1 of 2 planned configurations unfinished" in capsys.readouterr().out
    assert json.loads(path.read_text())["checks"] == []
    assert main([*args, "--force"]) == 0
    assert json.loads(path.read_text())["checks"][0]["name"] == "b trains"
    assert [p.name for p in results.iterdir()] == ["toy_gated.json"]  # no temporary file left behind
