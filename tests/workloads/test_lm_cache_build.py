"""How the LM-state cache is built: texts in token-length order, shards a killed build
resumes from, progress with counts and rate, and the Ray Data builder giving the same
states as the in-process one (on the shipped WordNet subset and a decoder-only model)."""
import numpy as np
import pytest

from workloads.backbones.lm import DEFAULT_LM, lm_path
from workloads.textgraphs import load_wordnet_subset
from workloads.textgraphs.lm_cache import LocalBuilder, cache_file, cached_states, length_order

from tests.workloads.test_lm_cache import tiny_decoder

TEXTS = ["a dog", "a puppy is a young dog that plays all day in the garden", "the stock market fell today",
         "shares", "an old cat sleeps by the warm fire every evening", "rain", "a small boat sails on the lake",
         "markets rallied after the central bank cut its rates by half a point"]


class Collect:
    """A progress sink keeping every state it is shown."""

    def __init__(self):
        self.seen = []

    def __call__(self, state, final):
        self.seen.append((state.done, state.done_before, final, state.line()))


class Dies(LocalBuilder):
    """Builds ``shards`` shards, then is killed."""

    def __init__(self, shards, **kw):
        super().__init__(**kw)
        self.left = shards

    def build(self, job, progress):
        def advance(n, note=None):
            type(progress).advance(progress, n, note)
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt("killed")
        progress.advance = advance
        super().build(job, progress)


def test_texts_go_longest_first():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(lm_path(DEFAULT_LM), local_files_only=True)
    order = length_order(tok, TEXTS, max_length=10)
    lengths = [min(len(tok(TEXTS[i])["input_ids"]), 10) for i in order]
    assert lengths == sorted(lengths, reverse=True) and sorted(order) == list(range(len(TEXTS)))
    assert TEXTS[order[-1]] in ("rain", "shares")  # the shortest last; the cut at 10 ties the long ones


def test_a_killed_build_resumes_from_its_shards_and_equals_a_whole_one(tmp_path):
    whole, _ = cached_states(TEXTS, [0, 6], tmp_path / "whole", max_length=32)
    path = cache_file(TEXTS, [0, 6], tmp_path / "killed", max_length=32)
    with pytest.raises(KeyboardInterrupt):
        cached_states(TEXTS, [0, 6], tmp_path / "killed", max_length=32, builder=Dies(1, shard_nodes=3))
    shards = sorted(path.with_suffix(".shards").glob("part-*.npz"))
    assert not path.exists() and len(shards) == 1  # nothing half-written: one finished shard, no cache file
    sink = Collect()
    states, info = cached_states(TEXTS, [0, 6], tmp_path / "killed", max_length=32, progress=sink,
                                 builder=LocalBuilder(shard_nodes=3))
    assert info["built"] and info["resumed_nodes"] == 3
    assert [s[:3] for s in sink.seen] == [(6, 3, False), (8, 3, False), (8, 3, True)]  # only the rest was pooled
    assert "8/8 nodes (100%)" in sink.seen[-1][3] and "nodes/s" in sink.seen[-1][3] and "3 found done" in sink.seen[-1][3]
    np.testing.assert_allclose(states, whole, atol=1e-5)
    assert not path.with_suffix(".shards").exists()  # assembled, then cleared


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.e2e
def test_ray_data_builds_the_states_the_in_process_builder_builds(tmp_path, local_ray):
    from workloads.textgraphs.lm_cache_ray import RayDataBuilder

    texts = load_wordnet_subset().texts[:240]
    sink = Collect()
    ray_states, info = cached_states(texts, [0, 3, 6], tmp_path / "ray", max_length=32, progress=sink,
                                     builder=RayDataBuilder(shard_nodes=64, actors=2))
    local, _ = cached_states(texts, [0, 3, 6], tmp_path / "local", max_length=32)
    assert info["builder"] == "ray-data" and isinstance(ray_states, np.memmap)
    assert "2 Ray Data actors" in sink.seen[-1][3] and sink.seen[-1][0] == 240
    counts = [s[0] for s in sink.seen]
    assert len(counts) >= 3 and counts == sorted(counts)  # counts as shards come back, then the end
    np.testing.assert_allclose(ray_states, local, atol=1e-5)
    # a decoder-only model (left of the mask: its pad token is its eos)
    folder = tiny_decoder(tmp_path / "llama")
    a, _ = cached_states(texts[:50], [0, 2], tmp_path / "ray", lm=str(folder), max_length=32,
                         builder=RayDataBuilder(shard_nodes=16, actors=2))
    b, _ = cached_states(texts[:50], [0, 2], tmp_path / "local", lm=str(folder), max_length=32)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_ray_data_pool_is_sized_by_what_is_free_and_is_empty_when_nothing_is(monkeypatch):
    """An actor pool nothing can be placed for would wait forever: its size is 0 then (and the
    build pools in the driver). GPU actors need their CPUs too."""
    import ray

    from workloads.textgraphs.lm_cache_ray import RayDataBuilder

    free = {"CPU": 8.0, "GPU": 1.0}
    monkeypatch.setattr(ray, "available_resources", lambda: dict(free))
    assert RayDataBuilder(cpus_per_actor=2).pool_size(100_000) == 4
    assert RayDataBuilder(cpus_per_actor=4, use_gpu=True, gpus_per_actor=0.25).pool_size(100_000) == 2  # CPUs bind
    assert RayDataBuilder(cpus_per_actor=1, use_gpu=True, gpus_per_actor=0.25).pool_size(100_000) == 4  # GPU shares
    assert RayDataBuilder(cpus_per_actor=1, shard_nodes=1024).pool_size(1500) == 2  # no more actors than shards
    free.update(CPU=0.0)
    assert RayDataBuilder().pool_size(100_000) == 0


def test_the_build_pools_in_the_driver_where_actors_cannot_win(monkeypatch):
    """A CPU cluster of one machine (actors would share the driver's cores), a CPU build
    smaller than the actors' start-up is worth, no room: in the driver, saying why. GPUs,
    or given actors: Ray Data."""
    import ray

    from workloads.textgraphs import lm_cache_ray
    from workloads.textgraphs.lm_cache_ray import RayDataBuilder

    free, one = {"CPU": 8.0, "GPU": 2.0}, [True]
    monkeypatch.setattr(ray, "available_resources", lambda: dict(free))
    monkeypatch.setattr(lm_cache_ray, "_one_machine", lambda: one[0])
    size, why = RayDataBuilder().where(100_000)
    assert size == 0 and why.startswith("one machine")
    assert RayDataBuilder(use_gpu=True).where(100_000) == (2, "")  # a GPU each
    assert RayDataBuilder(actors=3).where(10) == (3, "")
    one[0] = False
    assert RayDataBuilder().where(100_000) == (8, "")
    size, why = RayDataBuilder().where(5_000)
    assert size == 0 and why.startswith("5,000 nodes")
    free.update(CPU=0.0)
    size, why = RayDataBuilder().where(100_000)
    assert size == 0 and why.startswith("no room")


def test_an_actor_that_cannot_see_the_drivers_cache_folder_fails_saying_so(tmp_path):
    """Actors on another machine write where the driver assembles: storage.cache_dir must be
    shared. An actor finding no marker (or another build's) fails before loading the model."""
    from workloads.textgraphs.lm_cache_ray import Pooler, check_marker, write_marker

    token = write_marker(tmp_path / "shards")
    check_marker(tmp_path / "shards", token)
    with pytest.raises(RuntimeError, match="not the driver's .no build marker there.*storage.cache_dir"):
        Pooler(DEFAULT_LM, 32, [0], str(tmp_path / "elsewhere"), 8, 1, False, token)
    with pytest.raises(RuntimeError, match="another build marker"):
        check_marker(tmp_path / "shards", "0" * 32)


@pytest.mark.e2e
def test_a_ray_data_build_whose_actors_cannot_see_the_cache_folder_fails_saying_so(tmp_path, local_ray,
                                                                                   monkeypatch):
    """The driver's marker never reaches the actors (as on a node without the shared storage):
    the build stops at the actors' start with the reason, and no cache file is left."""
    from workloads.textgraphs import lm_cache_ray
    from workloads.textgraphs.lm_cache_ray import RayDataBuilder

    monkeypatch.setattr(lm_cache_ray, "write_marker", lambda shard_dir: "a token no actor can see")
    with pytest.raises(Exception, match="storage.cache_dir must be on storage every Ray node shares"):
        cached_states(TEXTS, [0], tmp_path, max_length=16, builder=RayDataBuilder(actors=1, shard_nodes=4))
    assert not cache_file(TEXTS, [0], tmp_path, max_length=16).exists()


def test_shards_left_by_a_build_killed_after_its_rename_are_cleared(tmp_path):
    states, info = cached_states(TEXTS[:3], [0], tmp_path, max_length=16)
    left = cache_file(TEXTS[:3], [0], tmp_path, max_length=16).with_suffix(".shards")
    left.mkdir()
    (left / "part-000000000-3-1.npz").write_bytes(b"stale")
    again, info = cached_states(TEXTS[:3], [0], tmp_path, max_length=16)
    assert not info["built"] and not left.exists()
    np.testing.assert_array_equal(again, states)


def test_the_in_process_builder_keeps_to_the_threads_it_was_given(monkeypatch, tmp_path):
    """In a Ray worker (OMP_NUM_THREADS = its num_cpus) a trial building a cache itself
    pools on its own CPUs, not the node's; elsewhere on every CPU it may use."""
    import torch

    from workloads.textgraphs.lm_cache import allowed_threads, usable_cpus

    threads = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (threads.append(n), real(n)))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cached_states(TEXTS[:2], [0], tmp_path, max_length=16)
    assert threads[0] == 1 and allowed_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert allowed_threads() == usable_cpus() >= 1


@pytest.mark.e2e
def test_the_ray_builder_on_one_machine_pools_here_and_says_so(tmp_path, local_ray):
    """This machine's Ray: actors would share its cores and pay their start-up; the cache
    records who really pooled."""
    from workloads.textgraphs.lm_cache_ray import RayDataBuilder

    sink = Collect()
    _, info = cached_states(TEXTS, [0], tmp_path, max_length=16, progress=sink, builder=RayDataBuilder())
    assert info["builder"] == "in-process" and "[one machine: pooling in this process" in sink.seen[-1][3]
