"""WordNet's topic domains as a text-attributed graph: the ``wordnet_domains`` dataset.

A second WordNet testbed for the node-level family, next to ``wordnet``. There, 97% of
edges join same-label synsets, so a neighbour-majority vote is right 98% of the time and
the language model hardly matters. Here a node is a synset that WordNet puts in exactly one
topic domain (its ``;c`` pointer: law, military, chemistry, baseball, music, ...; 45
domains with at least 30 such synsets), its text is its lemmas and gloss (a gloss's leading
parenthesis, which often names the domain, dropped) and its label is the domain; the edges
are the WordNet pointers between two of them (domain pointers left out) and co-hyponymy (a
common hypernym with at most 8 such hyponyms). A third of the nodes have no edge, the
neighbour-majority vote is right for 85% of the others, and the LM's last layer reads the
domains clearly better than its embedding layer (``data/wordnet_domains/README.md``).

The files are shipped in ``data/wordnet_domains/`` (made by
``scripts/make_wordnet_domains.py`` from Debian's wordnet-base), so it loads offline.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from runfolder.io import file_digest, stable_hash
from workloads.datasets.entry import BaseDatasetConfig
from workloads.textgraphs.base import TextGraph, TextGraphError, TextGraphSource, with_split
from workloads.textgraphs.csv_graph import load_text_graph_csv

DOMAINS_DIR = Path(__file__).resolve().parents[2] / "data" / "wordnet_domains"
FILES = ("nodes.csv", "edges.csv")


class WordNetDomainsConfig(BaseDatasetConfig):
    """An entry naming the shipped graph (``{name: wordnet_domains, max_train_nodes: 600}``)."""

    kind: None = Field(default=None, description="null: 'name' is a registered dataset")
    max_train_nodes: int | None = Field(
        default=None, ge=10, description="a deterministic stratified subsample of the training nodes (every "
        "method sees the same); null: all")


def load_wordnet_domains(split_seed: int = 0) -> TextGraph:
    """The shipped graph with a stratified 60/20/20 split drawn with ``split_seed``."""
    g = load_text_graph_csv(DOMAINS_DIR / "nodes.csv", DOMAINS_DIR / "edges.csv", "random", seed=split_seed,
                            name="wordnet_domains")
    if g.dropped:
        raise TextGraphError(f"{DOMAINS_DIR}: the shipped graph has unusable rows: {g.dropped}")
    return g


def _read(cfg: WordNetDomainsConfig) -> TextGraph:
    g = load_wordnet_domains(cfg.split_seed)
    g.split = None
    return with_split(g, cfg)


def _fingerprint(cfg: WordNetDomainsConfig) -> str:
    return stable_hash([file_digest(DOMAINS_DIR / f) for f in FILES])


def _check(cfg: WordNetDomainsConfig) -> list[str]:
    missing = [f for f in FILES if not (DOMAINS_DIR / f).is_file()]
    return [f"{DOMAINS_DIR}: missing {', '.join(missing)} (made by scripts/make_wordnet_domains.py)"] if missing else []


WORDNET_DOMAINS = TextGraphSource(
    "wordnet_domains", "WordNet 3.0 synsets of 45 topic domains (lemmas + gloss), pointers and co-hyponymy as "
    "edges, the domain as the class: 4,395 synsets shipped in data/wordnet_domains (edge homophily 0.84)",
    _read, _fingerprint, _check, config_cls=WordNetDomainsConfig)

__all__ = ["DOMAINS_DIR", "WORDNET_DOMAINS", "WordNetDomainsConfig", "load_wordnet_domains"]
