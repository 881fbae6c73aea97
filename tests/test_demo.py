from mtlkit.demo import format_table, run_demo


def test_demo_runs_without_a_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    rows = run_demo(epochs=1, progress=False)
    assert [r["model"] for r in rows] == ["single-task CNNs", "hard-shared MTL"]
    for r in rows:
        assert 0.5 < r["group_acc"] <= 1.0 and 0.2 < r["item_acc"] <= 1.0
    assert "hard-shared MTL" in format_table(rows)
