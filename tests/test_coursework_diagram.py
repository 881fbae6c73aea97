"""Task 2's perceptron diagram (examples/coursework/perceptron_diagram.py)."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "coursework"))
import perceptron_diagram


def test_diagram_shows_inputs_weights_bias_sum_and_sign(tmp_path):
    import matplotlib.pyplot as plt

    fig = perceptron_diagram.draw_perceptron(784)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"$x_1$", "$x_{784}$", "$w_1$", "$w_{784}$", "$b$", r"$\Sigma$", r"$\mathrm{sign}(z)$", r"$\hat y$"} <= texts
    fig.savefig(tmp_path / "d.png")
    plt.close(fig)
    assert (tmp_path / "d.png").stat().st_size > 5000


@pytest.mark.parametrize("bad", [3, 4.5, "784"])
def test_diagram_rejects_bad_input_count(bad):
    with pytest.raises(ValueError, match="n_inputs"):
        perceptron_diagram.draw_perceptron(bad)
