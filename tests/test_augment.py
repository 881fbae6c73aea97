"""CropFlipBatches / crop_flip: the one-gather crop + flip against a per-image loop, and bitwise resume."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlkit import LinearHead, MultiTaskModel, Trainer
from mtlkit.data import CropFlipBatches, InMemoryBatches, crop_flip
from mtlkit.nn import MLP


def _loop_crop_flip(images, offsets, flips, padding):
    out = []
    for x, (dy, dx), f in zip(images, offsets.tolist(), flips.tolist(), strict=True):
        padded = torch.zeros(x.shape[0], x.shape[1] + 2 * padding, x.shape[2] + 2 * padding, dtype=x.dtype)
        padded[:, padding : padding + x.shape[1], padding : padding + x.shape[2]] = x
        crop = padded[:, dy : dy + x.shape[1], dx : dx + x.shape[2]]
        out.append(crop.flip(-1) if f else crop)
    return torch.stack(out)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5),
    c=st.integers(1, 3),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    padding=st.integers(0, 4),
    seed=st.integers(0, 2**16),
)
def test_crop_flip_matches_a_per_image_loop(n, c, h, w, padding, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=g)
    flips = torch.rand(n, generator=g) < 0.5
    assert crop_flip(images, offsets, flips, padding).equal(_loop_crop_flip(images, offsets, flips, padding))


def test_crop_flip_rejects_bad_arguments():
    x = torch.zeros(2, 1, 4, 4)
    for args, word in [
        ((x[0], torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, dtype=torch.bool), 1), "images"),
        ((x, torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, dtype=torch.bool), -1), "padding"),
        ((x, torch.full((2, 2), 3), torch.zeros(2, dtype=torch.bool), 1), "offsets"),
        ((x, torch.zeros(1, 2, dtype=torch.long), torch.zeros(2, dtype=torch.bool), 1), "offsets"),
    ]:
        try:
            crop_flip(*args)
        except ValueError as error:
            assert word in str(error)
        else:
            raise AssertionError(args)
    try:
        CropFlipBatches(x, {"y": torch.zeros(2, dtype=torch.long)}, 2, padding=-2)
    except ValueError as error:
        assert "padding=" not in str(error) and "-2" in str(error)
    else:
        raise AssertionError


def test_epochs_are_augmented_copies_of_the_plain_batches():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (10, 3, 6, 6), dtype=torch.uint8)
    targets = {"y": torch.arange(10)}
    plain = InMemoryBatches(images, targets, 4, seed=3)
    aug = CropFlipBatches(images, targets, 4, seed=3, padding=2)
    first = list(aug)
    # Same permutation as the plain batches (drawn first from the same generator).
    assert [y["y"].tolist() for _, y in first] == [y["y"].tolist() for _, y in plain]
    # Every augmented image is one of the 25 x 2 crops/flips of its source image.
    for x, y in first:
        for xi, yi in zip(x, y["y"].tolist(), strict=True):
            src = images[yi : yi + 1].expand(50, -1, -1, -1)
            offs = torch.tensor([[a, b] for a in range(5) for b in range(5)] * 2)
            flips = torch.tensor([False] * 25 + [True] * 25)
            candidates = aug.transform(crop_flip(src, offs, flips, 2))
            assert any(torch.equal(xi, cand) for cand in candidates)
    second = list(aug)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, second, strict=True))
    no_flip = CropFlipBatches(images, targets, 10, shuffle=False, padding=0, flip=False)
    assert torch.equal(next(iter(no_flip))[0], next(iter(InMemoryBatches(images, targets, 10, shuffle=False)))[0])


def test_trainer_resumes_an_augmented_run_bitwise(tmp_path):
    images = torch.randint(0, 256, (40, 1, 5, 5), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    targets = {"y": torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(2))}

    def trainer(folder):
        torch.manual_seed(0)
        model = MultiTaskModel(torch.nn.Sequential(torch.nn.Flatten(), MLP(25, [8])), {"y": LinearHead(8, 3)})
        return Trainer(
            model,
            torch.optim.SGD(model.parameters(), 0.1),
            {"y": torch.nn.functional.cross_entropy},
            checkpoint_dir=folder,
            seed=0,
            progress=False,
        )

    straight = trainer(tmp_path / "a")
    straight.fit(CropFlipBatches(images, targets, 8, seed=5, padding=1), epochs=4)
    interrupted = trainer(tmp_path / "b")
    interrupted.fit(CropFlipBatches(images, targets, 8, seed=5, padding=1), epochs=2)
    resumed = trainer(tmp_path / "b")
    resumed.fit(CropFlipBatches(images, targets, 8, seed=5, padding=1), epochs=4)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)
