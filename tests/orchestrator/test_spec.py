import re
from pathlib import Path

import pytest
import yaml

from orchestrator.spec import SpecError, load_spec, parse_spec
from orchestrator.resolve import trial_config

ROOT = Path(__file__).resolve().parents[2]


def quick() -> dict:
    return yaml.safe_load((ROOT / "sweeps" / "quick.yaml").read_text())


def errors_of(data) -> str:
    with pytest.raises(SpecError) as e:
        parse_spec(data, "s.yaml")
    return str(e.value)


def test_quick_spec_loads_with_all_cells():
    spec = load_spec(ROOT / "sweeps" / "quick.yaml")
    assert {d.name for d in spec.datasets} == {"b3db", "freesolv", "wordnet"}
    assert set(spec.methods) == {"full", "linear_probe", "lora", "adapter", "gnn", "engine", "lm_lora",
                                 "constant", "text_mlp"}
    # molecules x graphormer x 4 graph methods, wordnet x lm x 3 node methods; the references: the
    # constant predictor on every dataset, the no-graph MLP on wordnet
    cells = spec.cells()
    assert len(cells) == 15 and len({c.id for c in cells}) == 15
    refs = [c for c in cells if spec.methods[c.method].is_reference(c.method)]
    assert sorted((c.dataset, c.method) for c in refs) == [("b3db", "constant"), ("freesolv", "constant"),
                                                           ("wordnet", "constant"), ("wordnet", "text_mlp")]
    # one trial per reference (nothing searched), the budget for every searched variant: 44 + 4
    assert sum(spec.budget_of(c) for c in cells) == 11 * 4 + 4
    assert all(spec.budget_of(c) == 1 for c in refs)
    # a reference is never ranked at a rung nor held to a limit
    for c in refs:
        tc = trial_config(spec, c, {}, "t")
        assert tc.rungs == [] and tc.limits == {}
    assert trial_config(spec, next(c for c in cells if c.method == "lora"), {"r": 2, "lr": 0.001}, "t").rungs == [1, 3]
    # a searched reference (random_init) is stopped as any variant within its own cell (scope cell), so it
    # spends the same budget; with scope dataset it is kept out of the ranking
    d = yaml.safe_load((ROOT / "sweeps" / "quick.yaml").read_text())
    d["methods"]["full_rnd"] = {"method": "full", "random_init": True, "search": d["methods"]["full"]["search"]}
    for scope, rungs in (("cell", [1, 3]), ("dataset", [])):
        d["budget"]["stopping"]["scope"] = scope
        sp = parse_spec(d)
        cell = next(c for c in sp.cells() if c.method == "full_rnd")
        assert sp.methods["full_rnd"].is_reference("full_rnd") and sp.budget_of(cell) == 4
        assert trial_config(sp, cell, {"lr": 0.001}, "t").rungs == rungs
    # early stopping chosen from docs/benchmarks/search.md: rungs at epochs 1 and 3 of 5, every variant of a dataset
    st = spec.budget.stopping
    assert (st.type, st.min_epochs, st.reduction_factor, st.scope) == ("mo_asha", 1, 3, "dataset")


def test_full_spec_loads():
    spec = load_spec(ROOT / "sweeps" / "full.yaml")
    assert len(spec.cells()) >= 8 and spec.budget.seeds == 3
    assert spec.budget.stopping.type == "none"  # the comparison keeps every trial's front (docs/benchmarks/search.md)
    # the paper's G-Adapter and the adapter alone, as separate studies
    assert spec.methods["g_adapter_proximal"].method_name("g_adapter_proximal") == "g_adapter"
    assert "proximal" in spec.methods["g_adapter_proximal"].plugins and not spec.methods["g_adapter"].plugins
    assert 0.0 in spec.methods["g_adapter_proximal"].search["proximal.weight"].choices


def test_full_spec_is_the_whole_grid():
    """sweeps/full.yaml: every registered graph method on both graph backbones and the nine
    molecular sets, with and without GIST; G-Adapter with and without the proximal term;
    every node method on the text graph."""
    from workloads.backbones import BACKBONES
    from workloads.peft import method_names

    spec = load_spec(ROOT / "sweeps" / "full.yaml")
    cells = spec.cells()
    graph_methods = set(method_names("graph_transformer"))
    node_methods = set(method_names("language_model"))
    assert {e.method_name(k) for k, e in spec.methods.items() if e.is_reference(k)} == \
        set(method_names(references=True)) | {"full"}  # every reference baseline, and full from random weights
    graph_backbones = {b for b in BACKBONES.names() if BACKBONES.get(b).kind == "graph_transformer"}
    assert graph_backbones == {"graphormer", "mat"} and {b.name for b in spec.backbones} >= graph_backbones
    molecular = [d.name for d in spec.datasets if d.name != "wordnet"]
    assert len(molecular) == 9

    def variants(method, plugins):
        return {k for k, e in spec.methods.items() if e.method_name(k) == method and set(e.plugins) == plugins}

    for m in graph_methods:
        assert variants(m, set()), m
        assert variants(m, {"gist"}) or variants(m, {"gist", "proximal"}), f"{m} has no GIST variant"
    assert variants("g_adapter", {"proximal"}) and variants("g_adapter", set())
    for d in molecular:
        for b in graph_backbones:
            have = {c.method for c in cells if c.dataset == d and c.backbone == b}
            graph_variants = {k for k, e in spec.methods.items() if e.method_name(k) in graph_methods}
            assert have - {"constant", "ecfp_rf"} == graph_variants, (d, b, graph_variants - have)
            assert {"constant", "ecfp_rf", "full_random_init"} <= have
    node_cells = {spec.methods[c.method].method_name(c.method) for c in cells if c.dataset == "wordnet"}
    assert node_cells == node_methods | {"constant", "text_mlp"}


def test_variants_route_searched_values_to_method_plugins_and_training(tmp_path):
    from orchestrator.sweep import trial_config

    d = quick()
    d["budget"]["seeds"] = 2
    d["methods"]["lora_gist"] = {
        "method": "lora", "params": {"alpha": 8}, "plugins": {"gist": {"temperature": 2.0}, "proximal": {}},
        "search": {"r": {"type": "categorical", "choices": [2]}, "gist.kl_weight": {"type": "float", "low": 0.1, "high": 1},
                   "proximal.weight": {"type": "categorical", "choices": [0.0, 0.1]}, "lr": {"type": "float", "low": 1e-4, "high": 1e-2}},
    }
    spec = parse_spec(d)
    cell = next(c for c in spec.cells() if c.method == "lora_gist")
    assert cell.id.endswith("__lora_gist")
    c = trial_config(spec, cell, {"r": 2, "gist.kl_weight": 0.3, "proximal.weight": 0.0, "lr": 0.002}, "t")
    assert c.method.name == "lora" and c.method.label == "lora_gist"
    assert c.method.params == {"alpha": 8, "r": 2}
    assert c.method.plugins == {"gist": {"temperature": 2.0, "kl_weight": 0.3}, "proximal": {"weight": 0.0}}
    assert list(c.method.plugins) == ["gist", "proximal"]  # applied in the spec's order
    assert c.train.lr == 0.002 and c.seeds == 2 and c.seed == spec.seed
    other = trial_config(spec, cell, {"r": 2, "gist.kl_weight": 0.9, "proximal.weight": 0.1, "lr": 0.001}, "u")
    assert other.seed == c.seed  # every configuration trains on the same seeds


def test_hash_is_stable_and_sensitive():
    a, b = parse_spec(quick()), parse_spec(quick())
    assert a.content_hash() == b.content_hash()
    d = quick()
    d["train"]["epochs"] = 99
    assert parse_spec(d).content_hash() != a.content_hash()
    d = quick()
    d["budget"]["trials_per_cell"] = 99
    c = parse_spec(d)
    assert c.content_hash() != a.content_hash()
    assert c.content_hash(exclude_budget=True) == a.content_hash(exclude_budget=True)
    d["budget"]["seeds"] = 5  # more seeds change what a trial's score means: not a resumable change
    assert parse_spec(d).content_hash(exclude_budget=True) != a.content_hash(exclude_budget=True)


def test_defaults_are_resolved():
    d = quick()
    del d["train"]
    spec = parse_spec(d)
    assert spec.resolved()["train"]["lr"] == 1e-3


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["budget"].update(trails=3), "budget.trails: unknown key"),
        (lambda d: d["datasets"][1].update(nme="x"), "datasets[1].nme: unknown key"),
        (lambda d: d["methods"]["lora"]["search"]["lr"].update(low=-1), "methods.lora.search.lr: a log-scaled range needs low > 0"),
        (lambda d: d["methods"]["lora"]["search"].update(r={"type": "int", "low": 8, "high": 2}), "methods.lora.search.r: low (8) must be below high (2)"),
        (lambda d: d["methods"]["lora"]["search"].update(r={"type": "gaussian"}), "methods.lora.search.r"),
        (lambda d: d.pop("datasets"), "datasets: required key is missing"),
        (lambda d: d["backbones"][0]["params"].update(width=3), "backbones[0].params.width: unknown key"),
        (lambda d: d["backbones"][0]["params"].update(hidden_dim=-3), "backbones[0].params.hidden_dim"),
        (lambda d: d["methods"].update(bogus={}), "methods.bogus: unknown PEFT method 'bogus'; known: adapter, bitfit, constant, ecfp_rf, engine, full, g_adapter, gnn, gpf, gpf_plus, linear_probe, lm_full, lm_lora, lora, prompt_tokens, text_mlp"),
        (lambda d: d["datasets"].append({"name": "nope"}), "datasets[3].name: unknown dataset 'nope'"),
        (lambda d: d["methods"]["lora"]["search"].update(rank={"type": "int", "low": 1, "high": 4}), "methods.lora.search.rank: not a parameter of the method or of training"),
        (lambda d: d["methods"].update(ga={"method": "g_adaptr"}), "methods.ga.method: unknown PEFT method 'g_adaptr'"),
        (lambda d: d["methods"]["lora"].update(plugins={"gits": {}}),
         "methods.lora.plugins.gits: unknown training plug-in; known: gist, proximal"),
        (lambda d: d["methods"]["lora"].update(plugins={"proximal": {"weight": -1}}),
         "methods.lora.plugins.proximal.weight: Input should be greater than or equal to 0"),
        (lambda d: d["methods"]["lora"].update(plugins={"proximal": {"mu": 1}}), "methods.lora.plugins.proximal.mu: unknown key"),
        (lambda d: d["methods"]["lora"]["search"].update({"gist.kl_weight": {"type": "float", "low": 0, "high": 1}}),
         "methods.lora.search.gist.kl_weight: plug-in 'gist' is not in this entry's plugins"),
        (lambda d: (d["methods"]["lora"].update(plugins={"gist": {}}),
                    d["methods"]["lora"]["search"].update({"gist.lam": {"type": "float", "low": 0, "high": 1}})),
         "methods.lora.search.gist.lam: not a parameter of plug-in 'gist'"),
        (lambda d: (d["methods"]["lora"].update(plugins={"proximal": {}}),
                    d["methods"]["lora"]["search"].update({"proximal.momentum": {"type": "categorical", "choices": [0.9, 1.0]}})),
         "methods.lora.search.proximal.momentum: value 1.0 is invalid: Input should be less than 1"),
        (lambda d: d["budget"].update(seeds=0), "budget.seeds: Input should be greater than or equal to 1"),
        (lambda d: d["budget"].update(trials_per_cell=10**12), "budget.trials_per_cell: Input should be less than or equal to 100000"),
        (lambda d: d["methods"]["lora"]["search"]["lr"].update(high=float("inf")), "methods.lora.search.lr.high: inf is not a finite number"),
        (lambda d: d["train"].update(lr=float("nan")), "train.lr: nan is not a finite number"),
        (lambda d: d["backbones"][0]["params"].update(hidden_dim=65), "backbones[0].params: hidden_dim 65 is not divisible by num_heads 4"),
        (lambda d: d["resources"].update(trial_timeout_s=0), "resources.trial_timeout_s: Input should be greater than 0"),
        (lambda d: d["resources"].update(trial_timeout_s=float("inf")), "resources.trial_timeout_s"),
        (lambda d: d["methods"]["lora"]["params"].update(r=4), "methods.lora.search.r: also fixed in methods.lora.params"),
        (lambda d: d["methods"]["adapter"].update(params={"scale": 0}), "methods.adapter.params.scale"),
        (lambda d: d.update(objectives=["score", "speed"]), "objectives[1]"),
        (lambda d: d.update(name="a b/c"), "name:"),
        (lambda d: d["datasets"][0].update(split_fractions=[0.9, 0.1, 0.0]),
         "datasets[0].split_fractions: fractions must be positive and sum to 1"),
        (lambda d: d["methods"]["lora"]["search"].update(r={"type": "categorical", "choices": [8, 0]}),
         "methods.lora.search.r: value 0 is invalid: Input should be greater than or equal to 1"),
        (lambda d: d["methods"]["full"]["search"].update(weight_decay={"type": "float", "low": -0.1, "high": 0.1}),
         "methods.full.search.weight_decay: value -0.1 is invalid"),
        (lambda d: d["methods"]["lora"]["search"].update(r={"type": "int", "low": 2, "high": 8, "step": 0}),
         "methods.lora.search.r.step: Input should be greater than 0"),
    ],
)
def test_bad_specs_name_the_path(mutate, expected):
    d = quick()
    mutate(d)
    msg = errors_of(d)
    assert msg.startswith("s.yaml: invalid sweep spec")
    assert expected in msg


def test_file_errors(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("- a list\n")
    with pytest.raises(SpecError, match="mapping at the top level"):
        load_spec(bad)


def test_repeated_key_in_a_mapping_is_an_error(tmp_path):
    f = tmp_path / "dup.yaml"
    text = (ROOT / "sweeps" / "quick.yaml").read_text()
    line = text.splitlines().index("name: quick") + 1
    f.write_text(text + "name: other\n")
    with pytest.raises(SpecError, match=rf"key 'name' appears twice in one mapping \(first at line {line}\)"):
        load_spec(f)
    f.write_text("name: x\ndatasets: [{name: freesolv, name: b3db}]\nbackbones: [{name: graphormer}]\nmethods: {lora: {}}\n")
    with pytest.raises(SpecError, match="key 'name' appears twice"):
        load_spec(f)


def test_non_finite_numbers_in_yaml_are_refused_before_any_work(tmp_path):
    f = tmp_path / "inf.yaml"
    f.write_text((ROOT / "sweeps" / "quick.yaml").read_text().replace("high: 0.003", "high: .inf"))
    with pytest.raises(SpecError, match=r"methods.full.search.lr.high: inf is not a finite number"):
        load_spec(f)


def test_storage_password_is_masked_in_the_resolved_spec_and_errors(tmp_path):
    from orchestrator.spec import dump_resolved
    from orchestrator.sweep import Sweep

    d = quick()
    d["storage"] = {"root": str(tmp_path / "runs"), "optuna_url": "postgresql://me:s3cret@127.0.0.1:1/db"}
    spec = parse_spec(d)
    text = dump_resolved(spec)
    assert "s3cret" not in text and "postgresql://me:***@127.0.0.1:1/db" in text
    with pytest.raises(SpecError) as e:
        Sweep(spec).open_studies()
    assert "s3cret" not in str(e.value) and "***" in str(e.value)


def test_resource_shortfall_is_reported_before_anything_is_written(tmp_path):
    from orchestrator.sweep import Sweep

    d = quick()
    d["storage"] = {"root": str(tmp_path / "runs")}
    d["resources"] = {"num_workers": 64, "cpus_per_worker": 2}
    with pytest.raises(SpecError, match="a trial needs 128 CPUs"):
        Sweep(parse_spec(d)).execute(num_cpus=2)
    assert not (tmp_path / "runs").exists()


def test_storage_url_from_the_environment(tmp_path, monkeypatch):
    import optuna

    from orchestrator.sweep import Sweep

    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("GRAPH_PEFT_OPTUNA_URL", url)
    d = quick()
    d["storage"] = {"root": str(tmp_path / "runs")}
    sweep = Sweep(parse_spec(d))
    assert sweep.storage_url == url
    sweep.open_studies()
    assert len(optuna.get_all_study_summaries(url)) == len(sweep.cells)
    d["storage"]["optuna_url"] = f"sqlite:///{tmp_path / 'spec.db'}"  # the spec's URL wins
    assert Sweep(parse_spec(d)).storage_url.endswith("spec.db")
    monkeypatch.setenv("GRAPH_PEFT_OPTUNA_URL", "postgresql://me:s3cret@127.0.0.1:1/db")
    d["storage"] = {"root": str(tmp_path / "runs2")}
    with pytest.raises(SpecError) as e:
        Sweep(parse_spec(d)).open_studies()
    assert "s3cret" not in str(e.value)


def test_overrides_set_nested_keys_lists_by_name_and_new_fields(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\ndatasets: [{name: freesolv}, {name: b3db}]\n"
                 "backbones: [{name: graphormer, params: {hidden_dim: 64}}]\n"
                 "methods: {lora: {search: {r: {type: categorical, choices: [2, 4]}}}}\n"
                 "budget: {trials_per_cell: 50}\ntrain: {epochs: 30}\n")
    spec = load_spec(f, ["budget.trials_per_cell=2", "train.epochs=1", "backbones.graphormer.params.hidden_dim=32",
                         "datasets.1.max_molecules=300", "datasets.freesolv.max_molecules=100",
                         "methods.lora.search.r.choices=[8]", "name=x-smoke"])
    assert spec.name == "x-smoke" and spec.budget.trials_per_cell == 2 and spec.train.epochs == 1
    assert spec.backbones[0].params["hidden_dim"] == 32
    assert [d.max_molecules for d in spec.datasets] == [100, 300]
    assert spec.methods["lora"].search["r"].choices == [8]
    assert "trials_per_cell: 50" in f.read_text()  # the file is left as it was


@pytest.mark.parametrize("item, message", [
    ("budget.trials_per_cell", "expects KEY.PATH=VALUE"),
    ("=3", "expects KEY.PATH=VALUE"),
    ("train.epochs=[", "cannot read value"),
    ("datasets.tox21.max_molecules=5", "datasets has no item 'tox21' (items: freesolv)"),
    ("name.first=y", "name is a value, not a mapping or list"),
    ("budget.trials_per_cel=3", "budget.trials_per_cel: unknown key"),
    ("budget.trials_per_cell=.inf", "not a finite number"),
    ("train.epochs={a: 1, a: 2}", "cannot read value"),
])
def test_bad_overrides_are_refused_naming_the_override(tmp_path, item, message):
    f = tmp_path / "s.yaml"
    f.write_text("name: x\ndatasets: [{name: freesolv}]\nbackbones: [{name: graphormer}]\nmethods: {lora: {}}\n")
    with pytest.raises(SpecError, match=re.escape(message)) as e:
        load_spec(f, [item])
    assert str(f) in str(e.value)


def test_one_rule_routes_searched_keys():
    from orchestrator.spec import Route, RouteError, routable, route

    assert route("r", "lora", ["gist"]) == Route("method", "r")
    assert route("lr", "lora", []) == Route("train", "lr")
    assert route("gist.kl_weight", "lora", ["gist"]) == Route("plugin", "kl_weight", "gist")
    with pytest.raises(RouteError, match=r"^gist.kl_weight: plug-in 'gist' is not in this entry's plugins \(none\)"):
        route("gist.kl_weight", "lora", [])
    with pytest.raises(RouteError, match="rank: not a parameter of the method or of training"):
        route("rank", "lora", [])
    assert {"r", "lr", "gist.kl_weight"} <= set(routable("lora", ["gist"])) and "rank" not in routable("lora", [])
    # ENGINE's exit patience and training's patience: a bare key is refused, each side can be named
    with pytest.raises(RouteError, match=r"^patience: ambiguous .*: write method.patience or train.patience$"):
        route("patience", "engine", [])
    assert route("method.patience", "engine", []) == Route("method", "patience")
    assert route("train.patience", "engine", []) == Route("train", "patience")
    assert route("train.patience", "lora", []) == route("patience", "lora", []) == Route("train", "patience")
    with pytest.raises(RouteError, match=r"^method.lr: not a parameter of the method; known: .*\balpha\b"):
        route("method.lr", "lora", [])
    keys = set(routable("engine", []))
    assert {"method.patience", "train.patience", "threshold", "lr"} <= keys and "patience" not in keys
    entry = parse_spec(quick()).methods["lora"]
    method, train = entry.resolve("lora", {"r": 4, "lr": 0.002})
    assert method.name == "lora" and method.params["r"] == 4 and train == {"lr": 0.002}


def test_a_backbone_entry_is_the_workloads_backbone_config():
    from workloads.config import BackboneConfig

    spec = parse_spec(quick())
    assert all(type(b) is BackboneConfig for b in spec.backbones)


def test_run_set_refuses_aliases_and_unknown_keys(tmp_path):
    from orchestrator.cli import main

    f = tmp_path / "s.yaml"
    f.write_text("name: x\ndatasets: [{name: freesolv}]\nbackbones: [{name: graphormer}]\nmethods: {lora: {}}\n")
    with pytest.raises(SystemExit, match=r"--set r: YAML anchors and aliases are not allowed .*'&a' at line 1"):
        main(["run", str(f), "--set", "r=[&a 1, *a]"])
    with pytest.raises(SystemExit, match=r"--set gist.kl_weight, rank: unknown; known: .*\balpha\b"):
        main(["run", str(f), "--set", "rank=4", "gist.kl_weight=1"])
