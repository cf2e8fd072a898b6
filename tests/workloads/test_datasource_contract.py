"""The data-source contract: every registered source keeps it; an entry validates into
its source's own config model, chosen by its kind or its name; and a new kind is one
module (here: this one) plus one registry row, trained on like any dataset."""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import pytest
from pydantic import Field, ValidationError

from tests.conftest import TINY_ARCH, TINY_PRETRAIN
from workloads.datasets import (
    SOURCES, BaseDatasetConfig, DataSource, DatasetConfig, MoleculeDataSource, TextGraphDataSource,
    dataset_config, dataset_problems, family_of, register_source, source_of,
)
from workloads.tasks import TASKS

# ---- a new kind, all of it: its config model, its source, one registry row (the fixture) ----

# 60 small molecules with one label each: the number of heavy atoms (a learnable regression)
SMILES = tuple(
    [("C" * n) + tail for n in range(1, 11) for tail in ("", "O", "N")]
    + [f"c1ccccc1{'C' * n}" for n in range(10)] + [f"C1CCCCC1{'O' * min(n, 1)}{'C' * n}" for n in range(10)]
    + [f"OC(=O){'C' * n}" for n in range(1, 11)]
)


class InlineMoleculesConfig(BaseDatasetConfig):
    """``{name: mine, kind: test_inline, smiles: [...], labels: [...]}``: molecules written in the entry."""

    kind: Literal["test_inline"] = "test_inline"
    smiles: tuple[str, ...] = Field(min_length=1)
    labels: tuple[float, ...] = Field(min_length=1)
    max_molecules: int | None = Field(default=None, ge=20)


@dataclasses.dataclass(frozen=True)
class InlineMolecules:
    name: str = "test_inline"
    description: str = "molecules and labels written in the dataset entry (test only)"
    family: str = "graph_property"
    task: str | None = "regression"
    metric: str | None = "rmse"
    config_cls: type[BaseDatasetConfig] = InlineMoleculesConfig
    is_kind: bool = True

    def check(self, cfg: InlineMoleculesConfig) -> list[str]:
        if len(cfg.smiles) != len(cfg.labels):
            return [f"{len(cfg.smiles)} smiles but {len(cfg.labels)} labels"]
        return []

    def fingerprint(self, cfg: InlineMoleculesConfig) -> str:
        from runfolder.io import stable_hash

        return stable_hash([cfg.smiles, cfg.labels])

    def for_config(self, cfg: InlineMoleculesConfig) -> InlineMolecules:
        return dataclasses.replace(self, name=cfg.name)

    def build(self, cfg: InlineMoleculesConfig) -> dict:
        from workloads.datasets.build import build_from_smiles

        return build_from_smiles(cfg, list(cfg.smiles), np.asarray(cfg.labels, np.float32)[:, None], "regression",
                                 "the dataset entry", mode="random")


@pytest.fixture
def inline_kind():
    register_source(InlineMolecules())  # the one registry row
    yield
    SOURCES.remove("test_inline")


def entry(**over) -> dict:
    from rdkit import Chem

    labels = [float(Chem.MolFromSmiles(s).GetNumHeavyAtoms()) for s in SMILES]
    return {"name": "mine", "kind": "test_inline", "smiles": list(SMILES), "labels": labels, **over}


def test_a_kind_registered_here_trains_like_any_dataset(inline_kind, cache_dir):
    from workloads import run_trial
    from workloads.config import TrialConfig

    cfg = TrialConfig.model_validate({
        "trial_id": "t", "dataset": entry(),
        "backbone": {"name": "graphormer", "params": TINY_ARCH, "pretrain": TINY_PRETRAIN},
        "method": {"name": "linear_probe"},
        "train": {"epochs": 1, "batch_size": 16},
        "profile": {"latency_batch_size": 8, "latency_warmup": 1, "latency_repeats": 2},
        "cache_dir": str(cache_dir), "num_threads": 1,
    })
    assert type(cfg.dataset) is InlineMoleculesConfig and family_of(cfg.dataset) == "graph_property"
    assert dataset_problems(cfg.dataset) == []
    assert TrialConfig.model_validate(cfg.model_dump(mode="json")) == cfg  # what a worker receives
    r = run_trial(cfg)
    assert r.task == "graph_property" and r.metrics.metric == "rmse" and r.metrics.direction == "minimize"
    assert math.isfinite(r.metrics.test_score) and r.dataset["name"] == "mine"
    assert r.dataset["num_train"] + r.dataset["num_valid"] + r.dataset["num_test"] == len(SMILES)
    # its own check, and its own fields: another kind's field is an unknown key
    assert dataset_problems(DatasetConfig(**entry(labels=[1.0] * 3))) == [f"{len(SMILES)} smiles but 3 labels"]
    with pytest.raises(ValidationError, match=r"path\n  unknown key for dataset kind test_inline "
                                              r"\(a field of dataset kind csv\)"):
        DatasetConfig(**entry(path="x.csv"))


def test_the_registration_is_gone_afterwards():
    assert "test_inline" not in SOURCES
    with pytest.raises(ValidationError, match="unknown dataset kind 'test_inline'; known: csv, text_graph_csv"):
        DatasetConfig(**entry())


def test_registration_checks_the_contract():
    with pytest.raises(TypeError, match="lacks family, task, metric, config_cls, is_kind, check, fingerprint"):
        register_source(dataclasses.make_dataclass("Bare", [("name", str), ("description", str)])("x", "y"))
    with pytest.raises(TypeError, match="config_cls must derive from BaseDatasetConfig"):
        register_source(dataclasses.replace(InlineMolecules(), name="test_badcfg", config_cls=dict))
    assert "test_badcfg" not in SOURCES and "x" not in SOURCES


@pytest.mark.parametrize("name", SOURCES.names())
def test_every_registered_source_keeps_the_contract(name):
    src = SOURCES.get(name)
    assert isinstance(src, DataSource) and src.name == name and src.description
    assert src.family in TASKS
    reads = {"graph_property": MoleculeDataSource, "node_classification": TextGraphDataSource}[src.family]
    assert isinstance(src, reads)
    assert issubclass(src.config_cls, BaseDatasetConfig)
    assert src.config_cls.model_config["extra"] == "forbid" and src.config_cls.model_config["frozen"]
    if src.is_kind:
        assert src.config_cls.model_fields["kind"].default == name  # kind: Literal[<its name>]
        cfg = DatasetConfig(name="mine", kind=name)
    else:
        assert src.task and src.metric
        cfg = DatasetConfig(name=name)
    # the entry validates into the source's own model, hashable, and its dump re-validates to it
    assert type(cfg) is src.config_cls and hash(cfg) == hash(DatasetConfig(**cfg.model_dump(mode="json")))
    assert dataset_config(**cfg.model_dump(mode="json")) == cfg and source_of(cfg).family == src.family
    assert isinstance(source_of(cfg), reads)


@pytest.mark.parametrize("fields, where, message", [
    ({"name": "freesolve"}, "name", "unknown dataset 'freesolve'; known: CHEMBL2147_Ki"),
    ({"name": "csv"}, "name", "'csv' is a dataset kind: write 'kind: csv' and give the dataset a name"),
    ({"name": "mine", "kind": "csv_graf"}, "kind", "unknown dataset kind 'csv_graf'; known: csv, text_graph_csv"),
    ({"name": "freesolv", "nodes": "n.csv"}, "nodes",
     "unknown key for dataset 'freesolv' (a field of dataset kind text_graph_csv)"),
    ({"name": "wordnet", "max_molecules": 50}, "max_molecules", "unknown key for dataset 'wordnet' (a field of"),
    ({"name": "freesolv", "colour": "red"}, "colour", "Extra inputs are not permitted"),
    ({"name": "freesolv", "max_molecules": 5}, "max_molecules", "greater than or equal to 20"),
    ({"name": "freesolv", "split_fractions": [0.5, 0.2, 0.2]}, "split_fractions", "sum to 1"),
    ({"kind": "csv"}, "name", "Field required"),
])
def test_bad_entries_are_told_at_their_path(fields, where, message):
    from workloads.config import TrialConfig

    with pytest.raises(ValidationError) as e:
        TrialConfig.model_validate({"dataset": fields, "method": {"name": "lora"}})
    errors = [err for err in e.value.errors() if err["loc"] == ("dataset", where)]
    assert errors and message in errors[0]["msg"], e.value.errors()


def test_each_kind_has_its_own_model():
    mol = DatasetConfig(name="freesolv", max_molecules=200)
    ogb = DatasetConfig(name="ogbg-molhiv", root="data/ogb")
    own = DatasetConfig(name="mine", kind="csv", path="m.csv", target_columns=["a", "b"], task="regression")
    graph = DatasetConfig(name="g", kind="text_graph_csv", nodes="n.csv", edges="e.csv")
    assert [type(c).__name__ for c in (mol, ogb, own, graph, DatasetConfig(name="wordnet"))] == [
        "MoleculeSetConfig", "OgbMoleculeConfig", "CsvMoleculesConfig", "TextGraphCsvConfig", "TextGraphConfig"]
    assert set(mol.model_dump()) == {"name", "kind", "split_seed", "split_fractions", "max_molecules"}
    assert own.target_columns == ("a", "b") and own.model_dump(mode="json")["target_columns"] == ["a", "b"]
    assert len({mol, ogb, own, graph, DatasetConfig(name="freesolv", max_molecules=200)}) == 4  # hashable
    assert isinstance(own, DatasetConfig) and not isinstance({"name": "freesolv"}, DatasetConfig)
    with pytest.raises(ValidationError, match="frozen"):
        mol.max_molecules = 3
