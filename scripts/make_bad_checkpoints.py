"""Make tests/fixtures/hf_graphormer_bad/: small ``hf_graphormer`` checkpoint folders, each
with exactly one defect, for the bad-spec corpus (tests/specs/bad/checkpoint_*.yaml).

Every folder starts as the same tiny, valid checkpoint, written by
:func:`workloads.checkpoints.hf_graphormer.save_hf_checkpoint` from an
``HFGraphormer(HFGraphormerConfig(hidden_dim=8, num_layers=1, num_heads=2, ffn_dim=8,
num_atoms=64, num_edges=16, num_in_degree=8, num_out_degree=8, num_edge_dis=8))``
(num_spatial stays 512, the least the backbone accepts: HF's unreachable distance is 510),
about 10 KB, and then gets its one defect:

    valid/              no defect (the reference the others are made from)
    missing_weight/     graph_encoder.layers.0.self_attn.k_proj.weight [8, 8] dropped
    unexpected_weight/  graph_encoder.layers.1.fc1.weight [8, 8] added (config.json has 1 layer)
    misshaped_weight/   graph_encoder.layers.0.fc1.weight is [16, 8]; config.json implies [8, 8]
    no_weights/         config.json only (no model.safetensors or pytorch_model.bin)
    model_type_bert/    config.json says model_type "bert"
    layerdrop/          config.json sets layerdrop 0.1 (the backbone computes only 0.0)
    whole_paths/        config.json sets multi_hop_max_dist 0 (whole paths: not supported)

Weight values are a fixed function of each tensor's position (no random numbers), so the
files are the same on every run and torch version; no check reads the values.

Run from the repository root with the project's virtualenv:

    .venv/bin/python scripts/make_bad_checkpoints.py [--out tests/fixtures/hf_graphormer_bad]

The output folder is replaced as a whole (written into a temporary sibling, then renamed).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from workloads.backbones.hf_graphormer import HFGraphormer, HFGraphormerConfig  # noqa: E402
from workloads.checkpoints.hf_graphormer import save_hf_checkpoint  # noqa: E402

TINY = dict(hidden_dim=8, num_layers=1, num_heads=2, ffn_dim=8, num_atoms=64, num_edges=16,
            num_in_degree=8, num_out_degree=8, num_edge_dis=8)
WEIGHTS = "model.safetensors"


def tiny_model() -> HFGraphormer:
    model = HFGraphormer(HFGraphormerConfig(**TINY))
    with torch.no_grad():
        for i, t in enumerate(model.state_dict().values()):
            n = t.numel()
            t.copy_(((torch.arange(n, dtype=torch.float32) * 7 + i) % 17 - 8).div(16).reshape(t.shape))
    return model


def _edit_weights(folder: Path, edit) -> None:
    state = load_file(str(folder / WEIGHTS))
    edit(state)
    save_file({k: v.contiguous() for k, v in sorted(state.items())}, str(folder / WEIGHTS))


def _edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def _drop(state: dict) -> None:
    del state["graph_encoder.layers.0.self_attn.k_proj.weight"]


def _add(state: dict) -> None:
    state["graph_encoder.layers.1.fc1.weight"] = state["graph_encoder.layers.0.fc1.weight"].clone()


def _reshape(state: dict) -> None:
    w = state["graph_encoder.layers.0.fc1.weight"]
    state["graph_encoder.layers.0.fc1.weight"] = torch.cat([w, w])  # [16, 8]


def make(out: Path) -> list[Path]:
    model = tiny_model()
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    (tmp / "README.md").write_text(
        "# Malformed hf_graphormer checkpoints\n\n"
        "Made by `scripts/make_bad_checkpoints.py` (see its docstring for what each folder holds);\n"
        "used by `tests/specs/bad/checkpoint_*.yaml`. Do not edit by hand; re-run the script.\n")
    made = []
    for name in ("valid", "missing_weight", "unexpected_weight", "misshaped_weight", "no_weights",
                 "model_type_bert", "layerdrop", "whole_paths"):
        folder = save_hf_checkpoint(model, tmp / name)
        if name == "missing_weight":
            _edit_weights(folder, _drop)
        elif name == "unexpected_weight":
            _edit_weights(folder, _add)
        elif name == "misshaped_weight":
            _edit_weights(folder, _reshape)
        elif name == "no_weights":
            (folder / WEIGHTS).unlink()
        elif name == "model_type_bert":
            _edit_config(folder, model_type="bert", architectures=["BertModel"])
        elif name == "layerdrop":
            _edit_config(folder, layerdrop=0.1)
        elif name == "whole_paths":
            _edit_config(folder, multi_hop_max_dist=0)
        made.append(out / name)
    old = out.with_name(out.name + ".old")
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)
    return made


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "hf_graphormer_bad")
    args = p.parse_args()
    for folder in make(args.out.resolve()):
        print(folder)


if __name__ == "__main__":
    main()
