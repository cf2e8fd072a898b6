"""``orchestrator embed SPEC --backbone NAME --smiles FILE --out FILE.npy``, as a user runs it
(through :func:`orchestrator.cli.main`): a Hugging Face checkpoint gives HF's own graph
representations (tests/fixtures/hf_graphormer, made by transformers 4.40.2), a backbone
the project pretrains gives what the backbone computes, and bad input is one line and
exit 2 with no output file written."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orchestrator.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hf_graphormer"
MOLECULES = FIXTURES / "molecules.smi"
CHECKPOINT = FIXTURES / "prenorm_multihop"  # config.json's spatial_pos_max 20 = the collator's

METHODS = "methods: {lora: {search: {r: {type: categorical, choices: [2, 4]}}}}\n"
# the project's pretraining at its least: 100 MOSES molecules, one epoch, a tiny backbone
OWN_ARCH = {"hidden_dim": 16, "num_layers": 1, "num_heads": 2, "ffn_dim": 16}
OWN_PRETRAIN = {"max_molecules": 100, "epochs": 1, "batch_size": 50, "lr": 0.002}


def _spec(tmp_path: Path, backbone: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text("name: embed\ndatasets: [{name: freesolv, max_molecules: 100}]\n"
                    f"backbones: [{backbone}]\n{METHODS}"
                    f"storage: {{root: '{tmp_path / 'runs'}', cache_dir: '{tmp_path / 'cache'}'}}\n")
    return path


def _hf_spec(tmp_path: Path) -> Path:
    return _spec(tmp_path, f"{{name: graphormer, checkpoint: {{format: hf_graphormer, path: '{CHECKPOINT}'}}}}")


def _embed(spec: Path, smiles: Path, out: Path, *extra: str, backbone: str = "graphormer") -> int:
    return main(["embed", str(spec), "--backbone", backbone, "--smiles", str(smiles), "--out", str(out),
                 "--device", "cpu", *extra])


def _one_line_error(capfd) -> str:
    captured = capfd.readouterr()  # file descriptors: RDKit's own C++ log would show here
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in err
    assert captured.out == ""
    return err


@pytest.mark.parametrize("batch_size", ["64", "5"])
def test_a_hf_checkpoint_embeds_as_hf_computes(batch_size, tmp_path, capsys):
    """Row i of the .npy is HF's last_hidden_state[:, 0] for line i of molecules.smi (salts,
    one-atom molecules, isotopes and all), whatever the batching."""
    ref = np.load(CHECKPOINT / "outputs.npz")["graph_rep"]
    out = tmp_path / "out" / "z.npy"
    assert _embed(_hf_spec(tmp_path), MOLECULES, out, "--batch-size", batch_size) == 0
    z = np.load(out)
    n = len(MOLECULES.read_text().splitlines())
    assert z.dtype == np.float32 and z.shape == ref.shape == (n, 32)
    for i in range(n):  # relative to the row's scale (a LayerNorm output: entries near 0 occur)
        err = np.abs(z[i] - ref[i]).max() / np.abs(ref[i]).max()
        assert err <= 1e-5, (i, err)
    assert sorted(p.name for p in out.parent.iterdir()) == ["z.npy"]  # no temporary file left
    assert f"embed: {n} molecules -> {out} (float32 [{n}, 32]; graphormer from checkpoint {CHECKPOINT}" \
        in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_an_own_pretrained_backbone_embeds_as_it_computes(tmp_path, capsys):
    """A backbone of the project's own pretraining (run now: none is cached) gives
    [n, hidden_dim], finite, equal to the pretrained backbone run directly."""
    import torch
    from torch_geometric.data import Batch

    from orchestrator.spec import load_spec
    from workloads.datasets.featurize import smiles_to_data
    from workloads.embed import load_backbone

    spec = _spec(tmp_path, f"{{name: graphormer, params: {OWN_ARCH}, pretrain: {OWN_PRETRAIN}}}")
    smiles = MOLECULES.read_text().splitlines()[:12]
    smi = tmp_path / "few.smi"
    smi.write_text("\n".join(smiles) + "\n")
    out = tmp_path / "z.npy"
    assert _embed(spec, smi, out) == 0
    z = np.load(out)
    assert z.dtype == np.float32 and z.shape == (len(smiles), OWN_ARCH["hidden_dim"])
    assert np.isfinite(z).all()
    printed = capsys.readouterr().out
    cached = list((tmp_path / "cache" / "pretrained").glob("graphormer-*.pt"))
    assert len(cached) == 1 and f"graphormer from pretrained {cached[0]}" in printed, printed

    backbone, source = load_backbone(load_spec(spec).backbones[0], tmp_path / "cache")  # cached now
    assert source == f"pretrained {cached[0]}" and not backbone.training
    with torch.no_grad():
        direct = backbone(Batch.from_data_list([smiles_to_data(s) for s in smiles])).graph.numpy()
    np.testing.assert_allclose(z, direct, rtol=1e-5, atol=1e-6)
    assert not np.allclose(z[0], z[1])  # different molecules, different rows


@pytest.mark.parametrize("line, expect", [
    ("C1CC(", "line 3: RDKit cannot parse SMILES 'C1CC('"),
    ("", "line 3: no SMILES on the line"),
])
def test_a_smiles_rdkit_cannot_parse_names_its_line_and_writes_nothing(line, expect, tmp_path, capfd):
    smi = tmp_path / "mols.smi"
    smi.write_text(f"CCO\nc1ccccc1\n{line}\nCC(=O)O\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert _embed(_hf_spec(tmp_path), smi, out_dir / "z.npy") == 2
    assert _one_line_error(capfd) == f"error: {smi}: {expect}"
    assert list(out_dir.iterdir()) == []  # no .npy, no temporary file
    assert not (tmp_path / "cache").exists() and not (tmp_path / "runs").exists()


def test_a_backbone_not_in_the_spec_is_refused(tmp_path, capfd):
    spec = _hf_spec(tmp_path)
    out = tmp_path / "z.npy"
    assert _embed(spec, MOLECULES, out, backbone="mat") == 2
    assert _one_line_error(capfd) == f"error: --backbone: 'mat' is not a backbone of {spec}; it has graphormer"
    assert not out.exists()


@pytest.mark.parametrize("name", ["z.npz", "z", "z.npy.txt"])
def test_an_out_file_not_ending_in_npy_is_refused(name, tmp_path, capfd):
    out = tmp_path / "out" / name
    assert _embed(_hf_spec(tmp_path), MOLECULES, out) == 2
    assert _one_line_error(capfd) == f"error: --out: '{out}' must end in .npy"
    assert not (tmp_path / "out").exists()
