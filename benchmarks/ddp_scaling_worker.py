"""Times ``Trainer.fit`` on a fixed global batch; run alone or under torchrun (one thread per process)."""

import json
import sys
import time

import torch
from torch.nn import functional as F

from benchmarks.bench_gflops import coursework_cnn
from mtlkit import SingleTaskModels, Trainer

if __name__ == "__main__":
    torch.set_num_threads(1)
    n_batches, batch = int(sys.argv[1]), int(sys.argv[2])
    g = torch.Generator().manual_seed(0)
    data = [
        (torch.randn(batch, 1, 28, 28, generator=g), {"item": torch.randint(0, 10, (batch,), generator=g)})
        for _ in range(n_batches)
    ]
    torch.manual_seed(0)
    model = SingleTaskModels({"item": coursework_cnn()})
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), 1e-3), {"item": F.cross_entropy}, progress=False)
    trainer.fit(data[:1], epochs=1)  # warm-up (and DDP's first bucket rebuild)
    start = time.perf_counter()
    trainer.fit(data, epochs=2)
    if trainer.is_main_process:
        print(json.dumps({"seconds": time.perf_counter() - start, "world": trainer.world_size}))
