import json
from pathlib import Path

from helpers import docs_generator

ROOT = Path(__file__).resolve().parents[1]


def test_readme_results_section_is_generated_from_results_files():
    gen = docs_generator()
    text = (ROOT / "README.md").read_text()
    block = text.split(gen.BEGIN, 1)[1].split(gen.END, 1)[0].strip()
    assert block == gen.readme_section().strip(), "run: python docs/generate_results.py --readme"


def test_an_accelerator_benchmark_file_gets_its_own_page_and_is_not_an_experiment(tmp_path, monkeypatch):
    gen = docs_generator()
    results, pages = tmp_path / "results", tmp_path / "pages"
    results.mkdir()
    (results / "benchmarks.json").write_text((ROOT / "results" / "benchmarks.json").read_text())
    entry = {
        "module": "bench_factorized",
        "name": "fc1/laf batched_vs_loop",
        "ratio": 0.25,
        "baseline_s": 0.004,
        "ours_s": 0.001,
        "target": "<= 0.33 (3x faster)",
    }
    machine = {"hardware": "test host", "device": "Example GPU", "torch_threads": 1}
    (results / "benchmarks-cuda.json").write_text(json.dumps({"quick": False, "machine": machine, "entries": [entry]}))
    monkeypatch.setattr(gen, "RESULTS", results)
    monkeypatch.setattr(gen, "PAGES", pages)
    assert gen.load_results() == []
    assert gen.write_pages() == ["benchmarks", "benchmarks-cuda"]
    page = (pages / "benchmarks-cuda.rst").read_text()
    assert page.startswith("Benchmarks on cuda (Example GPU)\n")
    assert "python -m benchmarks --device cuda" in page and "fc1/laf batched_vs_loop" in page


def test_a_results_page_names_the_commits_that_computed_its_kept_records():
    gen = docs_generator()
    result = {
        "experiment": "demo", "seed_file": "004_x.txt", "mode": "reduced", "command": "c", "deviations": [],
        "checks": [], "rows": [], "mtlkit_commit": "ccc3333",
        "per_run": {"a": {"cpu_s": 1, "mtlkit_commit": "bbb2222"}, "b": {"cpu_s": 1, "mtlkit_commit": "aaa1111"}},
    }  # fmt: skip
    page = gen.results_page(result)
    assert "*Per-run records computed by commit(s):* ``aaa1111``, ``bbb2222``" in page
    assert "Per-run records" not in gen.results_page({**result, "per_run": {}})
