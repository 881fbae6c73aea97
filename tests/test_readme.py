import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_quickstart_runs(tmp_path, monkeypatch, capsys):
    code = re.search(r"## Quickstart\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README quickstart", "exec"), {})
    assert "item/acc" in capsys.readouterr().out


def test_readme_shows_the_two_setup_commands():
    text = README.read_text()
    assert "pip install torch==2.13.0 && pip install -e . && mtlkit demo" in text
    assert 'pip install -e ".[dev,viz,docs,log]"' in text and "python -m pytest -q" in text
