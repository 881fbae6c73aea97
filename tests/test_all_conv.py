import pytest
import torch

from mtlkit.nn import Conv, GlobalAvgPool, all_conv_specs, all_conv_trunk


def _trunk_params(c: int, w: int) -> int:
    h = w // 2
    return 9 * c * h + h + 2 * (9 * h * h + h) + 9 * h * w + w + 3 * (9 * w * w + w) + w * w + w


@pytest.mark.parametrize("width", [8, 32, 192])
def test_parameter_count_matches_the_documented_formula(width):
    net = all_conv_trunk((1, 28, 28), width)
    assert sum(p.numel() for p in net.parameters()) == _trunk_params(1, width)


def test_paper_width_count_and_shapes():
    net = all_conv_trunk((1, 28, 28), 192)
    assert sum(p.numel() for p in net.parameters()) == 1_366_080
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 192)
    assert net.output_shape == (192,)


def test_no_pooling_layers_only_strided_convolutions():
    specs = all_conv_specs(64)
    assert isinstance(specs[-1], GlobalAvgPool)
    convs = [s for s in specs if isinstance(s, Conv)]
    assert len(convs) == len(specs) - 1
    assert [s.stride for s in convs].count(2) == 2
    assert all(s.kernel_size == 3 for s in convs if s.stride == 2)


def test_cifar_input_and_bad_width():
    assert all_conv_trunk((3, 32, 32), 16)(torch.zeros(1, 3, 32, 32)).shape == (1, 16)
    with pytest.raises(ValueError, match="width"):
        all_conv_specs(1)
