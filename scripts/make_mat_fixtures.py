"""Make tests/fixtures/mat_authors/: the MAT authors' own featurization and outputs, as reference.

The fixtures prove that the project's ``mat_authors`` backbone
(workloads/backbones/mat_authors.py, which does not import the authors' code)
reproduces the Molecule Attention Transformer as its authors wrote it
(github.com/ardigen/MAT, ``src/transformer.py`` and ``src/featurization/data_utils.py``;
made with commit 1c7af06e440d967064763dc765847413b5770f05): checkpoints in the format
of their published ``pretrained_weights.pt`` (a ``state_dict`` of ``make_model(**params)``),
their featurization of the same molecules, and their model's outputs on them.

Nothing of the authors' code is copied into the repository: this script imports it from
the ``src/`` folder of a checkout given on the command line. Their code needs only torch,
numpy, pandas, scikit-learn and RDKit; run it ONLY from a throwaway virtualenv outside
the repository (never the project's .venv):

    python3 -m venv /tmp/mat-venv
    /tmp/mat-venv/bin/pip install torch==2.13.0
    /tmp/mat-venv/bin/pip install numpy rdkit scikit-learn pandas
    git clone https://github.com/ardigen/MAT /tmp/MAT    # or any copy of its src/ folder
    cd /work/main   # the repository root
    /tmp/mat-venv/bin/python scripts/make_mat_fixtures.py --mat-src /tmp/MAT/src [--out tests/fixtures/mat_authors]

One change to their code's behaviour, made here by patching, not by editing it: their
``load_data_from_smiles`` embeds each molecule with ``AllChem.EmbedMolecule(mol,
maxAttempts=5000)`` and no seed, so their distances differ from run to run (a flaw: their
features are not reproducible). The script replaces ``AllChem.EmbedMolecule`` by the same
call with ``randomSeed=CONFORMER_SEED`` for the duration of the run; everything else
(ETKDG defaults, hydrogens added, UFF optimisation, hydrogens removed, the 2D fallback)
is their code as is. The project's featurization uses the same seed (``conformer_seed``).

Deterministic (fixed seeds) and re-runnable: everything is written into a temporary
sibling folder, which then replaces the output folder by renames.

Layout written (see also README.md written next to the fixtures):

    molecules.smi                 one SMILES per line, M molecules, line i = molecule i
    featurization.npz             their load_data_from_smiles(..., add_dummy_node=True,
                                  one_hot_formal_charge=True) per molecule (keys below)
    pretrained_shapes.json        key -> shape of make_model(**README/EXAMPLE.ipynb pretrained
                                  hyperparameters), the published file's architecture
    <config>/pretrained_weights.pt   torch.save(model.state_dict()), as theirs is published
    <config>/config.json          the make_model keyword arguments (their names)
    <config>/outputs.npz          their outputs (keys below)
    <config>/reference.json       versions, settings, checks

featurization.npz keys (M molecules; node i of a molecule: 0 the dummy node, then its atoms):
    num_nodes [M]                 atoms per molecule (without the dummy node) in THEIR featurization
    node_offsets [M+1]            node_features rows of molecule i: node_features[off[i]:off[i+1]]
    node_features [sum(n_i+1), 28]   uint8 (0/1)
    pair_offsets [M+1]            molecule i's (n_i+1)^2 pairs, row-major: [poff[i]:poff[i+1]]
    adjacency [sum (n_i+1)^2]     uint8
    distances [sum (n_i+1)^2]     float32 (their float64 distances as their collate casts them)
    embed_status [M]              what the seeded EmbedMolecule returned (0 ok, -1 failed: their
                                  code then featurizes the molecule WITH its hydrogens, 2D coordinates)
    conformer_seed []

outputs.npz keys (M molecules, D d_model, C n_output, T = sum(1 + n_i)):
    graph_rep [M,D]               the Generator's pooled representation (the input of
                                  generator.proj: mask-weighted mean / sum / dummy node)
    output [M,C]                  model(...) (the generator's projection)
    hidden_flat [T,D]             encoder output (after its final LayerNorm), rows 0..n_i
    hidden_offsets [M+1]
    alone_graph_rep, alone_output, alone_hidden_flat: each molecule in a batch of one
    batch_members [M], batch_offsets [B+1]   batch b is batch_members[off[b]:off[b+1]]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "mat_authors"

MOLECULES: list[str] = [
    # one heavy atom
    "C", "[Na+]", "O", "[13CH4]", "[NH4+]", "[Fe+2]",
    # two / three heavy atoms
    "CC", "CO", "C#N", "O=C=O", "[H][H]",
    # disconnected salts / mixtures
    "[Na+].[Cl-]", "CC(=O)[O-].[Na+]", "c1ccccc1.O", "C[N+](C)(C)C.[Br-]", "[O-2].[Ca+2]",
    # charges (a charge outside -1, 0, 1 takes their one-hot's last slot, +1)
    "C[N+](C)(C)C", "[O-][N+](=O)c1ccccc1", "CC(=O)[O-]",
    # isotopes
    "[2H]C([2H])([2H])O", "[13CH3]C(=O)O",
    # stereo
    "C/C=C/C", "C/C=C\\C", "C[C@H](N)C(=O)O", "F[C@@H](Cl)Br",
    # six heavy neighbours (their degree one-hot stops at 5)
    "FS(F)(F)(F)(F)F",
    # rings / aromatics
    "c1ccccc1", "C1CCCCC1", "C1CC1", "c1ccncc1", "c1ccc2ccccc2c1",
    "c1ccc2c(c1)[nH]c1ccccc12", "C1CCC2(CC1)CCCCC2", "c1ccc(cc1)-c1ccccc1", "C12C3C4C1C5C2C3C45",
    # long chains
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
    # ETKDG cannot embed it: their code then featurizes it with its hydrogens (2D coordinates)
    "C1#CC1",
]
EMBED_FAILS = "C1#CC1"

CONFORMER_SEED = 0  # the project's default conformer_seed
SHUFFLE_SEED = 20240515
BATCH_SIZES = [1, 3, 7, 16]  # then the rest in one batch

# The pretrained model's hyperparameters (README -> EXAMPLE.ipynb, "Prepare Model"); d_atom = 28 with
# add_dummy_node=True and one_hot_formal_charge=True (the notebook: "Formal charges are one-hot encoded
# to keep compatibility with the pre-trained weights").
PRETRAINED = dict(d_atom=28, d_model=1024, N=8, h=16, N_dense=1, lambda_attention=0.33, lambda_distance=0.33,
                  leaky_relu_slope=0.1, dense_output_nonlinearity="relu", distance_matrix_kernel="exp",
                  dropout=0.0, aggregation_type="mean")

# name -> make_model kwargs (small: d_atom as pretrained, 2 layers) and the torch seed
CONFIGS: dict[str, dict] = {
    # the published setting, narrower
    "pretrained_like": dict(params={**PRETRAINED, "d_model": 32, "N": 2, "h": 4}, seed=1),
    # make_model's default kernel (softmax over the row), two dense layers, tanh, sum pooling
    "softmax_tanh_sum": dict(params=dict(d_atom=28, d_model=24, N=2, h=3, N_dense=2, lambda_attention=0.5,
                                         lambda_distance=0.2, leaky_relu_slope=0.05,
                                         dense_output_nonlinearity="tanh", distance_matrix_kernel="softmax",
                                         dropout=0.1, aggregation_type="sum", n_output=2), seed=2),
    # no feed-forward layers (their PositionwiseFeedForward returns its input), the dummy node read out
    "dummy_readout": dict(params=dict(d_atom=28, d_model=16, N=2, h=2, N_dense=0, lambda_attention=0.2,
                                      lambda_distance=0.6, leaky_relu_slope=0.0, dense_output_nonlinearity="none",
                                      distance_matrix_kernel="exp", dropout=0.0, aggregation_type="dummy_node",
                                      n_output=3, init_type="small_normal_init"), seed=3),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def import_authors(src: Path):
    """Their modules, imported from their checkout (their code imports ``utils`` top-level)."""
    sys.path.insert(0, str(src))
    import torch
    import transformer
    from featurization import data_utils

    return torch, transformer, data_utils


def seed_their_embedding(data_utils, seed: int) -> list:
    """Patch their (unseeded) EmbedMolecule call with a seeded one; returns the list its results go to."""
    orig = data_utils.AllChem.EmbedMolecule
    results: list = []

    def seeded(mol, *args, **kwargs):
        kwargs.setdefault("randomSeed", seed)
        r = orig(mol, *args, **kwargs)
        results.append(int(r))
        return r

    data_utils.AllChem.EmbedMolecule = seeded
    return results


def featurize(data_utils, smiles: list[str], seed: int):
    results = seed_their_embedding(data_utils, seed)
    xs, status = [], []
    for s in smiles:
        before = len(results)
        x, _ = data_utils.load_data_from_smiles([s], [0.0], add_dummy_node=True, one_hot_formal_charge=True)
        if len(x) != 1:
            raise RuntimeError(f"their featurization dropped {s!r}")
        if len(results) != before + 1:
            raise RuntimeError(f"EmbedMolecule was not called exactly once for {s!r}")
        xs.append(x[0])
        status.append(results[-1])
    return xs, np.array(status, dtype=np.int64)


def featurization_arrays(xs, status, seed: int) -> dict:
    sizes = np.array([x[0].shape[0] for x in xs], dtype=np.int64)  # n + 1
    for x in xs:
        afm, adj, dist = x
        assert afm.shape[1] == 28 and adj.shape == dist.shape == (afm.shape[0],) * 2
        assert set(np.unique(afm)) <= {0.0, 1.0} and set(np.unique(adj)) <= {0.0, 1.0}
    return {
        "num_nodes": sizes - 1,
        "node_offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        "node_features": np.concatenate([x[0] for x in xs]).astype(np.uint8),
        "pair_offsets": np.concatenate([[0], np.cumsum(sizes * sizes)]).astype(np.int64),
        "adjacency": np.concatenate([x[1].reshape(-1) for x in xs]).astype(np.uint8),
        "distances": np.concatenate([x[2].reshape(-1).astype(np.float32) for x in xs]),
        "embed_status": status,
        "conformer_seed": np.array(seed, dtype=np.int64),
    }


def make_batches(m: int) -> list[list[int]]:
    rng = np.random.default_rng(SHUFFLE_SEED)
    order = rng.permutation(m).tolist()
    bounds = np.cumsum([0] + BATCH_SIZES + [m - sum(BATCH_SIZES)])
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def perturb(torch, model, seed: int) -> None:
    """Noise on every parameter so no term is near zero: LayerNorm gains around 1, biases
    drawn, weights (already Glorot-initialised by make_model) shaken a little."""
    g = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if name.endswith(".a_2"):
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith(".b_2") or name.endswith(".bias"):
                p.copy_(0.1 * noise)
            else:
                p += 0.05 * noise


def run_batch(torch, data_utils, model, xs, members):
    """Their collate and forward; the pooled representation is the input of generator.proj."""
    mols = [data_utils.Molecule(xs[i], [0.0], i) for i in members]
    adjacency, node_features, distances, _ = data_utils.mol_collate_func(mols)
    mask = torch.sum(torch.abs(node_features), dim=-1) != 0  # as their EXAMPLE.ipynb builds it
    seen = {}
    hook = model.generator.proj.register_forward_pre_hook(lambda mod, inp: seen.__setitem__("pooled", inp[0]))
    try:
        with torch.no_grad():
            out = model(node_features, mask, adjacency, distances, None)
            hidden = model.encode(node_features, mask, adjacency, distances, None)
    finally:
        hook.remove()
    pooled = seen["pooled"]
    return pooled.numpy(), out.numpy(), hidden.numpy(), mask.numpy()


def outputs_for(torch, data_utils, model, xs, batches, d: int, c: int) -> tuple[dict, dict]:
    m = len(xs)
    sizes = np.array([x[0].shape[0] for x in xs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    res = {k: np.zeros(shape, np.float32) for k, shape in (
        ("graph_rep", (m, d)), ("output", (m, c)), ("hidden_flat", (offsets[-1], d)),
        ("alone_graph_rep", (m, d)), ("alone_output", (m, c)), ("alone_hidden_flat", (offsets[-1], d)))}
    checks = {"dummy_in_mask": True, "pooled_is_aggregate_of_encoder_output": 0.0}
    agg = model.generator.aggregation_type
    for b in batches:
        pooled, out, hidden, mask = run_batch(torch, data_utils, model, xs, b)
        for row, i in enumerate(b):
            res["graph_rep"][i], res["output"][i] = pooled[row], out[row]
            res["hidden_flat"][offsets[i]:offsets[i + 1]] = hidden[row, :sizes[i]]
            checks["dummy_in_mask"] = bool(checks["dummy_in_mask"] and mask[row, 0] and mask[row].sum() == sizes[i])
            h = hidden[row, :sizes[i]].astype(np.float64)
            ref = {"mean": h.mean(0), "sum": h.sum(0), "dummy_node": h[0]}[agg]
            checks["pooled_is_aggregate_of_encoder_output"] = max(
                checks["pooled_is_aggregate_of_encoder_output"], float(np.abs(ref - pooled[row]).max()))
    for i in range(m):
        pooled, out, hidden, _ = run_batch(torch, data_utils, model, xs, [i])
        res["alone_graph_rep"][i], res["alone_output"][i] = pooled[0], out[0]
        res["alone_hidden_flat"][offsets[i]:offsets[i + 1]] = hidden[0, :sizes[i]]
    for k, v in res.items():
        if not np.isfinite(v).all():
            raise RuntimeError(f"non-finite values in {k}")
    res["num_nodes"] = sizes - 1
    res["hidden_offsets"] = offsets
    res["batch_members"] = np.array([i for b in batches for i in b], dtype=np.int64)
    res["batch_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in batches])]).astype(np.int64)
    return res, checks


def attention_terms(torch, transformer, data_utils, model, xs, members) -> dict:
    """Mean |lambda * term| of the three attention terms in the first layer, on one batch (each must matter)."""
    mols = [data_utils.Molecule(xs[i], [0.0], i) for i in members]
    adjacency, node_features, distances, _ = data_utils.mol_collate_func(mols)
    mask = torch.sum(torch.abs(node_features), dim=-1) != 0
    attn = model.encoder.layers[0].self_attn
    with torch.no_grad():
        x = model.encoder.layers[0].sublayer[0].norm(model.src_embed(node_features))
        attn(x, x, x, adjacency, distances, None, mask)
    la, ld, lg = attn.lambdas
    p_attn = attn.self_attn  # the softmax term, as their attention() returns it
    p_all = attn.attn  # the mixed weights
    adj = adjacency / (adjacency.sum(dim=-1).unsqueeze(2) + 1e-6)
    p_adj = adj.unsqueeze(1)
    p_dist = (p_all - la * p_attn - lg * p_adj) / ld
    real = mask.unsqueeze(1).unsqueeze(-1) & mask.unsqueeze(1).unsqueeze(2)
    def mean(t):
        return float((t.abs() * real).sum() / real.expand_as(t).sum())
    return {"attention": la * mean(p_attn), "distance": ld * mean(p_dist), "adjacency": lg * mean(p_adj)}


def save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def save_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


README = """# MAT authors' reference fixtures

Made by `scripts/make_mat_fixtures.py` from the authors' code (github.com/ardigen/MAT, `src/`,
transformer.py sha256 {tsha}, data_utils.py sha256 {dsha}) with torch {torch}, RDKit {rdkit}
in a throwaway virtualenv; see the script's docstring. Do not edit by hand; re-run the script.

- `molecules.smi`: {m} SMILES, line i = molecule i.
- `featurization.npz`: their `load_data_from_smiles(..., add_dummy_node=True, one_hot_formal_charge=True)`
  with the conformer seed {seed} patched into their (unseeded) `EmbedMolecule` call.
- `<config>/pretrained_weights.pt` (a `state_dict` of `make_model(**config.json)`, as the published
  weights are), `<config>/config.json`, `<config>/outputs.npz`, `<config>/reference.json`.
- `pretrained_shapes.json`: the state-dict shapes of the published model's hyperparameters.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mat-src", type=Path, required=True, help="the src/ folder of a checkout of ardigen/MAT")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    src: Path = args.mat_src.resolve()
    out_dir: Path = args.out.resolve()
    if not (src / "transformer.py").is_file() or not (src / "featurization" / "data_utils.py").is_file():
        raise SystemExit(f"{src}: not the src/ folder of ardigen/MAT (transformer.py, featurization/data_utils.py)")
    if ROOT in src.parents or src == ROOT:
        raise SystemExit("--mat-src must be outside the repository (nothing of theirs is copied into it)")

    torch, transformer, data_utils = import_authors(src)
    # their collate builds tensors from lists of arrays (slow, warned about by torch 2.x; the values are the same)
    warnings.filterwarnings("ignore", message="Creating a tensor from a list of numpy.ndarrays")
    import rdkit
    import sklearn

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    if len(MOLECULES) < 40 or len(set(MOLECULES)) != len(MOLECULES):
        raise SystemExit("need >= 40 distinct molecules")

    xs, status = featurize(data_utils, MOLECULES, CONFORMER_SEED)
    failed = [s for s, r in zip(MOLECULES, status) if r != 0]
    if failed != [EMBED_FAILS]:
        raise SystemExit(f"expected exactly {EMBED_FAILS!r} to fail embedding, got {failed}")
    feats = featurization_arrays(xs, status, CONFORMER_SEED)
    batches = make_batches(len(MOLECULES))

    versions = {"torch": torch.__version__, "numpy": np.__version__, "rdkit": rdkit.__version__,
                "scikit-learn": sklearn.__version__, "python": platform.python_version()}
    code = {"transformer.py": sha256(src / "transformer.py"),
            "featurization/data_utils.py": sha256(src / "featurization" / "data_utils.py"),
            "utils.py": sha256(src / "utils.py")}

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".tmp-", dir=out_dir.parent))
    try:
        (tmp / "molecules.smi").write_text("".join(s + "\n" for s in MOLECULES))
        (tmp / "README.md").write_text(README.format(
            tsha=code["transformer.py"][:12], dsha=code["featurization/data_utils.py"][:12], torch=torch.__version__,
            rdkit=rdkit.__version__, m=len(MOLECULES), seed=CONFORMER_SEED))
        save_npz(tmp / "featurization.npz", feats)
        torch.manual_seed(0)
        full = transformer.make_model(**PRETRAINED)
        shapes = {k: list(v.shape) for k, v in full.state_dict().items()}
        save_json(tmp / "pretrained_shapes.json", {"hyperparameters": PRETRAINED, "state_dict": shapes})
        del full

        summary = {}
        for name, spec in CONFIGS.items():
            params = spec["params"]
            torch.manual_seed(spec["seed"])
            model = transformer.make_model(**params)
            perturb(torch, model, spec["seed"])
            folder = tmp / name
            folder.mkdir()
            torch.save(model.state_dict(), folder / "pretrained_weights.pt")
            save_json(folder / "config.json", params)
            # outputs come from a model built again and loaded from the file, as their notebook does
            loaded = transformer.make_model(**params)
            state = torch.load(folder / "pretrained_weights.pt")
            own = loaded.state_dict()
            for k, v in state.items():
                own[k].copy_(v)
            loaded.eval()
            res, checks = outputs_for(torch, data_utils, loaded, xs, batches, params["d_model"],
                                      params.get("n_output", 1))
            save_npz(folder / "outputs.npz", res)
            terms = attention_terms(torch, transformer, data_utils, loaded, xs, batches[-1])
            diff = {k: float(np.abs(res[k] - res["alone_" + k]).max()) for k in ("graph_rep", "output", "hidden_flat")}
            ref = {
                "config_name": name, "make_model": params, "torch_seed": spec["seed"],
                "versions": versions, "code_sha256": code, "conformer_seed": CONFORMER_SEED,
                "shuffle_seed": SHUFFLE_SEED, "num_molecules": len(MOLECULES),
                "batch_sizes": [len(b) for b in batches],
                "embedding_failed": failed,
                "max_abs_diff_batched_vs_alone": diff,
                "checks": checks,
                "attention_terms_first_layer": terms,
                "graph_rep_is": f"the input of generator.proj: aggregation_type {params['aggregation_type']!r} over "
                                "the encoder output of the masked nodes (the dummy node included)",
                "state_dict_keys": {k: list(v.shape) for k, v in state.items()},
            }
            save_json(folder / "reference.json", ref)
            summary[name] = {"batched_vs_alone": max(diff.values()), **checks, "terms": terms,
                             "graph_rep_std": float(res["graph_rep"].std()), "output_std": float(res["output"].std())}

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
