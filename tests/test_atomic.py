"""Files replaced in one rename (mtlkit._atomic): results files and checkpoints go through it."""

import stat
from pathlib import Path

import pytest
import torch

from mtlkit._atomic import replacing
from mtlkit.checkpoint import load_checkpoint, save_checkpoint


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, target)
    with pytest.raises(RuntimeError, match="interrupted"), replacing(target) as out:
        out.write(b"half a checkpoint")
        raise RuntimeError("interrupted")
    assert load_checkpoint(target) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_replaced_file_is_readable_by_others_like_a_normal_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "results.json"  # the folder is made
    with replacing(target) as out:
        out.write(b"{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 and target.read_bytes() == b"{}"
    save_checkpoint({"w": torch.ones(1)}, tmp_path / "c.pt")
    assert stat.S_IMODE((tmp_path / "c.pt").stat().st_mode) == 0o644
