"""mtlkit.viz: DeepDream raises the target score; every plot renders to PNG."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlkit import viz

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "coursework"))
import cw_models


@pytest.fixture
def cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return cw_models.task41_cnn().eval()


@pytest.mark.parametrize("target", [2, 9])
def test_deep_dream_increases_the_target_class_score(cnn, target):
    start = torch.zeros(1, 28, 28)
    dream = viz.deep_dream(
        cnn, target, steps=15, lr=0.1, jitter=1, blur_sigma=0.5, octaves=2, value_range=(-0.5, 2.5), init=start, seed=0
    )
    assert dream.shape == (1, 28, 28)
    assert float(dream.min()) >= -0.5 and float(dream.max()) <= 2.5
    with torch.no_grad():
        before, after = cnn(start[None]).softmax(1)[0, target], cnn(dream[None]).softmax(1)[0, target]
    assert after > before


def test_deep_dream_reads_dict_outputs_and_checks_arguments(cnn):
    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = cnn

        def forward(self, x):
            return {"digit": self.net(x)}

    img = viz.deep_dream(Wrapped(), 3, steps=2, octaves=1, input_shape=(1, 28, 28), output="digit")
    assert img.shape == (1, 28, 28)
    with pytest.raises(ValueError, match="output="):
        viz.deep_dream(Wrapped(), 3, steps=1, octaves=1, input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match="target_class"):
        viz.deep_dream(cnn, 10, steps=1, octaves=1)


def test_capture_activations_restores_mode_and_rejects_foreign_layers(cnn):
    cnn.train()
    acts = viz.capture_activations(cnn, torch.zeros(1, 1, 28, 28), cw_models.conv_layers(cnn))
    assert [tuple(a.shape) for a in acts.values()] == [(1, 32, 25, 25), (1, 64, 11, 11), (1, 128, 4, 4)]
    assert cnn.training
    with pytest.raises(ValueError, match="not sub-modules"):
        viz.capture_activations(cnn, torch.zeros(1, 1, 28, 28), {"x": torch.nn.Conv2d(1, 1, 1)})


def test_every_plot_saves_a_png(cnn, tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    figures = {
        "embedding": viz.plot_embedding_2d(rng.normal(size=(40, 2)), np.arange(40) % 4),
        "curves": viz.plot_curves([{"epoch": 1, "a": 0.5}, {"epoch": 2, "a": 0.7}], ["a"]),
        "grid": viz.plot_image_grid(rng.normal(size=(3, 28, 28)), symmetric=True, cmap="RdBu_r"),
        "filters": viz.plot_filters(cnn.layers[1][0].weight),
        "activations": viz.plot_activations(cnn, torch.zeros(1, 28, 28), cw_models.conv_layers(cnn)),
        "sweep": viz.plot_sweep([0, 1], {"item": ([0.8, 0.9], [0.01, 0.02])}, references={"STL": 0.85}),
        "tradeoff": viz.plot_tradeoff({"CNN": [(1e5, 0.99)], "MLP": [(1e6, 0.98)]}, log_x=True),
    }
    for name, fig in figures.items():
        fig.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000, name
    with pytest.raises(ValueError, match="points must be"):
        viz.plot_embedding_2d(np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(KeyError):
        viz.plot_curves([{"epoch": 1}], ["missing"])
