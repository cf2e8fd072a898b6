"""Make tests/fixtures/hf_graphormer/: Hugging Face Graphormer's own outputs, as reference.

The fixtures prove that the project's re-implementation of Graphormer (which
does not import transformers' Graphormer) reproduces transformers 4.40.2 exactly:
the same checkpoints (config.json + model.safetensors / pytorch_model.bin), the
same OGB molecules, and HF's outputs on them.

This script needs transformers 4.40.2 (Graphormer was deprecated and later
removed from transformers; its collator compiles algos_graphormer.pyx with
pyximport, which needs Cython < 3 and NumPy headers). Run it ONLY from a
throwaway virtualenv outside the repository. The project's own .venv must NEVER
get transformers 4.x (nor Cython < 3): it pins transformers>=4.45.

    python3 -m venv /tmp/hfg-venv
    /tmp/hfg-venv/bin/pip install torch==2.13.0
    /tmp/hfg-venv/bin/pip install transformers==4.40.2 "cython<3" "numpy<2" rdkit ogb safetensors
    cd /work/main   # the repository root
    /tmp/hfg-venv/bin/python scripts/make_hf_graphormer_fixtures.py [--out tests/fixtures/hf_graphormer]

Deterministic (fixed seeds) and re-runnable: everything is written into a
temporary sibling folder, which then replaces the output folder by renames.

Layout written (see also README.md written next to the fixtures):

    molecules.smi                    one SMILES per line, M molecules, line i = molecule i
    inputs_sample.npz                HF-preprocessed and collated inputs for 4 molecules
    <config>/config.json             GraphormerConfig (save_pretrained)
    <config>/model.safetensors       weights (or pytorch_model.bin in <config>_bin/)
    <config>/outputs.npz             HF outputs per molecule (see KEYS below)
    <config>/reference.json          versions, settings, checks

Configs: prenorm_multihop, postnorm_multihop, prenorm_single,
postnorm_small_spatial (GraphormerForGraphClassification), prenorm_multihop_model
(a bare GraphormerModel holding prenorm_multihop's encoder weights), and
postnorm_multihop_bin (postnorm_multihop's weights as pytorch_model.bin).

outputs.npz keys (M molecules, D hidden size, C classes, T = sum(1 + n_i)):
    graph_rep [M,D]          HF last_hidden_state[:, 0] (after GraphormerModel's
                             lm_head_transform_weight -> activation -> layer_norm)
    logits [M,C]             GraphormerForGraphClassification logits (absent for the bare model)
    hidden_flat [T,D]        last_hidden_state rows 0..n_i of each molecule, concatenated
    hidden_offsets [M+1]     molecule i's rows are hidden_flat[off[i]:off[i+1]] (row 0 = graph token)
    encoder_graph_rep [M,D]  the graph encoder's own output at the graph token
                             (inner_states[-1][0], before the lm-head transform)
    encoder_hidden_flat [T,D] the graph encoder's last inner state, rows as hidden_flat
    alone_graph_rep [M,D], alone_logits [M,C], alone_hidden_flat [T,D]: each molecule in a batch of one
    num_nodes [M]            heavy atoms per molecule
    batch_members [M]        molecule indices in batch order; batch b is
                             batch_members[batch_offsets[b]:batch_offsets[b+1]]
    batch_offsets [B+1]
    spatial_pos_max []       the spatial_pos_max GraphormerDataCollator used
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "hf_graphormer"

# At least 44 molecules; all parse with RDKit to >= 1 heavy atom.
MOLECULES: list[str] = [
    # one heavy atom
    "C", "[Na+]", "O", "[13CH4]", "[NH4+]", "[Fe+2]",
    # two / three heavy atoms
    "CC", "CO", "C#N", "O=C=O",
    # disconnected salts / mixtures
    "[Na+].[Cl-]", "CC(=O)[O-].[Na+]", "c1ccccc1.O", "C[N+](C)(C)C.[Br-]",
    # charges
    "C[N+](C)(C)C", "[O-][N+](=O)c1ccccc1", "CC(=O)[O-]",
    # isotopes
    "[2H]C([2H])([2H])O", "[13CH3]C(=O)O",
    # stereo
    "C/C=C/C", "C/C=C\\C", "C[C@H](N)C(=O)O", "F[C@@H](Cl)Br",
    # rings / aromatics
    "c1ccccc1", "C1CCCCC1", "C1CC1", "c1ccncc1", "c1ccc2ccccc2c1",
    "c1ccc2c(c1)[nH]c1ccccc12", "C1CCC2(CC1)CCCCC2", "c1ccc(cc1)-c1ccccc1",
    # long chains (shortest paths well over 8 hops)
    "C" * 30,
    "C" + "OCC" * 15 + "O",
    "CCCCCCCCCCCCCCCCCC(=O)O",
    # drug-like and assorted
    "CC(=O)Oc1ccccc1C(=O)O",
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "CC(=O)Nc1ccc(O)cc1",
    "CN1CCC[C@H]1c1cccnc1",
    "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O",
    "CC1(C)S[C@@H]2[C@H](NC(=O)Cc3ccccc3)C(=O)N2[C@H]1C(=O)O",
    "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",
    "CC(C)NCC(O)COc1cccc2ccccc12",
    "CN(C)CCCN1c2ccccc2CCc2ccccc21",
    "OC(=O)COCCN1CCN(CC1)C(c1ccccc1)c1ccc(Cl)cc1",
    "CN(C)C(=N)NC(=N)N",
    "NCCc1ccc(O)c(O)c1",
    "C[C@]12CC[C@H]3[C@@H](CCC4=CC(=O)CC[C@@]34C)[C@@H]1CC[C@@H]2O",
    "OC(=O)CC(O)(CC(O)=O)C(O)=O",
    "NS(=O)(=O)c1ccc(N)cc1",
    "FC(F)(F)c1ccc(Oc2ccccc2)cc1",
    "OB(O)c1ccccc1",
    "OP(=O)(O)O",
    "C[Si](C)(C)C",
    "Brc1ccc(I)cc1",
]

SEED = 20240515

# name -> (model class, config kwargs, collator spatial_pos_max, torch seed)
CONFIGS: dict[str, dict] = {
    "prenorm_multihop": dict(
        cfg=dict(embedding_dim=32, num_hidden_layers=3, num_attention_heads=4, ffn_embedding_dim=64,
                 pre_layernorm=True, edge_type="multi_hop", multi_hop_max_dist=5, spatial_pos_max=20),
        collator_spatial_pos_max=20, seed=1),
    "postnorm_multihop": dict(
        cfg=dict(embedding_dim=16, num_hidden_layers=2, num_attention_heads=4, ffn_embedding_dim=48,
                 pre_layernorm=False, edge_type="multi_hop", multi_hop_max_dist=3, spatial_pos_max=20,
                 encoder_normalize_before=True),
        collator_spatial_pos_max=20, seed=2),
    "prenorm_single": dict(
        cfg=dict(embedding_dim=16, num_hidden_layers=2, num_attention_heads=4, ffn_embedding_dim=32,
                 pre_layernorm=True, edge_type="single_hop", multi_hop_max_dist=5, spatial_pos_max=4),
        collator_spatial_pos_max=4, seed=3),
    "postnorm_small_spatial": dict(
        cfg=dict(embedding_dim=24, num_hidden_layers=2, num_attention_heads=4, ffn_embedding_dim=48,
                 pre_layernorm=False, edge_type="multi_hop", multi_hop_max_dist=5, spatial_pos_max=6),
        collator_spatial_pos_max=6, seed=4),
}
COMMON_CFG = dict(num_classes=2, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, layerdrop=0.0)
BATCH_SIZES = [1, 3, 7, 16]  # then the rest in one batch
MODEL_INPUTS = ["input_nodes", "input_edges", "attn_bias", "in_degree", "out_degree", "spatial_pos", "attn_edge_type"]


def import_hf():
    import torch
    import transformers
    from transformers import GraphormerConfig, GraphormerForGraphClassification, GraphormerModel
    from transformers.models.graphormer.collating_graphormer import GraphormerDataCollator, preprocess_item

    if transformers.__version__ != "4.40.2":
        print(f"warning: transformers {transformers.__version__}, the fixtures are meant for 4.40.2", file=sys.stderr)
    return torch, transformers, GraphormerConfig, GraphormerForGraphClassification, GraphormerModel, \
        GraphormerDataCollator, preprocess_item


def featurize(smiles: list[str], preprocess_item) -> tuple[list[dict], list[dict]]:
    from ogb.utils import smiles2graph

    raws, items = [], []
    for s in smiles:
        g = smiles2graph(s)
        if g["num_nodes"] < 1:
            raise ValueError(f"{s!r} has no heavy atom")
        raws.append(g)
        item = {"node_feat": g["node_feat"], "edge_index": g["edge_index"], "edge_attr": g["edge_feat"],
                "num_nodes": g["num_nodes"], "y": [0.0]}
        items.append(preprocess_item(item))
    return raws, items


def make_batches(num_nodes: np.ndarray) -> list[list[int]]:
    """Shuffled batches of mixed sizes (1, 3, 7, 16, rest); none starts with a one-atom molecule."""
    m = len(num_nodes)
    rng = np.random.default_rng(SEED)
    while True:
        order = rng.permutation(m).tolist()
        bounds = np.cumsum([0] + BATCH_SIZES + [m - sum(BATCH_SIZES)])
        batches = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        if all(any(num_nodes[i] > 1 for i in b) for b in batches):
            break
    fixed = []
    for b in batches:
        k = next(j for j, i in enumerate(b) if num_nodes[i] > 1)
        fixed.append(b[k:] + b[:k])  # rotate: a multi-atom molecule first
    return fixed


def collate(collator, items: list[dict]):
    # The collator turns the items' arrays into tensors in place: hand it copies.
    return collator([copy.deepcopy(it) for it in items])


def collate_alone(collator, item: dict):
    """A batch of one. HF's collator cannot take a one-atom molecule first (its input_edges has an
    empty max_dist axis), and multi_hop cannot reshape an empty max_dist axis either, so a one-atom
    molecule alone gets one all-padding hop (zeros, embedded by the zero padding row: no effect)."""
    it = copy.deepcopy(item)
    if it["input_edges"].shape[2] == 0:
        it["input_edges"] = np.zeros(it["input_edges"].shape[:2] + (1, it["input_edges"].shape[3]), dtype=np.int64)
    return collator([it])


def one_atom_first_error(collator, items, num_nodes) -> str:
    one = next(i for i in range(len(items)) if num_nodes[i] == 1)
    two = next(i for i in range(len(items)) if num_nodes[i] > 1)
    try:
        collate(collator, [items[one], items[two]])
    except Exception as e:  # noqa: BLE001 - recording whatever HF raises
        return f"{type(e).__name__}: {e}"
    return "no error"


def perturb(torch, model, seed: int) -> None:
    """Noise on every parameter, so no term is near zero; nn.Embedding padding rows stay exactly zero."""
    g = torch.Generator().manual_seed(seed + 1000)
    nn = torch.nn
    done: set[int] = set()

    def randn(p, std):
        return torch.randn(p.shape, generator=g) * std

    bias_tables = ("spatial_pos_encoder", "edge_encoder", "edge_dis_encoder", "graph_token_virtual_distance")
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, nn.Embedding):
                std = 1.0 if name.split(".")[-1] in bias_tables else 0.15
                mod.weight += randn(mod.weight, std)
                if mod.padding_idx is not None:
                    mod.weight[mod.padding_idx] = 0.0
                done.add(id(mod.weight))
            elif isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(1.0 + randn(mod.weight, 0.2))
                mod.bias.copy_(randn(mod.bias, 0.1))
                done.update({id(mod.weight), id(mod.bias)})
            elif isinstance(mod, nn.Linear):
                mod.weight += randn(mod.weight, 0.1)
                done.add(id(mod.weight))
                if mod.bias is not None:
                    mod.bias.copy_(randn(mod.bias, 0.1))
                    done.add(id(mod.bias))
        for name, p in model.named_parameters():
            if id(p) not in done:  # e.g. classifier.lm_output_learned_bias
                p += randn(p, 0.1) + 0.05
                done.add(id(p))


def run_batch(torch, model, batch, is_cls: bool):
    inputs = {k: batch[k] for k in MODEL_INPUTS}
    with torch.no_grad():
        base = model.encoder if is_cls else model
        enc_out = base(**inputs, return_dict=True)
        last = enc_out.last_hidden_state  # [B, 1+N, D]
        inner = enc_out.hidden_states[-1].transpose(0, 1)  # graph encoder's last state, [B, 1+N, D]
        logits = None
        if is_cls:
            out = model(**inputs, return_dict=True)
            logits = out.logits
            # the classifier head on last_hidden_state[:, 0] must give the same logits
            assert torch.equal(model.classifier(last)[:, 0, :], logits)
    return last.numpy(), inner.numpy(), None if logits is None else logits.numpy()


def outputs_for(torch, model, collator, items, num_nodes, batches, is_cls: bool, d: int, c: int) -> dict:
    m = len(items)
    offsets = np.concatenate([[0], np.cumsum(1 + num_nodes)]).astype(np.int64)
    res = {
        "graph_rep": np.zeros((m, d), np.float32), "hidden_flat": np.zeros((offsets[-1], d), np.float32),
        "encoder_graph_rep": np.zeros((m, d), np.float32),
        "encoder_hidden_flat": np.zeros((offsets[-1], d), np.float32),
        "alone_graph_rep": np.zeros((m, d), np.float32), "alone_hidden_flat": np.zeros((offsets[-1], d), np.float32),
    }
    if is_cls:
        res["logits"] = np.zeros((m, c), np.float32)
        res["alone_logits"] = np.zeros((m, c), np.float32)
    for b in batches:
        last, inner, logits = run_batch(torch, model, collate(collator, [items[i] for i in b]), is_cls)
        for row, i in enumerate(b):
            n1 = 1 + num_nodes[i]
            res["graph_rep"][i] = last[row, 0]
            res["hidden_flat"][offsets[i]:offsets[i + 1]] = last[row, :n1]
            res["encoder_graph_rep"][i] = inner[row, 0]
            res["encoder_hidden_flat"][offsets[i]:offsets[i + 1]] = inner[row, :n1]
            if is_cls:
                res["logits"][i] = logits[row]
    for i in range(m):
        last, _, logits = run_batch(torch, model, collate_alone(collator, items[i]), is_cls)
        res["alone_graph_rep"][i] = last[0, 0]
        res["alone_hidden_flat"][offsets[i]:offsets[i + 1]] = last[0, :1 + num_nodes[i]]
        if is_cls:
            res["alone_logits"][i] = logits[0]
    for k, v in res.items():
        if not np.isfinite(v).all():
            raise RuntimeError(f"non-finite values in {k}")
    res["num_nodes"] = num_nodes.astype(np.int64)
    res["hidden_offsets"] = offsets
    res["batch_members"] = np.array([i for b in batches for i in b], dtype=np.int64)
    res["batch_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in batches])]).astype(np.int64)
    res["spatial_pos_max"] = np.array(collator.spatial_pos_max, dtype=np.int64)
    return res


def batch_alone_diff(res: dict) -> dict:
    out = {
        "graph_rep": float(np.abs(res["graph_rep"] - res["alone_graph_rep"]).max()),
        "hidden": float(np.abs(res["hidden_flat"] - res["alone_hidden_flat"]).max()),
    }
    if "logits" in res:
        out["logits"] = float(np.abs(res["logits"] - res["alone_logits"]).max())
    out["max"] = max(out.values())
    return out


def save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def save_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def inputs_sample(collator, raws, items, smiles) -> dict:
    """HF's own preprocessing of 4 molecules (a multi-atom one first), each alone and collated together."""
    pick = [smiles.index(s) for s in ("C[C@H](N)C(=O)O", "CC(=O)[O-].[Na+]", "C" * 30, "[Na+]")]
    hops = 8  # input_edges keep their first 8 hops (the salt's max_dist is 510)
    out: dict[str, np.ndarray] = {
        "mol_index": np.array(pick, dtype=np.int64),
        "smiles": np.array([smiles[i] for i in pick]),
        "spatial_pos_max": np.array(collator.spatial_pos_max, dtype=np.int64),
        "input_edges_hops_kept": np.array(hops, dtype=np.int64),
    }
    for j, i in enumerate(pick):
        raw, it = raws[i], items[i]
        out[f"m{j}_node_feat"] = raw["node_feat"].astype(np.int64)
        out[f"m{j}_edge_index"] = raw["edge_index"].astype(np.int64)
        out[f"m{j}_edge_feat"] = raw["edge_feat"].astype(np.int64)
        out[f"m{j}_input_nodes"] = np.asarray(it["input_nodes"], np.int64)
        out[f"m{j}_spatial_pos"] = np.asarray(it["spatial_pos"], np.int64)
        out[f"m{j}_in_degree"] = np.asarray(it["in_degree"], np.int64)
        out[f"m{j}_attn_edge_type"] = np.asarray(it["attn_edge_type"], np.int64)
        out[f"m{j}_attn_bias"] = np.asarray(it["attn_bias"], np.float32)  # before collation: zeros
        out[f"m{j}_max_dist"] = np.array(np.asarray(it["input_edges"]).shape[2], dtype=np.int64)
        out[f"m{j}_input_edges"] = np.asarray(it["input_edges"], np.int64)[:, :, :hops, :]
    batch = collate(collator, [items[i] for i in pick])
    for k in MODEL_INPUTS:
        v = batch[k].numpy()
        if k == "input_edges":
            out["batch_max_dist"] = np.array(v.shape[3], dtype=np.int64)
            v = v[:, :, :, :hops, :]
        out[f"batch_{k}"] = v
    return out


README = """# Hugging Face Graphormer reference fixtures

Made by `scripts/make_hf_graphormer_fixtures.py` with transformers {tf} (torch {torch}) in a
throwaway virtualenv; see the script's docstring. Do not edit by hand; re-run the script.

- `molecules.smi`: {m} SMILES, line i = molecule i (OGB `smiles2graph` features).
- `<config>/config.json` + `model.safetensors` (`postnorm_multihop_bin/`: `pytorch_model.bin`).
- `<config>/outputs.npz`, `<config>/reference.json`: HF's outputs and the settings used
  (the collator's `spatial_pos_max` is in both). Keys are listed in the script's docstring.
- `prenorm_multihop_model/`: a bare `GraphormerModel` with `prenorm_multihop`'s encoder weights
  (its outputs equal `prenorm_multihop`'s, no logits).
- `inputs_sample.npz`: HF's preprocessed and collated inputs for 4 molecules.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    out_dir: Path = args.out.resolve()

    torch, transformers, GraphormerConfig, GraphormerForGraphClassification, GraphormerModel, \
        GraphormerDataCollator, preprocess_item = import_hf()
    import ogb
    import rdkit

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    if len(MOLECULES) < 44 or len(set(MOLECULES)) != len(MOLECULES):
        raise SystemExit("need >= 44 distinct molecules")
    raws, items = featurize(MOLECULES, preprocess_item)
    num_nodes = np.array([r["num_nodes"] for r in raws], dtype=np.int64)
    batches = make_batches(num_nodes)

    versions = {"transformers": transformers.__version__, "torch": torch.__version__, "numpy": np.__version__,
                "rdkit": rdkit.__version__, "ogb": ogb.__version__, "python": platform.python_version()}

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".tmp-", dir=out_dir.parent))
    try:
        (tmp / "molecules.smi").write_text("".join(s + "\n" for s in MOLECULES))
        (tmp / "README.md").write_text(README.format(tf=transformers.__version__, torch=torch.__version__,
                                                     m=len(MOLECULES)))
        summary = {}
        for name, spec in CONFIGS.items():
            spm = spec["collator_spatial_pos_max"]
            collator = GraphormerDataCollator(spatial_pos_max=spm)
            err = one_atom_first_error(collator, items, num_nodes)
            torch.manual_seed(spec["seed"])
            config = GraphormerConfig(**COMMON_CFG, **spec["cfg"])
            model = GraphormerForGraphClassification(config)
            perturb(torch, model, spec["seed"])
            model.eval()

            variants = [(name, model, True, {})]
            if name == "prenorm_multihop":
                bare = GraphormerModel(config)
                missing = bare.load_state_dict(model.encoder.state_dict(), strict=True)
                assert not missing.missing_keys and not missing.unexpected_keys
                bare.eval()
                variants.append((name + "_model", bare, False, {}))
            if name == "postnorm_multihop":
                variants.append((name + "_bin", model, True, {"safe_serialization": False}))

            for vname, vmodel, is_cls, save_kw in variants:
                folder = tmp / vname
                vmodel.save_pretrained(folder, safe_serialization=save_kw.get("safe_serialization", True))
                # outputs come from the model as reloaded from the folder: the files are what was run
                cls = GraphormerForGraphClassification if is_cls else GraphormerModel
                loaded = cls.from_pretrained(folder)
                loaded.eval()
                for (k1, v1), (k2, v2) in zip(vmodel.state_dict().items(), loaded.state_dict().items()):
                    assert k1 == k2 and torch.equal(v1, v2), (vname, k1, k2)
                res = outputs_for(torch, loaded, collator, items, num_nodes, batches, is_cls,
                                  config.embedding_dim, config.num_classes)
                save_npz(folder / "outputs.npz", res)
                diff = batch_alone_diff(res)
                weights = "pytorch_model.bin" if save_kw.get("safe_serialization", True) is False else "model.safetensors"
                ref = {
                    "config_name": vname,
                    "model_class": cls.__name__,
                    "weights_file": weights,
                    "versions": versions,
                    "collator_spatial_pos_max": spm,
                    "config_spatial_pos_max": config.spatial_pos_max,
                    "edge_type": config.edge_type,
                    "multi_hop_max_dist": config.multi_hop_max_dist,
                    "pre_layernorm": config.pre_layernorm,
                    "encoder_normalize_before": config.encoder_normalize_before,
                    "embedding_dim": config.embedding_dim,
                    "num_hidden_layers": config.num_hidden_layers,
                    "num_attention_heads": config.num_attention_heads,
                    "num_classes": config.num_classes,
                    "torch_seed": spec["seed"],
                    "shuffle_seed": SEED,
                    "num_molecules": len(MOLECULES),
                    "batch_sizes": [len(b) for b in batches],
                    "max_abs_diff_batched_vs_alone": diff,
                    "one_atom_first_error": err,
                    "one_atom_alone_workaround": (
                        "a one-atom molecule alone (batch of one) cannot go through HF's collator or the "
                        "multi_hop branch (empty max_dist axis): its input_edges got one all-zero hop; the "
                        "batched outputs, where it is never first, are HF's own"),
                    "same_weights_as": {"prenorm_multihop_model": "prenorm_multihop (encoder.*)",
                                        "postnorm_multihop_bin": "postnorm_multihop"}.get(vname),
                    "graph_rep_is": "last_hidden_state[:, 0] after lm_head_transform_weight, activation, layer_norm",
                    "state_dict_keys": {k: list(v.shape) for k, v in loaded.state_dict().items()},
                }
                save_json(folder / "reference.json", ref)
                summary[vname] = {"batched_vs_alone": diff["max"], "err": err,
                                  "graph_rep_absmax": float(np.abs(res["graph_rep"]).max()),
                                  "graph_rep_std": float(res["graph_rep"].std())}
                if is_cls:
                    summary[vname]["logits_std"] = float(res["logits"].std())

        # the bare model holds the classifier's encoder: identical outputs
        a = np.load(tmp / "prenorm_multihop" / "outputs.npz")
        b = np.load(tmp / "prenorm_multihop_model" / "outputs.npz")
        assert np.array_equal(a["graph_rep"], b["graph_rep"]) and np.array_equal(a["hidden_flat"], b["hidden_flat"])

        save_npz(tmp / "inputs_sample.npz",
                 inputs_sample(GraphormerDataCollator(spatial_pos_max=CONFIGS["prenorm_multihop"]
                                                      ["collator_spatial_pos_max"]), raws, items, MOLECULES))

        old = None
        if out_dir.exists():
            old = out_dir.with_name(out_dir.name + ".old-" + str(os.getpid()))
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(json.dumps(summary, indent=2))
    print(f"wrote {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
