"""The coursework runs end to end in quick mode: each task via ``mtlkit reproduce``, then the notebook."""

import ast
import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import reproduce_quick

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "coursework" / "coursework.ipynb"
TASKS = {
    1: {("PCA PC1+PC2", "explained_variance_ratio"), ("pair 0-1 in PCA-2D", "logreg_train_acc")},
    2: {("pair 0-1", "test_acc"), ("pair 7-9", "test_acc")},
    3: {("MLP 3.1 [1000,1000]", "test_acc"), ("MLP 7 hidden [512,512,256,256,128,128,64]", "train_time_s")},
    4: {("CNN 4.1 [32,64,128]", "test_acc"), ("CNN 4.1 [32,64,128]", "test_time_s")},
    5: {("DeepDream class 2", "prob_target"), ("DeepDream class 9", "prob_target")},
}


def check_figures(data: dict, out: Path) -> None:
    assert data["figures"]
    for figure in data["figures"]:
        assert (out / figure).stat().st_size > 1000, figure


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory) -> Path:
    """One quick run of every task, shared by the tests below (the notebook then resumes them)."""
    return tmp_path_factory.mktemp("coursework")


def test_task6_quick_needs_no_data_root(quick_runs, monkeypatch):
    """Task 6's quick mode trains on the Fashion-MNIST subset shipped inside mtlkit."""
    monkeypatch.delenv("MTLKIT_DATA", raising=False)
    data = reproduce_quick("coursework-task6", quick_runs)
    rows = {(r["setting"], r["metric"]): r for r in data["rows"]}
    settings = {"STL (brief CNN)", "STL wide (MTL trunk)", "MTL λ=0", "MTL λ=0.5", "MTL λ=1"}
    assert {(s, f"test_acc_{t}") for s in settings for t in ("item", "group")} == set(rows)
    assert all(r["n"] == 1 and r["train_loss_change_last10pct"] >= 0 and r["paper"] is None for r in rows.values())
    assert rows[("MTL λ=1", "test_acc_group")]["head_unchanged"] is True
    assert rows[("MTL λ=0", "test_acc_item")]["head_unchanged"] is True
    assert rows[("MTL λ=0.5", "test_acc_item")]["head_unchanged"] is False
    selection = data["adam_selection"]
    # The setting used is the one with the best validation score, and it is the one every final model used.
    best = max(selection["candidates"], key=lambda c: c["val_acc_mean"])
    assert selection["selected"] == best["adam"] == data["adam_used"]
    assert "λ = 1" in data["lambda_interpretation"] and data["protocol"].startswith("v2")
    assert len(data["per_seed"]) == len(settings)
    check_figures(data, quick_runs)


def test_task6_resumes_from_its_results_file_without_retraining(quick_runs, tmp_path, monkeypatch):
    """With the results file but no run folders (a fresh checkout of committed results), nothing is retrained."""
    monkeypatch.delenv("MTLKIT_DATA", raising=False)
    first = reproduce_quick("coursework-task6", quick_runs)
    shutil.copy(quick_runs / "coursework_task6.json", tmp_path / "coursework_task6.json")
    again = reproduce_quick("coursework-task6", tmp_path)
    assert again["per_seed"] == first["per_seed"]
    assert [(r["setting"], r["metric"], r["ours"]) for r in again["rows"]] == [
        (r["setting"], r["metric"], r["ours"]) for r in first["rows"]
    ]
    assert not (tmp_path / "runs" / "coursework-task6" / "quick" / "v2" / "lam0.5" / "seed0" / "last.pt").exists()


def test_task6_discards_rows_of_an_older_protocol(tmp_path, monkeypatch):
    monkeypatch.delenv("MTLKIT_DATA", raising=False)
    stale = {
        "schema": 2,
        "experiment": "coursework_task6",
        "mode": "quick",
        "protocol": "v1",
        "rows": [{"setting": "STL seed 0", "metric": "test_acc_item", "ours": 0.5}],
    }
    (tmp_path / "coursework_task6.json").write_text(json.dumps(stale))
    data = reproduce_quick("coursework-task6", tmp_path)
    assert all("seed" not in r["setting"] for r in data["rows"]) and data["protocol"].startswith("v2")


@pytest.mark.slow
@pytest.mark.data
def test_tasks_1_to_5_quick(data_root, quick_runs):
    for task, expected in TASKS.items():  # in order: Task 5 resumes Task 4's checkpoint
        data = reproduce_quick(f"coursework-task{task}", quick_runs)
        assert data["mode"] == "quick" and data["deviations"] is not None
        found = {(r["setting"], r["metric"]) for r in data["rows"]}
        assert expected <= found, (task, expected - found)
        check_figures(data, quick_runs)


@pytest.mark.slow
@pytest.mark.data
def test_notebook_executes_in_quick_mode(data_root, quick_runs):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env = {"COURSEWORK_MODE": "quick", "COURSEWORK_RESULTS": str(quick_runs)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        nbclient.NotebookClient(
            notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def _task6_protocol() -> str:
    """Task 6's ``PROTOCOL`` constant, read from the script's source (importing it would register it twice)."""
    tree = ast.parse((ROOT / "examples" / "coursework" / "task6_mtl.py").read_text())
    return next(
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PROTOCOL" for t in node.targets)
    )


def _stored_text(notebook: dict) -> str:
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            parts.append("".join(output.get("data", {}).get("text/markdown", "")))
    return "\n".join(parts)


def test_committed_notebook_shows_the_reduced_campaign():
    """The committed notebook's outputs are the reduced campaign's: its mode and its Task-6 numbers.

    Skipped only while ``results/coursework_task6.json`` predates Task 6's current protocol (the
    reduced campaign has not run yet, so there is nothing correct for the notebook to show). Once the
    campaign's results are committed this test fails until the notebook is re-executed on them.
    """
    task6 = json.loads((ROOT / "results" / "coursework_task6.json").read_text())
    protocol = _task6_protocol()
    if task6.get("protocol") != protocol:
        pytest.skip(
            f"results/coursework_task6.json is from protocol {task6.get('protocol')!r}, not the current "
            f"{protocol!r}: the reduced campaign has not been run, so the notebook cannot show its results yet"
        )
    assert task6["mode"] == "reduced"
    text = _stored_text(json.loads(NOTEBOOK.read_text()))
    assert "mode=reduced" in text and "mode=quick" not in text and "(quick mode)" not in text
    for task in range(1, 7):
        assert f"Task {task}: reduced mode" in text, task
    assert task6["adam_used"] in text
    # The stored Task-6 table is this results file's (a stale execution shows other numbers).
    for row in task6["rows"]:
        assert f"| {row['setting']} | {row['metric']} | {row['ours']:.4g} |" in text, row["setting"]
