import os

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def data_root() -> str:
    root = os.environ.get("MTLKIT_DATA")
    if not root:
        pytest.skip("MTLKIT_DATA is not set")
    return root
