"""Text-attributed graphs: nodes that carry text, edges between them, a class per node.

The data side of the node-level task family: WordNet (``wordnet``) and a user's
own graph from two CSV files (``csv_graph``), both into one :class:`TextGraph`.
"""
from workloads.textgraphs.base import TextGraph, TextGraphError
from workloads.textgraphs.csv_graph import load_text_graph_csv
from workloads.textgraphs.wordnet import LEXNAMES, load_wordnet_subset, read_wordnet, wordnet_dir

__all__ = ["LEXNAMES", "TextGraph", "TextGraphError", "load_text_graph_csv", "load_wordnet_subset",
           "read_wordnet", "wordnet_dir"]
