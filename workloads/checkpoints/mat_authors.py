"""``mat_authors``: the MAT authors' weights format (github.com/ardigen/MAT): a ``torch.save``\\ d
``state_dict`` of their ``make_model(**params)``, as their published ``pretrained_weights.pt`` is.

What a user can provide: the authors publish only the ``.pt`` file (README: "Pretrained weights
are available here", a Google Drive link) and the hyperparameters it was made with
(EXAMPLE.ipynb, "Prepare Model"). So the checkpoint ``path`` is a folder holding the weights
(``pretrained_weights.pt``, or its only ``*.pt``/``*.pth`` file), or the weights file itself,
and the hyperparameters are

* ``config.json`` beside the weights, when there is one: the keyword arguments of their
  ``make_model`` (their names, ``d_atom`` required), exactly as passed to it, so a key left
  out takes ``make_model``'s own default (:data:`MAKE_MODEL_DEFAULTS`);
* otherwise the published model's (:data:`PRETRAINED`): the .pt alone is the published file.

A mismatch between the hyperparameters and the tensors is reported by :meth:`MATAuthorsFormat.check`
as one line naming the weight and both shapes. The spec's ``conformer_seed`` option sets the seed
of the conformers the distances come from (their code has none; default 0).

Config mapping: :func:`read_config` (``make_model`` arguments → :class:`MATAuthorsConfig`).
Weight mapping: :func:`ours_name` (their ``state_dict`` name → the backbone's).
Input encoding: :class:`~workloads.backbones.mat_authors.MATAuthors`.
Their Generator (``generator.*``, the pretraining head) is left out, as their EXAMPLE.ipynb
leaves it out when it loads the weights: each task adds its own head.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import torch

from workloads.backbones.mat_authors import D_ATOM, MATAuthorsConfig
from workloads.checkpoints import FORMATS, CheckpointError

WEIGHT_FILE = "pretrained_weights.pt"
CONFIG_FILE = "config.json"

# make_model's signature (src/transformer.py), d_atom being required
MAKE_MODEL_DEFAULTS = dict(N=2, d_model=128, h=8, dropout=0.1, lambda_attention=0.3, lambda_distance=0.3,
                           trainable_lambda=False, N_dense=2, leaky_relu_slope=0.0, aggregation_type="mean",
                           dense_output_nonlinearity="relu", distance_matrix_kernel="softmax",
                           use_edge_features=False, n_output=1, control_edges=False, integrated_distances=False,
                           scale_norm=False, init_type="uniform", use_adapter=False, n_generator_layers=1)
# the published pretrained_weights.pt's hyperparameters (EXAMPLE.ipynb, "Prepare Model"; d_atom = 28 from
# load_data_from_df(..., one_hot_formal_charge=True) with the default dummy node)
PRETRAINED = dict(d_atom=28, d_model=1024, N=8, h=16, N_dense=1, lambda_attention=0.33, lambda_distance=0.33,
                  leaky_relu_slope=0.1, dense_output_nonlinearity="relu", distance_matrix_kernel="exp",
                  dropout=0.0, aggregation_type="mean")
# what the backbone cannot compute, with the value it needs
UNSUPPORTED = {"trainable_lambda": False, "use_edge_features": False, "scale_norm": False, "use_adapter": False}
# arguments that do not change the encoder (the head is the task's; control_edges is unused by their code;
# integrated_distances acts only with edge features, refused above)
IGNORED = ("n_output", "n_generator_layers", "control_edges", "integrated_distances")

# their name -> ours; \1 is a layer index
NAMES: list[tuple[str, str]] = [
    (r"src_embed\.lut\.(weight|bias)", r"atom_encoder.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.linears\.0\.(weight|bias)", r"layers.\1.attn.q_proj.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn\.linears\.1\.(weight|bias)", r"layers.\1.attn.k_proj.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn\.linears\.2\.(weight|bias)", r"layers.\1.attn.v_proj.\2"),
    (r"encoder\.layers\.(\d+)\.self_attn\.linears\.3\.(weight|bias)", r"layers.\1.attn.out_proj.\2"),
    (r"encoder\.layers\.(\d+)\.sublayer\.0\.norm\.a_2", r"layers.\1.ln1.weight"),
    (r"encoder\.layers\.(\d+)\.sublayer\.0\.norm\.b_2", r"layers.\1.ln1.bias"),
    (r"encoder\.layers\.(\d+)\.sublayer\.1\.norm\.a_2", r"layers.\1.ln2.weight"),
    (r"encoder\.layers\.(\d+)\.sublayer\.1\.norm\.b_2", r"layers.\1.ln2.bias"),
    (r"encoder\.norm\.a_2", "final_ln.weight"),
    (r"encoder\.norm\.b_2", "final_ln.bias"),
]
FFN = re.compile(r"encoder\.layers\.(\d+)\.feed_forward\.linears\.(\d+)\.(weight|bias)")  # fc{i + 1}
OURS_FFN = re.compile(r"layers\.(\d+)\.ffn\.fc(\d+)\.(weight|bias)")
LEFT_OUT = re.compile(r"generator\..*")


def ours_name(key: str) -> str | None:
    """The backbone's name for one of their ``state_dict`` keys; None for one it does not know."""
    m = FFN.fullmatch(key)
    if m:
        return f"layers.{m[1]}.ffn.fc{int(m[2]) + 1}.{m[3]}"
    for pattern, target in NAMES:
        if re.fullmatch(pattern, key):
            return re.sub(pattern, target, key)
    return None


def their_name(ours: str) -> str:
    """Their ``state_dict`` name of a backbone weight (for messages and :func:`save_mat_checkpoint`)."""
    m = OURS_FFN.fullmatch(ours)
    if m:
        return f"encoder.layers.{m[1]}.feed_forward.linears.{int(m[2]) - 1}.{m[3]}"
    for pattern, target in NAMES:
        groups = len(re.findall(r"\(", pattern))
        rx = re.escape(target)
        for g in range(1, groups + 1):
            rx = rx.replace(re.escape(f"\\{g}"), "(.+?)")
        hit = re.fullmatch(rx, ours)
        if hit:
            plain = pattern.replace("\\.", ".")
            for g, val in zip(re.findall(r"\(.*?\)", plain), hit.groups()):
                plain = plain.replace(g, val, 1)
            return plain
    return ours


def _weights_file(path: Path) -> Path | str:
    """The weights file of a checkpoint path, or the problem (a string)."""
    if path.is_file():
        return path
    if not path.is_dir():
        return "no such checkpoint folder or file"
    if (path / WEIGHT_FILE).is_file():
        return path / WEIGHT_FILE
    found = sorted(p for p in path.iterdir() if p.suffix in (".pt", ".pth") and p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        return f"no {WEIGHT_FILE} (nor another .pt/.pth file) in the checkpoint folder"
    return f"no {WEIGHT_FILE} and several .pt/.pth files in the checkpoint folder ({', '.join(p.name for p in found)})"


def _config_file(path: Path) -> Path | None:
    folder = path if path.is_dir() else path.parent
    return folder / CONFIG_FILE if (folder / CONFIG_FILE).is_file() else None


class MATAuthorsFormat:
    name = "mat_authors"
    backbones = ("mat",)

    def folder_problem(self, folder: Path) -> str | None:
        found = _weights_file(Path(folder))
        return found if isinstance(found, str) else None

    def weights_file(self, folder: Path) -> Path:
        found = _weights_file(Path(folder))
        if isinstance(found, str):
            raise CheckpointError(f"{folder}: {found}")
        return found

    def read_config(self, folder: Path, options=None) -> MATAuthorsConfig:
        seed = getattr(options, "conformer_seed", None)
        cfile = _config_file(Path(folder))
        return _read_config(str(cfile.resolve()) if cfile else None, 0 if seed is None else int(seed))

    def hyperparameters_source(self, folder: Path) -> str:
        cfile = _config_file(Path(folder))
        return CONFIG_FILE if cfile else "the published model's hyperparameters (no config.json beside the weights)"

    def _raw(self, folder: Path) -> dict[str, torch.Tensor]:
        wfile = self.weights_file(folder)
        try:
            state = torch.load(wfile, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:  # noqa: BLE001  (a corrupt or foreign file: say so in one line)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{wfile}: cannot read the weights ({first})") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{wfile}: not a state_dict (a dict of tensors), as make_model's is")
        return state

    def weight_shapes(self, folder: Path) -> dict[str, tuple[int, ...]]:
        return {ours: tuple(v.shape) for k, v in self._raw(folder).items()
                if not LEFT_OUT.fullmatch(k) and (ours := ours_name(k)) is not None}

    def read_weights(self, folder: Path) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in self._raw(folder).items():
            ours = None if LEFT_OUT.fullmatch(k) else ours_name(k)
            if ours is not None:
                out[ours] = v.detach().float().contiguous()
        return out

    def check(self, folder: Path, options=None) -> str | None:
        """The first problem with the checkpoint, in their names, or None."""
        folder = Path(folder)
        problem = self.folder_problem(folder)
        if problem:
            return problem
        try:
            cfg = self.read_config(folder, options)
            raw = self._raw(folder)
        except CheckpointError as e:
            return str(e)
        from workloads.backbones.mat_authors import MATAuthors

        with torch.device("meta"):
            model = MATAuthors(cfg)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "mask_embedding"}
        source = self.hyperparameters_source(folder)
        seen = set()
        for k, v in raw.items():
            if LEFT_OUT.fullmatch(k):
                continue
            ours, shape = ours_name(k), tuple(v.shape)
            if ours is None or ours not in expected:
                return f"unexpected weight '{k}' (shape {list(shape)}) for {source}"
            if shape != expected[ours]:
                return f"weight '{k}' has shape {list(shape)}; {source} implies {list(expected[ours])}"
            seen.add(ours)
        for ours, want in expected.items():
            if ours not in seen:
                return f"weight '{their_name(ours)}' (shape {list(want)}) is missing; {source} implies it"
        return None


@lru_cache(maxsize=32)
def _read_config(config_file: str | None, conformer_seed: int) -> MATAuthorsConfig:
    if config_file is None:
        params = {**MAKE_MODEL_DEFAULTS, **PRETRAINED}
    else:
        path = Path(config_file)
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"cannot read {path}: {e}") from None
        if not isinstance(raw, dict):
            raise CheckpointError(f"{path}: not a JSON object of make_model's keyword arguments")
        unknown = sorted(set(raw) - set(MAKE_MODEL_DEFAULTS) - {"d_atom"})
        if unknown:
            raise CheckpointError(f"config.json: '{unknown[0]}' is not an argument of make_model (known: d_atom, "
                                  f"{', '.join(MAKE_MODEL_DEFAULTS)})")
        if "d_atom" not in raw:
            raise CheckpointError("config.json: d_atom is missing (make_model's first argument; 28 for the "
                                  "published featurization)")
        params = {**MAKE_MODEL_DEFAULTS, **raw}
    for field, needed in UNSUPPORTED.items():
        if params[field] != needed:
            raise CheckpointError(f"config.json sets {field} = {params[field]!r}; this backbone computes only "
                                  f"{field} = {needed!r}")
    if params["d_atom"] != D_ATOM:
        raise CheckpointError(f"config.json sets d_atom = {params['d_atom']!r}; this backbone computes the published "
                              f"featurization only (dummy node, one-hot formal charge: d_atom = {D_ATOM})")
    from pydantic import ValidationError

    try:
        return MATAuthorsConfig(
            hidden_dim=params["d_model"], num_layers=params["N"], num_heads=params["h"], ffn_dim=params["d_model"],
            dropout=params["dropout"], attn_dropout=params["dropout"], d_atom=params["d_atom"],
            lambda_attention=params["lambda_attention"], lambda_distance=params["lambda_distance"],
            distance_kernel=params["distance_matrix_kernel"], n_dense=params["N_dense"],
            leaky_relu_slope=params["leaky_relu_slope"],
            dense_output_nonlinearity=params["dense_output_nonlinearity"],
            aggregation=params["aggregation_type"], init_type=params["init_type"], conformer_seed=conformer_seed,
        )
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        theirs = {"hidden_dim": "d_model", "num_layers": "N", "num_heads": "h", "n_dense": "N_dense",
                  "distance_kernel": "distance_matrix_kernel", "aggregation": "aggregation_type",
                  "ffn_dim": "d_model", "attn_dropout": "dropout"}
        loc = ".".join(theirs.get(str(x), str(x)) for x in first["loc"]) or "hyperparameters"
        raise CheckpointError(f"config.json: {loc}: {first['msg']}") from None


FORMATS.add("mat_authors", MATAuthorsFormat())


def config_json(cfg: MATAuthorsConfig) -> dict:
    """``cfg`` as make_model's keyword arguments (the inverse of :func:`read_config`)."""
    return {"d_atom": cfg.d_atom, "d_model": cfg.hidden_dim, "N": cfg.num_layers, "h": cfg.num_heads,
            "N_dense": cfg.n_dense, "lambda_attention": cfg.lambda_attention, "lambda_distance": cfg.lambda_distance,
            "leaky_relu_slope": cfg.leaky_relu_slope, "dense_output_nonlinearity": cfg.dense_output_nonlinearity,
            "distance_matrix_kernel": cfg.distance_kernel, "dropout": cfg.dropout,
            "aggregation_type": cfg.aggregation, "init_type": cfg.init_type}


def save_mat_checkpoint(model, folder: Path) -> Path:
    """Write ``model`` (a :class:`~workloads.backbones.mat_authors.MATAuthors`) as a ``pretrained_weights.pt``
    under their names, with ``config.json`` (make_model's arguments), the inverse of :func:`read_config`
    and :func:`ours_name`. For benchmarks and tests that need a checkpoint of a given size; not a
    substitute for the fixtures made by the authors' code."""
    from workloads.util import atomic_write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {their_name(k): v.detach().contiguous().cpu() for k, v in model.state_dict().items()
             if k != "mask_embedding" and not k.startswith(("slots.", "input_prompt."))}
    torch.save(state, folder / WEIGHT_FILE)
    atomic_write_json(folder / CONFIG_FILE, config_json(model.cfg))
    return folder
