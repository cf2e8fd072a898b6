"""``hf_graphormer``: a ``save_pretrained`` folder of Hugging Face's ``GraphormerModel`` or
``GraphormerForGraphClassification`` (``config.json`` with ``model_type: graphormer``, and
``model.safetensors`` or ``pytorch_model.bin``), e.g. the papers' ``graphormer-base-pcqm4mv2``.

Config mapping: :func:`read_config` (HF ``GraphormerConfig`` → :class:`HFGraphormerConfig`).
Weight mapping: :data:`NAMES` (HF name → the backbone's, with three reshapes).
Input encoding: :class:`~workloads.backbones.hf_graphormer.HFGraphormer`.
The checkpoint's classification head (``classifier.*``) is left out: each task adds its own. So is
``graph_encoder.final_layer_norm``, which HF creates with ``pre_layernorm`` but never applies.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import torch

from workloads.backbones.hf_graphormer import HFGraphormerConfig
from workloads.checkpoints import FORMATS, CheckpointError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# HF name (after the model's prefix) -> the backbone's name; \1 is a layer index.
NAMES: list[tuple[str, str]] = [
    (r"graph_encoder\.graph_node_feature\.atom_encoder\.weight", "atom_encoder.weight"),
    (r"graph_encoder\.graph_node_feature\.in_degree_encoder\.weight", "in_degree_encoder.weight"),
    (r"graph_encoder\.graph_node_feature\.out_degree_encoder\.weight", "out_degree_encoder.weight"),
    (r"graph_encoder\.graph_node_feature\.graph_token\.weight", "graph_token"),
    (r"graph_encoder\.graph_attn_bias\.edge_encoder\.weight", "edge_encoder.weight"),
    (r"graph_encoder\.graph_attn_bias\.edge_dis_encoder\.weight", "edge_dis"),
    (r"graph_encoder\.graph_attn_bias\.spatial_pos_encoder\.weight", "spatial_bias.weight"),
    (r"graph_encoder\.graph_attn_bias\.graph_token_virtual_distance\.weight", "token_bias"),
    (r"graph_encoder\.emb_layer_norm\.(weight|bias)", r"emb_ln.\1"),
    (r"graph_encoder\.layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)",
     r"layers.\1.attn.\2.\3"),
    (r"graph_encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"layers.\1.ln1.\2"),
    (r"graph_encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"layers.\1.ln2.\2"),
    (r"graph_encoder\.layers\.(\d+)\.(fc1|fc2)\.(weight|bias)", r"layers.\1.ffn.\2.\3"),
    (r"lm_head_transform_weight\.(weight|bias)", r"head_transform.\1"),
    (r"layer_norm\.(weight|bias)", r"final_ln.\1"),
]
PREFIXES = ("encoder.", "graphormer.", "")  # ForGraphClassification nests the model under "encoder."; "graphormer." is its base_model_prefix
# the task head is the task's own; HF creates graph_encoder.final_layer_norm with pre_layernorm but
# its forward never applies it (modeling_graphormer.py, GraphormerGraphEncoder), so neither does the backbone
LEFT_OUT = re.compile(r"classifier\..*|((encoder|graphormer)\.)?lm_output_learned_bias"
                      r"|((encoder|graphormer)\.)?graph_encoder\.final_layer_norm\..*")

# the HF fields the backbone cannot compute, with the value it needs
UNSUPPORTED = {"layerdrop": 0.0, "q_noise": 0.0, "embed_scale": None, "kdim": None, "vdim": None,
               "bias": True, "self_attention": True}


def _ours(hf_key: str) -> str | None:
    """The backbone's name for a checkpoint key; None for one it does not know."""
    for prefix in PREFIXES:
        if not hf_key.startswith(prefix):
            continue
        rest = hf_key[len(prefix):]
        for pattern, target in NAMES:
            if re.fullmatch(pattern, rest):
                return re.sub(pattern, target, rest)
    return None


def _reshape(ours: str, t: torch.Tensor, heads: int) -> torch.Tensor:
    if ours == "graph_token":
        return t.reshape(1, 1, -1)  # HF Embedding(1, D)
    if ours == "token_bias":
        return t.reshape(-1)  # HF Embedding(1, H)
    if ours == "edge_dis":
        return t.reshape(-1, heads, heads)  # HF Embedding(num_edge_dis * H * H, 1), read as [num_edge_dis, H, H]
    return t


def _folder_problem(folder: Path, weights: bool = True) -> str | None:
    if not folder.is_dir():
        return "no such checkpoint folder"
    if not (folder / "config.json").is_file():
        return "no config.json in the checkpoint folder"
    if weights and not any((folder / w).is_file() for w in WEIGHT_FILES):
        extra = " (sharded checkpoints are not supported)" if any(folder.glob("*.index.json")) else ""
        return f"no {' or '.join(WEIGHT_FILES)} in the checkpoint folder{extra}"
    return None


class HFGraphormerFormat:
    name = "hf_graphormer"
    backbones = ("graphormer",)

    def folder_problem(self, folder: Path) -> str | None:
        return _folder_problem(Path(folder))

    def weights_file(self, folder: Path) -> Path:
        problem = _folder_problem(Path(folder))
        if problem:
            raise CheckpointError(f"{folder}: {problem}")
        return next(Path(folder) / w for w in WEIGHT_FILES if (Path(folder) / w).is_file())

    def read_config(self, folder: Path, options=None) -> HFGraphormerConfig:
        return _read_config(str(Path(folder).resolve()), getattr(options, "spatial_pos_max", None))

    def _raw(self, folder: Path) -> dict[str, torch.Tensor]:
        wfile = self.weights_file(folder)
        if wfile.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(wfile))
        return torch.load(wfile, map_location="cpu", weights_only=True, mmap=True)

    def _raw_shapes(self, folder: Path) -> dict[str, tuple[int, ...]]:
        wfile = self.weights_file(folder)
        if wfile.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(wfile), framework="pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        return {k: tuple(v.shape) for k, v in self._raw(folder).items()}

    def read_weights(self, folder: Path) -> dict[str, torch.Tensor]:
        heads = self.read_config(folder).num_heads
        out = {}
        for k, v in self._raw(folder).items():
            ours = None if LEFT_OUT.fullmatch(k) else _ours(k)
            if ours is not None:
                out[ours] = _reshape(ours, v, heads).float().contiguous()
        return out

    def check(self, folder: Path, options=None) -> str | None:
        """The first problem with the checkpoint, in the checkpoint's own names, or None."""
        problem = _folder_problem(Path(folder), weights=False)
        if problem:
            return problem
        try:
            cfg = self.read_config(folder, options)
        except CheckpointError as e:
            return str(e)
        problem = _folder_problem(Path(folder))
        if problem:
            return problem
        from workloads.backbones.hf_graphormer import HFGraphormer

        with torch.device("meta"):
            model = HFGraphormer(cfg)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "mask_embedding"}
        seen = {}
        for k, shape in self._raw_shapes(folder).items():
            if LEFT_OUT.fullmatch(k):
                continue
            ours = _ours(k)
            if ours is None or ours not in expected:
                return f"unexpected weight '{k}' (shape {list(shape)})"
            want = expected[ours]
            if int(torch.Size(shape).numel()) != int(torch.Size(want).numel()) or (
                    ours not in ("graph_token", "token_bias", "edge_dis") and tuple(shape) != want):
                return f"weight '{k}' has shape {list(shape)}; config.json implies {list(_hf_shape(ours, want))}"
            seen[ours] = k
        for ours, want in expected.items():
            if ours not in seen:
                return f"weight '{_hf_name(ours)}' (shape {list(_hf_shape(ours, want))}) is missing"
        return None


def _hf_shape(ours: str, shape: tuple) -> tuple:
    if ours == "graph_token":
        return (1, shape[-1])
    if ours == "token_bias":
        return (1, shape[0])
    if ours == "edge_dis":
        return (shape[0] * shape[1] * shape[2], 1)
    return shape


def _hf_name(ours: str) -> str:
    """The checkpoint name (GraphormerModel's) of a backbone weight, for messages."""
    for pattern, target in NAMES:
        plain = pattern.replace("\\.", ".")
        groups = re.findall(r"\((.*?)\)", plain)
        if not groups and target == ours:
            return plain
        rx = re.escape(target)
        for g in range(1, len(groups) + 1):
            rx = rx.replace(re.escape(f"\\{g}"), "(.+?)")
        m = re.fullmatch(rx, ours)
        if m:
            out = plain
            for g, val in zip(groups, m.groups()):
                out = out.replace(f"({g})", val, 1)
            return out
    return ours


@lru_cache(maxsize=32)
def _read_config(folder: str, spatial_pos_max: int | None) -> HFGraphormerConfig:
    path = Path(folder) / "config.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    if raw.get("model_type") != "graphormer":
        raise CheckpointError(f"config.json has model_type {raw.get('model_type')!r}, not 'graphormer'")
    for field, needed in UNSUPPORTED.items():
        if field in raw and raw[field] != needed:
            raise CheckpointError(f"config.json sets {field} = {raw[field]!r}; this backbone computes only "
                                  f"{field} = {needed!r}")
    if raw.get("multi_hop_max_dist", 5) == 0 and raw.get("edge_type", "multi_hop") == "multi_hop":
        raise CheckpointError("config.json sets multi_hop_max_dist = 0 (whole paths); only truncated paths "
                              "(multi_hop_max_dist >= 1) are supported")
    get = lambda k, d: raw.get(k, d)  # noqa: E731  HF GraphormerConfig's defaults where a key is absent
    from pydantic import ValidationError

    try:
        return HFGraphormerConfig(
            hidden_dim=get("embedding_dim", get("hidden_size", 768)),
            num_layers=get("num_hidden_layers", 12),
            num_heads=get("num_attention_heads", 32),
            ffn_dim=get("ffn_embedding_dim", 768),
            dropout=get("dropout", 0.1),
            attn_dropout=get("attention_dropout", 0.1),
            activation_dropout=get("activation_dropout", 0.1),
            max_degree=get("num_in_degree", 512) - 1,
            num_atoms=get("num_atoms", 512 * 9),
            num_edges=get("num_edges", 512 * 3),
            num_in_degree=get("num_in_degree", 512),
            num_out_degree=get("num_out_degree", 512),
            num_spatial=get("num_spatial", 512),
            num_edge_dis=get("num_edge_dis", 128),
            edge_type=get("edge_type", "multi_hop"),
            multi_hop_max_dist=get("multi_hop_max_dist", 5),
            spatial_pos_max=spatial_pos_max if spatial_pos_max is not None else get("spatial_pos_max", 1024),
            pre_layernorm=get("pre_layernorm", False),
            encoder_normalize_before=get("encoder_normalize_before", False),
            activation_fn=get("activation_fn", "gelu"),
        )
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        raise CheckpointError(f"config.json: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


FORMATS.add("hf_graphormer", HFGraphormerFormat())


def save_hf_checkpoint(model, folder: Path) -> Path:
    """Write ``model`` (an :class:`HFGraphormer`) as a ``GraphormerModel`` ``save_pretrained``
    folder: ``config.json`` and ``model.safetensors`` under HF's names, the inverse of
    :func:`read_config` and :data:`NAMES`. For benchmarks and tests that need a checkpoint of
    a given size (costs do not depend on weight values); not a substitute for the fixtures
    made by the reference code."""
    from safetensors.torch import save_file

    from workloads.util import atomic_write_json

    cfg = model.cfg
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hf = {
        "model_type": "graphormer", "architectures": ["GraphormerModel"],
        "embedding_dim": cfg.hidden_dim, "hidden_size": cfg.hidden_dim, "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads, "ffn_embedding_dim": cfg.ffn_dim, "dropout": cfg.dropout,
        "attention_dropout": cfg.attn_dropout, "activation_dropout": cfg.activation_dropout,
        "num_atoms": cfg.num_atoms, "num_edges": cfg.num_edges, "num_in_degree": cfg.num_in_degree,
        "num_out_degree": cfg.num_out_degree, "num_spatial": cfg.num_spatial, "num_edge_dis": cfg.num_edge_dis,
        "edge_type": cfg.edge_type, "multi_hop_max_dist": cfg.multi_hop_max_dist,
        "spatial_pos_max": cfg.spatial_pos_max, "pre_layernorm": cfg.pre_layernorm,
        "encoder_normalize_before": cfg.encoder_normalize_before, "activation_fn": cfg.activation_fn,
    }
    state = {}
    for k, v in model.state_dict().items():
        if k == "mask_embedding" or k.startswith(("slots.", "input_prompt.")):
            continue
        state[_hf_name(k)] = v.detach().reshape(_hf_shape(k, tuple(v.shape))).contiguous().cpu()
    save_file(state, str(folder / "model.safetensors"))
    atomic_write_json(folder / "config.json", hf)
    return folder
