"""Coursework Task 5: filters, activations and DeepDream class images of the Task-4.1 CNN.

The CNN is the one Task 4 trains: this script resumes Task 4's checkpoint of the same mode (or
trains it if Task 4 has not run), so the pictures are of exactly the network Task 4 reports.
"""

from __future__ import annotations

import dataclasses
import sys

import cw_compare
import cw_models
import torch

from mtlkit.experiments import RunContext, register_experiment
from mtlkit.gates import Gate
from mtlkit.viz import deep_dream, plot_activations, plot_filters, plot_image_grid

DIGITS = (2, 9)
# DeepDream settings: coarse-to-fine over 3 octaves, jitter ±2 px, light blur each step.
DREAM = {"quick": dict(steps=5, octaves=2), "reduced": dict(steps=60, octaves=3), "full": dict(steps=200, octaves=3)}


GATES = [Gate("DeepDream images are their digit", key="classified_as_target", above=0.5, settings="DeepDream*")]


@register_experiment(
    "coursework-task5",
    seed_file="004_63daf360e7c99336.txt",
    description="Task 5: Task-4.1 CNN filters per layer, activations for a test 2 and 9, DeepDream for 2 and 9",
    gates=GATES,
)
def run(ctx: RunContext) -> None:
    budget = cw_compare.BUDGETS[ctx.mode]
    task4 = dataclasses.replace(ctx, experiment="coursework-task4")
    net, _, curves = cw_compare.train_one(task4, cw_models.CNN_41_NAME, cw_models.task41_cnn, budget)
    results = ctx.results(
        deviations=[f"the CNN is Task 4's {ctx.mode}-mode network ({curves[-1]['test/acc']:.2%} test accuracy)"],
        seeds=[0],
    )
    net.eval()
    on = next(net.parameters()).device
    _, _, split = cw_compare.mnist_splits(ctx, budget)
    mean, std = split.test.mean[0], split.test.std[0]
    figures = []
    layers = cw_models.conv_layers(net)
    for name, layer in layers.items():
        conv = layer[0]
        fig = plot_filters(
            conv.weight,
            max_filters=64,
            title=f"{name}: {conv.out_channels} filters {tuple(conv.kernel_size)}"
            + (", mean over input channels" if conv.in_channels > 1 else ""),
        )
        figures.append(ctx.save_figure(fig, f"coursework_task5_filters_{name}"))
    test_x = split.test.batches(len(split.test), shuffle=False)
    images, targets = next(iter(test_x))
    images = images.to(on)
    for digit in DIGITS:
        index = int((targets["digit"] == digit).nonzero()[0])
        fig = plot_activations(
            net, images[index], layers, max_channels=32, title=f"Activations for test image #{index} (a {digit})"
        )
        figures.append(ctx.save_figure(fig, f"coursework_task5_activations_{digit}"))
    # The dream lives in the network's normalised input space; black and white bound it.
    value_range = ((0.0 - mean) / std, (1.0 - mean) / std)
    dreams = []
    for digit in DIGITS:
        dream = deep_dream(
            net,
            digit,
            lr=0.05,
            jitter=2,
            blur_sigma=0.5,
            octave_scale=1.6,
            value_range=value_range,
            seed=0,
            **DREAM[ctx.mode],
        )
        with torch.no_grad():
            start = net(torch.full((1, 1, 28, 28), (0.5 - mean) / std, device=on)).softmax(1)[0]
            probs = net(dream[None]).softmax(1)[0]
        predicted = int(probs.argmax())
        results.add_row(
            f"DeepDream class {digit}",
            "prob_target",
            float(probs[digit]),
            predicted=predicted,
            classified_as_target=float(predicted == digit),
            prob_target_grey_start=float(start[digit]),
        )
        dreams.append(dream[0] * std + mean)
    titles = [f"dream '{d}': p={results.get(f'DeepDream class {d}', 'prob_target')['ours']:.3f}" for d in DIGITS]
    fig = plot_image_grid(
        dreams, titles=titles, ncols=2, cell_size=2.5, suptitle="DeepDream class images (fed back to the CNN)"
    )
    figures.append(ctx.save_figure(fig, "coursework_task5_deepdream"))
    results.set("figures", figures)
    probs = {d: results.get(f"DeepDream class {d}", "prob_target") for d in DIGITS}
    results.set(
        "conclusions",
        "Fed back to the CNN, the DeepDream images are classified as "
        + ", ".join(f"{r['predicted']} (p={r['ours']:.3f} for {d})" for d, r in probs.items())
        + ".",
    )


if __name__ == "__main__":
    from mtlkit.cli import main

    sys.exit(main(["reproduce", "coursework-task5", *sys.argv[1:]]))
