import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("generate_results", ROOT / "docs" / "generate_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_results_section_is_generated_from_results_files():
    gen = _generator()
    text = (ROOT / "README.md").read_text()
    block = text.split(gen.BEGIN, 1)[1].split(gen.END, 1)[0].strip()
    assert block == gen.readme_section().strip(), "run: python docs/generate_results.py --readme"


def test_every_results_file_has_the_design_fields():
    for result in _generator().load_results():
        assert {"experiment", "seed_file", "command", "mode", "deviations", "hardware", "wall_time_s", "rows"} <= set(
            result
        ), result.get("experiment")
        assert result["mode"] in ("reduced", "full"), f"{result['experiment']}: quick results must not be committed"
        for row in result["rows"]:
            assert {"setting", "metric", "ours", "paper"} <= set(row)
