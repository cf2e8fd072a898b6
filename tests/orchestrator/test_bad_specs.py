"""A corpus of malformed specs (tests/specs/bad/*.yaml, each with one defect and the
words its error must hold on its first line), run through `orchestrator sweep` as a
user would: exit code 2, one readable line naming the file and the YAML path,
nothing created, no trial run (and no Ray started).

Specs with checkpoints point at fixture folders as ``${GRAPH_PEFT_FIXTURES}/...`` (set here to
tests/fixtures; the malformed ones are made by scripts/make_bad_checkpoints.py); the same
variable in an ``# expect:`` line stands for that folder."""
from pathlib import Path

import pytest

from orchestrator.cli import main

TESTS = Path(__file__).resolve().parents[1]
CORPUS = sorted((TESTS / "specs" / "bad").glob("*.yaml"))
FIXTURES = TESTS / "fixtures"
FIXTURES_ENV = "GRAPH_PEFT_FIXTURES"


def _tree(folder: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_the_corpus_is_large():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("spec", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_spec_one_line_nothing_created(spec, tmp_path, monkeypatch, capsys):
    expect = spec.read_text().splitlines()[0].removeprefix("# expect: ").replace("${%s}" % FIXTURES_ENV, str(FIXTURES))
    if spec.stem == "gpu_on_cpu_machine":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU: use_gpu is no defect here")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # relative paths in the spec (runs/, data files) resolve here
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRAPH_PEFT_CACHE", str(cache))  # featurized data, checkpoints would go here
    monkeypatch.setenv(FIXTURES_ENV, str(FIXTURES))
    monkeypatch.delenv("GRAPH_PEFT_NO_SUCH_VARIABLE", raising=False)  # checkpoint_env_var_unset's
    fixtures = _tree(FIXTURES)
    assert main(["sweep", str(spec), "--num-cpus", "2"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err, err  # one line
    assert err.startswith(f"error: {spec}") and expect in err, err
    assert "Traceback" not in err and "hunter2" not in err
    assert list(work.iterdir()) == []  # no run folder, nothing
    assert not cache.exists() or not any(cache.rglob("*"))  # no featurized data, no checkpoint
    assert captured.out == ""  # no progress line: no work started
    assert _tree(FIXTURES) == fixtures  # checkpoint folders only read
    import sys

    if "ray" in sys.modules:
        import ray

        assert not ray.is_initialized()


@pytest.mark.parametrize("folder", ["hf_graphormer/prenorm_multihop", "hf_graphormer/postnorm_multihop_bin",
                                    "hf_graphormer/prenorm_multihop_model", "hf_graphormer_bad/valid"])
def test_a_good_checkpoint_spec_passes_validation(folder, tmp_path, monkeypatch):
    """The malformed folders' source (hf_graphormer_bad/valid) and the HF fixtures load: every
    bad case above fails for its one defect. The path is expanded from the environment."""
    import json

    from orchestrator.spec import load_spec

    monkeypatch.setenv(FIXTURES_ENV, str(FIXTURES))
    monkeypatch.chdir(tmp_path)
    spec_file = tmp_path / "good.yaml"
    spec_file.write_text(f"""name: ok
datasets: [{{name: freesolv, max_molecules: 100}}]
backbones: [{{name: graphormer, checkpoint: {{format: hf_graphormer, path: "${{{FIXTURES_ENV}}}/{folder}"}}}}]
methods: {{lora: {{search: {{r: {{type: categorical, choices: [2, 4]}}}}}}}}
budget: {{trials_per_cell: 1}}
""")
    spec = load_spec(spec_file)
    b = spec.backbones[0]
    assert b.checkpoint.path == str(FIXTURES / folder) and b.pretrain is None
    assert b.checkpoint_problem() is None
    assert b.arch().hidden_dim == json.loads((FIXTURES / folder / "config.json").read_text())["embedding_dim"]
    assert list(tmp_path.iterdir()) == [spec_file]


GOOD = """name: ok
datasets: [{name: freesolv, max_molecules: 100}]
backbones: [{name: graphormer, params: {hidden_dim: 32, num_layers: 2, num_heads: 4, ffn_dim: 64}, pretrain: null}]
methods: {lora: {search: {r: {type: categorical, choices: [2, 4]}}}}
budget: {trials_per_cell: 1}
"""


@pytest.mark.parametrize("extra", [
    ["budget.trials_per_cell=0"],  # the spec's own check fails, with the override echoed in its source
    ["storage.optuna_url.nested=1"],  # the override's path fails
    ["budget.seeds=[1"],  # the override's value is not YAML
    ["storage.optuna_url:postgresql://me:hunter2@127.0.0.1:1/db=x"],  # a mistyped '=': the URL in the key
])
def test_a_password_given_by_override_is_never_echoed(extra, tmp_path, monkeypatch, capsys):
    spec = tmp_path / "ok.yaml"
    spec.write_text(GOOD)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    url = "postgresql://me:hunter2@127.0.0.1:1/db"
    assert main(["sweep", str(spec), "--num-cpus", "2", "--override", f"storage.optuna_url={url}", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: {spec}"), err
    assert "hunter2" not in err, err
    if extra == ["budget.trials_per_cell=0"]:  # the message names every override, masked
        assert "me:***@127.0.0.1" in err, err
    assert list(work.iterdir()) == []


def test_status_reads_a_masked_url_with_the_password_from_the_environment(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from orchestrator.spec import mask_url
    from orchestrator.storage import STORAGE_ENV, storage_url
    from runfolder.layout import RunDir

    full = "postgresql://me:hunter2@127.0.0.1:5432/db"
    run = RunDir(tmp_path / "run")
    as_read_back = SimpleNamespace(storage=SimpleNamespace(optuna_url=mask_url(full)))
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert storage_url(as_read_back, run) == "postgresql://me:***@127.0.0.1:5432/db"  # no password known
    monkeypatch.setenv(STORAGE_ENV, full)
    assert storage_url(as_read_back, run) == full
    monkeypatch.setenv(STORAGE_ENV, "postgresql://other:pw@127.0.0.1:5432/db")  # another user: not taken
    assert storage_url(as_read_back, run) == "postgresql://me:***@127.0.0.1:5432/db"


def test_sampler_seeds_fit_numpy_for_every_allowed_seed():
    from orchestrator.spec import parse_spec
    from orchestrator.sweep import make_sampler
    import yaml

    data = yaml.safe_load(GOOD)
    data["seed"] = 2**31 - 1
    spec = parse_spec(data)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    first = []
    for _ in range(2):  # numpy refuses seeds of 2**32 and above; the same seed proposes the same
        study = optuna.create_study(sampler=make_sampler(spec, cell_index=500, n_existing=10_000))
        first.append(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}).params["x"])
    assert first[0] == first[1]


def test_nested_aliases_are_refused_at_once(tmp_path, monkeypatch, capsys):
    """Nine levels of nested YAML aliases would expand to 9**9 nodes: the loader refuses
    the first anchor while composing, before anything is built, walked or hashed."""
    import time

    bomb = Path(__file__).resolve().parents[1] / "specs" / "bad" / "alias_nested_nine_levels.yaml"
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(CORPUS[0]), "--num-cpus", "2"]) == 2  # imports done, not timed
    capsys.readouterr()
    start = time.perf_counter()
    assert main(["sweep", str(bomb), "--num-cpus", "2"]) == 2
    assert time.perf_counter() - start < 1.0
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {bomb}: YAML anchors and aliases are not allowed in a sweep spec "
                   "(an anchor '&a' at line 8, column 10)"), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value, where", [
    ("[&a 1, *a]", "an anchor '&a' at line 1, column 2"),
    ("*a", "an alias '*a' at line 1, column 1"),
    ("{<<: *base, x: 1}", "an alias '*base' at line 1, column 6"),
])
def test_an_alias_in_an_override_is_refused(value, where, tmp_path, monkeypatch, capsys):
    spec = tmp_path / "ok.yaml"
    spec.write_text(GOOD)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["sweep", str(spec), "--override", f"budget.seeds={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {spec}: --override budget.seeds: YAML anchors and aliases are not allowed in a "
                   f"sweep spec ({where})"), err
    assert list(work.iterdir()) == []


PAPER = Path(__file__).resolve().parents[2] / "sweeps" / "paper.yaml"


@pytest.mark.parametrize("value", [None, ""])
def test_paper_spec_without_the_weights_says_so_in_one_line(value, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if value is None:
        monkeypatch.delenv("GRAPHORMER_BASE", raising=False)
    else:
        monkeypatch.setenv("GRAPHORMER_BASE", value)
    assert main(["sweep", str(PAPER)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "GRAPHORMER_BASE is not set" in err, err
    assert list(tmp_path.iterdir()) == []


def test_paper_spec_is_valid_with_a_checkpoint(monkeypatch):
    from orchestrator.spec import load_spec

    folder = Path(__file__).resolve().parents[1] / "fixtures" / "hf_graphormer" / "prenorm_multihop"
    monkeypatch.setenv("GRAPHORMER_BASE", str(folder))
    spec = load_spec(PAPER)
    (b,) = spec.backbones
    assert b.checkpoint.path == str(folder) and b.pretrain is None and b.arch().hidden_dim == 32
    assert len(spec.datasets) == 9 and {"g_adapter_proximal", "lora", "adapter", "full"} <= set(spec.methods)
    over = load_spec(PAPER, [f"backbones.graphormer.checkpoint.path={folder}"])
    assert over.backbones[0].checkpoint.path == str(folder)
