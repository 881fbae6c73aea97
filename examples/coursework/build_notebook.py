"""Write ``coursework.ipynb`` (the six tasks through mtlkit) and optionally execute it in place.

    python examples/coursework/build_notebook.py            # write only
    MTLKIT_DATA=... python examples/coursework/build_notebook.py --execute   # write, run (quick mode), save outputs

The notebook reads ``COURSEWORK_MODE`` (quick | reduced | full; default quick) and
``COURSEWORK_RESULTS`` (where results, figures and checkpoints go; default ``runs/notebook-<mode>``),
so CI can re-execute it cheaply and a student can switch it to the full protocol.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbformat import NotebookNode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

SETUP = '''\
import inspect
import json
import os
import sys
from pathlib import Path

import torch
from IPython.display import Image, Markdown, display

from mtlkit.cli import main

sys.path.insert(0, "examples/coursework")  # the scripts' architecture module, cw_models
torch.set_num_threads(1)
MODE = os.environ.get("COURSEWORK_MODE", "quick")
# Reduced and full mode read (and resume) the campaign's results in results/; quick mode has its own folder.
RESULTS = Path(os.environ.get("COURSEWORK_RESULTS", "runs/notebook-quick" if MODE == "quick" else "results"))
RERUN = os.environ.get("COURSEWORK_RERUN", "0") == "1"  # 1: call the experiments even when results exist


def finished(task: int) -> dict | None:
    """The task's results file when it already holds this mode's finished run (Task 6: its current protocol)."""
    path = RESULTS / f"coursework_task{task}.json"
    if RERUN or not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data.get("mode") != MODE or not data.get("figures"):
        return None
    if task == 6:
        import task6_mtl

        if data.get("protocol") != task6_mtl.PROTOCOL:
            return None
    return data


def run(task: int) -> dict:
    """The task's finished results, or run (resume) it through `mtlkit reproduce` first."""
    data = finished(task)
    if data is None:
        main(["reproduce", f"coursework-task{task}", "--mode", MODE, "--results-dir", str(RESULTS),
              "--runs-dir", str(RESULTS.parent / "runs" if MODE != "quick" else RESULTS / "runs"), "--no-progress"])
        data = json.loads((RESULTS / f"coursework_task{task}.json").read_text())
    print(f"Task {task}: {data['mode']} mode, mtlkit commit {data.get('mtlkit_commit')}, "
          f"{data['wall_time_s'] / 3600:.2f} h of training and evaluation")
    failed = [c["name"] for c in data.get("checks", []) if not c["passed"]]
    if failed:
        print("FAILED sanity gates (the rows they cover are uninformative): " + ", ".join(failed))
    return data


def fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def show(results: dict, metrics=None, figures=True) -> None:
    """The results as a table (optionally only some metrics), then the figures."""
    rows = [r for r in results["rows"] if metrics is None or r["metric"] in metrics]
    lines = ["| setting | metric | ours | ± std | n | brief says (illustration) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['setting']} | {r['metric']} | {fmt(r['ours'])} | {fmt(r.get('ours_std') or '')} "
              f"| {r.get('n', '')} | {fmt(r.get('brief_says') or '')} |" for r in rows]
    display(Markdown("\\n".join(lines)))
    if results.get("conclusions"):
        display(Markdown(f"**Conclusion ({results['mode']} mode):** {results['conclusions']}"))
    if figures:
        for figure in results.get("figures", []):
            display(Image(filename=str(RESULTS / figure)))


print(f"mode={MODE}, results in {RESULTS}")
'''

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """\
# Deep-learning coursework with mtlkit

The six tasks of the coursework (PCA, perceptron, MLPs, CNNs, CNN visualisation, multi-task
learning), each run through `mtlkit reproduce coursework-taskN`. Every cell below calls the same
registered experiment as the command line, so the numbers here and in `results/` come from one code
path. The committed copy was executed with `COURSEWORK_MODE=reduced` from the finished reduced
campaign in `results/` (the first output cell says which mode; executing it reads finished runs and
retrains nothing). CI executes a `quick` copy (tiny subsets: a smoke run whose accuracies mean
nothing); `full` is the coursework protocol, for a GPU. The scripts live in
`examples/coursework/`; the reusable parts are `perceptron.py` (beside the scripts), `mtlkit.viz` and the mtlkit
models and Trainer.""",
    ),
    ("code", SETUP),
    (
        "md",
        """\
## Task 1 — PCA of MNIST

The 60 000 training images, vectorised to 784 pixels in [0, 1], projected on their first two
principal components (scikit-learn `PCA`). The table gives the explained variance and, per digit
pair, the training accuracy of a linear classifier in the 2-D projection: a number near 1 means the
pair is linearly separable already in 2-D.""",
    ),
    ("code", "task1 = run(1)\nshow(task1)"),
    (
        "md",
        """\
## Task 2 — Perceptron (numpy only)

`predict(x, w, b) = sign(w·x + b)` and `optimize(x, y)` (random init, online perceptron rule,
error per pass) live in `perceptron.py` beside the scripts, which imports nothing but numpy:""",
    ),
    (
        "code",
        "import perceptron\n\n"
        "print(inspect.getsource(perceptron.predict))\nprint(inspect.getsource(perceptron.perceptron_update))",
    ),
    ("code", "task2 = run(2)\nshow(task2)"),
    (
        "md",
        """\
## Task 3 — MLPs

[784, 1000, 1000, 10] with ReLU, Adam and cross-entropy, then four deeper nets (3, 4, 5 and 7 hidden
layers). Each is an `mtlkit.nn.ConvNet` spec (`Flatten` then `Dense` layers) trained by
`mtlkit.Trainer`; the table gives parameters, accuracy and training time.""",
    ),
    (
        "code",
        "import cw_models\n\n"
        "print(cw_models.mlp(cw_models.MLP_31))\ntask3 = run(3)\n"
        "show(task3, metrics={'test_acc', 'train_acc', 'train_time_s', 'params'})",
    ),
    (
        "md",
        """\
## Task 4 — CNNs

[32, 64, 128] filters, 4×4 kernels, strides 1, 2, 2, flatten, a dense layer of 10; four other CNNs
of different depth and width; and the comparison with the MLPs of Task 3 (same data budget).""",
    ),
    ("code", "print(cw_models.task41_cnn())\ntask4 = run(4)\nshow(task4)"),
    (
        "md",
        """\
## Task 5 — What the Task-4 CNN learned

Filters of every convolution (`mtlkit.viz.plot_filters`), the feature maps of every convolution for
a test '2' and a test '9' (`plot_activations`), and DeepDream class images for 2 and 9
(`deep_dream`: gradient ascent on the input with jitter, blur and octaves), each fed back to the
CNN.""",
    ),
    ("code", "task5 = run(5)\nshow(task5)"),
    (
        "md",
        """\
## Task 6 — Multi-task learning on Fashion-MNIST

Items (10 classes) and groups (clothing, footwear, bags). Two single-task CNNs, and one network
with a shared backbone and shared dense layer of 3136 and two branches, trained on
$L = \\lambda L_\\text{item} + (1 - \\lambda) L_\\text{group}$ with the Adam setting chosen on a
validation split carved from the training set. Beside the brief's small single-task CNNs, two
capacity-matched single-task baselines: the MTL network trained on one task ($\\lambda = 1$ for
items, $\\lambda = 0$ for groups) and a wide single-task CNN with the MTL trunk's dense layer.""",
    ),
    (
        "code",
        "print(cw_models.fashion_multitask())\ntask6 = run(6)\n"
        "selection = task6['adam_selection']\n"
        "display(Markdown('**Adam selection:** ' + selection['procedure'] + '.\\n\\n'\n"
        "                 + '| setting | val acc item | val acc group | mean |\\n|---|---|---|---|\\n'\n"
        "                 + '\\n'.join(f\"| {c['adam']} | {c['val_acc_item']:.4f} | {c['val_acc_group']:.4f} \"\n"
        "                             f\"| {c['val_acc_mean']:.4f} |\" for c in selection['candidates'])\n"
        "                 + f\"\\n\\nSelected and used for every final model: **{task6['adam_used']}**\"))\n"
        "show(task6, metrics={'test_acc_item', 'test_acc_group'})",
    ),
    ("code", "display(Markdown('**What λ = 0 and λ = 1 mean:** ' + task6['lambda_interpretation']))"),
]


def build() -> NotebookNode:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text) for kind, text in CELLS
    ]
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run it (from the repository root) and keep outputs")
    args = parser.parse_args()
    import nbformat

    notebook = build()
    if args.execute:
        from nbclient import NotebookClient

        os.environ.setdefault("COURSEWORK_MODE", "quick")
        NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
    nbformat.write(notebook, HERE / "coursework.ipynb")
    print(f"wrote {HERE / 'coursework.ipynb'}")


if __name__ == "__main__":
    main()
