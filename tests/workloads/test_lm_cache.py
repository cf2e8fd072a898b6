"""LM states of node texts: the packaged MiniLM offline, any AutoModel folder
(a decoder-only one too), and a disk cache built once and shared."""
import threading

import numpy as np
import pytest

from workloads.textgraphs.lm_cache import DEFAULT_LM, cached_states, lm_path

TEXTS = ["a dog is an animal", "a puppy is a young dog", "the stock market fell today", "shares dropped sharply"]


def cosine(x):
    v = x / np.linalg.norm(x, axis=1, keepdims=True)
    return v @ v.T


def test_packaged_minilm_loads_offline_and_states_carry_meaning(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (lm_path(DEFAULT_LM) / "model.safetensors").is_file()
    states, info = cached_states(TEXTS, [0, 6], tmp_path)
    assert states.shape == (2, 4, 384) and info["built"] and isinstance(states, np.memmap)
    sim = cosine(np.asarray(states[1]))  # the last block
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[2, 3] > sim[1, 3] + 0.3  # dogs with dogs, markets with markets
    again, info2 = cached_states(TEXTS, [0, 6], tmp_path)
    assert not info2["built"] and np.array_equal(again, states) and info2["path"] == info["path"]
    # another text or another layer list is another cache entry
    _, other = cached_states(TEXTS[:3] + ["shares rose"], [0, 6], tmp_path)
    _, layers = cached_states(TEXTS, [3], tmp_path)
    assert len({info["path"], other["path"], layers["path"]}) == 3 and other["built"] and layers["built"]
    with pytest.raises(ValueError, match="out of range: the model has layers 0..6"):
        cached_states(TEXTS, [7], tmp_path)


def tiny_decoder(folder):
    """A randomly initialised two-layer Llama and a tokenizer, saved like any hub model."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaModel

    tok = AutoTokenizer.from_pretrained(lm_path(DEFAULT_LM), local_files_only=True)
    cfg = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256)
    LlamaModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_any_automodel_folder_works_decoder_only_too(tmp_path):
    folder = tiny_decoder(tmp_path / "llama")
    states, info = cached_states(TEXTS, [0, 1, 2], tmp_path / "cache", lm=str(folder))
    assert states.shape == (3, 4, 32) and np.isfinite(states).all()
    # padding does not leak into the mean: a text alone gives the same state as in a batch
    alone, _ = cached_states(TEXTS[:1], [0, 1, 2], tmp_path / "cache", lm=str(folder))
    assert np.allclose(alone[:, 0], states[:, 0], atol=1e-5)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        cached_states(TEXTS, [0], tmp_path, lm=str(tmp_path / "nope"))


def test_concurrent_callers_wait_on_one_builder(tmp_path):
    results = []

    def ask():
        results.append(cached_states(TEXTS, [1], tmp_path)[1])

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["built"] for r in results) == [False, False, True]
    assert len({r["path"] for r in results}) == 1


def test_a_loaded_model_builds_the_cache_without_loading_another(tmp_path):
    from workloads.backbones.lm import LanguageModel, LMConfig

    fresh, _ = cached_states(TEXTS, [0, 6], tmp_path / "a", max_length=32)
    lm = LanguageModel(LMConfig(max_length=32)).train()
    states, info = cached_states(TEXTS, [0, 6], tmp_path / "b", max_length=32, model=lm)
    assert info["built"] and np.array_equal(states, fresh)
    assert lm.training  # its mode is left as it was
    with pytest.raises(ValueError, match="is not the one the cache is keyed by"):
        cached_states(TEXTS, [0, 6], tmp_path / "c", max_length=64, model=lm)
