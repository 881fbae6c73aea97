"""Bad input to the public constructors and forwards (not the factorised layers, whose validation
is redesigned elsewhere): each call either works or raises ValueError/TypeError naming the
argument, never an error from inside torch (RuntimeError, IndexError, AttributeError ...).
Loading: a data root that is a file, a truncated gzip, an npz without a key, a file that cannot be
read: each an error naming the path.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from mtlkit import MLP, ConvNet, LinearHead, MLPHead, MultiTaskModel, Trainer
from mtlkit.data import DataError, load
from mtlkit.data._idx import read_idx
from mtlkit.data._npz import read_npz
from mtlkit.nn import Conv, Dense, Flatten, MaxPool

# Sizes as a user might get them wrong: negative, zero, fractional, bool, text, None.
SIZES = st.one_of(
    st.integers(-3, 6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["4", b"4"]),
)
DTYPES = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64, torch.bool, torch.uint8])
FILL = st.sampled_from([0.0, 1.0, float("nan"), float("inf"), -float("inf")])


def works_or_names(call: Callable[[], object], *names: str) -> object:
    """Run ``call``; an exception must be ValueError/TypeError mentioning one of ``names``."""
    try:
        return call()
    except (ValueError, TypeError) as error:
        message = str(error)
        assert any(name in message for name in names), f"{type(error).__name__} names none of {names}: {message}"
        return None


@settings(max_examples=60, deadline=None)
@given(in_features=SIZES, out_features=SIZES)
def test_linear_head_sizes(in_features: object, out_features: object) -> None:
    head = works_or_names(lambda: LinearHead(in_features, out_features), "in_features", "out_features")  # type: ignore[arg-type]
    if head is not None:
        assert isinstance(in_features, int) and in_features >= 1 and not isinstance(in_features, bool)


@settings(max_examples=60, deadline=None)
@given(in_features=SIZES, hidden=st.lists(SIZES, max_size=3), out_features=SIZES,
       dropout=st.floats(allow_nan=True, allow_infinity=True))  # fmt: skip
def test_mlp_head_and_mlp_sizes(
    in_features: object, hidden: list[object], out_features: object, dropout: float
) -> None:
    names = ("in_features", "widths", "dropout", "sizes")
    works_or_names(lambda: MLPHead(in_features, hidden, out_features, dropout=dropout), *names)  # type: ignore[arg-type]
    works_or_names(lambda: MLP(in_features, [*hidden, out_features], dropout=dropout), *names)  # type: ignore[arg-type]


@settings(max_examples=80, deadline=None)
@given(batch=st.integers(0, 3), features=st.integers(1, 7), extra_dims=st.integers(0, 2), dtype=DTYPES, fill=FILL)
def test_mlp_and_head_forward(batch: int, features: int, extra_dims: int, dtype: torch.dtype, fill: float) -> None:
    torch.manual_seed(0)
    mlp, head = MLP(4, [3]), LinearHead(4, 2)
    shape = (batch, features, *([1] * extra_dims)) if extra_dims else (batch, features)
    x = torch.full(shape, fill).to(dtype) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype)
    for module, name in ((mlp, "x"), (head, "features")):
        out = works_or_names(lambda m=module: m(x), name)
        if out is not None:  # worked: so the input was a float32 batch of 4 features
            assert dtype == torch.float32 and features == 4 and out.shape[0] == batch
    # A 1-D tensor is one example without its batch dimension: refused, not an IndexError.
    works_or_names(lambda: mlp(torch.zeros(4)), "x")
    works_or_names(lambda: mlp([1.0, 2.0, 3.0, 4.0]), "x")  # type: ignore[arg-type]


# Specs are built inside the call under test: their own constructors check their sizes.
CONV_SPECS = st.one_of(
    st.tuples(st.just(Conv), st.integers(-2, 5), st.integers(-1, 9)),
    st.tuples(st.just(MaxPool), st.integers(-1, 9)),
    st.tuples(st.just(Flatten)),
    st.tuples(st.just(Dense), st.integers(-2, 5)),
)
SPEC_NAMES = ("specs[", "layer ", "out_channels", "kernel_size", "out_features", "stride")


@settings(max_examples=80, deadline=None)
@given(channels=st.integers(1, 3), size=st.integers(1, 10), specs=st.lists(CONV_SPECS, min_size=1, max_size=4))
def test_convnet_specs_that_do_not_fit_are_named(channels: int, size: int, specs: list[tuple]) -> None:
    works_or_names(lambda: ConvNet((channels, size, size), [kind(*args) for kind, *args in specs]), *SPEC_NAMES)


@settings(max_examples=40, deadline=None)
@given(channels=st.integers(1, 3), size=st.integers(4, 10), dtype=DTYPES, batch=st.integers(0, 2))
def test_convnet_forward_input_checked(channels: int, size: int, dtype: torch.dtype, batch: int) -> None:
    net = ConvNet((1, 8, 8), [Conv(2, 3), Flatten(), Dense(3)])
    x = torch.zeros(batch, channels, size, size, dtype=dtype)
    out = works_or_names(lambda: net(x), "x")
    if out is not None:
        assert (channels, size, dtype) == (1, 8, torch.float32) and out.shape == (batch, 3)


def _model() -> MultiTaskModel:
    torch.manual_seed(0)
    return MultiTaskModel(MLP(4, [3]), {"a": LinearHead(3, 2), "b": LinearHead(3, 2)})


TASK_NAMES = st.sampled_from(["a", "b", "c", ""])


@settings(max_examples=60, deadline=None)
@given(tasks=st.one_of(st.none(), st.lists(TASK_NAMES, max_size=3), TASK_NAMES),
       inputs=st.one_of(st.just("tensor"), st.lists(TASK_NAMES, max_size=3, unique=True)), fill=FILL)  # fmt: skip
def test_multitask_forward_tasks_and_task_dicts(tasks: object, inputs: object, fill: float) -> None:
    model = _model()
    x: object = torch.full((2, 4), fill) if inputs == "tensor" else {t: torch.full((2, 4), fill) for t in inputs}
    out = works_or_names(lambda: model(x, tasks), "task", "x")  # type: ignore[arg-type]
    if out is not None:
        assert set(out) == set(model.tasks if tasks is None else tasks)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda: MultiTaskModel(3, {"a": LinearHead(3, 2)}), ("trunk",)),
        (lambda: MultiTaskModel(MLP(4, [3]), [LinearHead(3, 2)]), ("heads",)),
        (lambda: MultiTaskModel(MLP(4, [3]), {}), ("head",)),
        (lambda: MultiTaskModel(MLP(4, [3]), {"a": LinearHead(5, 2)})(torch.zeros(2, 4)), ("features",)),
        (lambda: MultiTaskModel({"a": MLP(4, [3])}, {"b": LinearHead(3, 2)}), ("trunk", "head")),
    ],
)
def test_multitask_constructor(call: Callable[[], object], names: tuple[str, ...]) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert any(name in str(info.value) for name in names), str(info.value)


def test_trainer_arguments() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = {"a": F.cross_entropy, "b": F.cross_entropy}
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: Trainer(3, opt, losses), "model"),  # type: ignore[arg-type]
        (lambda: Trainer(model, 3, losses), "optimizer"),  # type: ignore[arg-type]
        (lambda: Trainer(model, opt, {}), "loss"),
        (lambda: Trainer(model, opt, {"a": 3, "b": F.cross_entropy}), "losses"),  # type: ignore[dict-item]
        (lambda: Trainer(model, opt, {"zz": F.cross_entropy}), "zz"),
        (lambda: Trainer(model, opt, losses, weights={"a": float("nan"), "b": 1.0}), "weight"),
        (lambda: Trainer(model, opt, losses, precision="fp16"), "precision"),
        (lambda: Trainer(model, opt, losses, progress=False).fit([], epochs=-1), "epochs"),
    ]
    for call, name in cases:
        with pytest.raises((ValueError, TypeError)) as info:
            call()
        assert name in str(info.value), str(info.value)


# --- loading ---------------------------------------------------------------------------------


def test_a_data_root_that_is_a_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data.txt"
    root.write_text("not a folder")
    with pytest.raises(ValueError, match=r"data root '.*data\.txt' is a file, not a folder"):
        load("mnist", "train", root=root)
    monkeypatch.setenv("MTLKIT_DATA", str(root))
    with pytest.raises(ValueError, match=r"\$MTLKIT_DATA '.*data\.txt' is a file"):
        load("mnist", "train")


def test_a_truncated_gzip_is_named(tmp_path: Path) -> None:
    data = gzip.compress(np.arange(4000, dtype=np.uint8).tobytes())
    path = tmp_path / "images.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=str(path)):
        read_idx(path)


def test_an_npz_without_a_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez(path, images=np.zeros(3))
    with pytest.raises(DataError, match=rf"{path}.*missing arrays \['labels'\]"):
        read_npz(path, ("images", "labels"))


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    # A folder where the file should be cannot be read by anyone (a chmod'ed file still can by root).
    path = tmp_path / "arrays.npz"
    path.mkdir()
    with pytest.raises(DataError, match=str(path)):
        read_npz(path, ("images",))
    gz = tmp_path / "images.gz"
    gz.mkdir()
    with pytest.raises(OSError, match=str(gz)):  # IsADirectoryError, naming the path
        read_idx(gz)
