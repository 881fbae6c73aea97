"""``python -m benchmarks``: device selection fails early and names the problem."""

from __future__ import annotations

import pytest
import torch

from benchmarks.__main__ import main


@pytest.mark.skipif(torch.accelerator.is_available(), reason="needs a machine without an accelerator")
def test_an_unavailable_device_is_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "cuda", "--only", "factorized"])
    assert exit_info.value.code == 2
    assert "--device 'cuda': not available here" in capsys.readouterr().err


def test_an_unknown_device_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--device", "gpu0"])
    assert "--device 'gpu0'" in capsys.readouterr().err
