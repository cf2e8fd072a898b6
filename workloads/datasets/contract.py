"""The data-source contract: what a dataset source declares and what it does.

A dataset source is one registered row of :data:`workloads.datasets.sources.SOURCES`,
under its ``name``. Either it *is* a dataset (``freesolv``, ``ogbg-molhiv``,
``wordnet``: an entry names it with ``name``), or it is a *kind* (``csv``,
``text_graph_csv``: an entry writes ``kind: <name>``, gives its dataset a name of its
own, and names the user's files it reads). Adding a kind is one module (its config
model and its source object) plus one registry row
(:func:`workloads.datasets.sources.register_source`); nothing else in the workloads,
the spec or the reports knows a source by name.

The families differ in how the data comes out: molecular sources (family
``graph_property``) build featurized splits (:class:`MoleculeDataSource`), text-graph
sources (family ``node_classification``) read a graph (:class:`TextGraphDataSource`).
Both share :class:`DataSource`. The protocols are ``runtime_checkable``: registration
checks that a source has every member.

A source is called with a validated entry of its own config model, in this order:
``check`` when the spec is loaded (before any work), then ``fingerprint`` and
``build``/``read`` in the worker, on the source that ``for_config`` returns. Sources
hold no per-trial state.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from workloads.datasets.entry import BaseDatasetConfig

if TYPE_CHECKING:
    from workloads.textgraphs.base import TextGraph


@runtime_checkable
class DataSource(Protocol):
    """What every dataset source declares and does.

    Attributes:
        name: the registry key: the dataset's name, or the kind's (``csv``).
        description: one line for listings: what the data is, how big, whose split.
        family: the task family (a key of :data:`workloads.tasks.TASKS`) that trains
            on it; it decides the backbones and methods that apply.
        task: the kind of labels (``classification``, ``regression``, ``multiclass``);
            None for a kind whose entries choose it (``csv``: the entry's ``task``).
        metric: the score's metric (a key of
            :data:`workloads.metrics.METRIC_DIRECTIONS`; its direction comes from
            there); None where the entry chooses it, as for ``task``.
        config_cls: the config model of its entries (a subclass of
            :class:`~workloads.datasets.config.BaseDatasetConfig`, strict:
            ``extra="forbid"``, frozen). An entry with ``kind: <name>``, or with no
            kind and ``name: <name>``, validates against it. A kind's model pins
            ``kind`` to a ``Literal`` of its name; a dataset's model has ``kind: None``.
        is_kind: True for a kind that reads the user's own files, named in each entry.
    """

    name: str
    description: str
    family: str
    task: str | None
    metric: str | None
    config_cls: type[BaseDatasetConfig]
    is_kind: bool

    def check(self, cfg: BaseDatasetConfig) -> list[str]:
        """Problems of one entry, found before any work (files missing or unreadable,
        columns absent, labels unusable), each one line without the entry's path; empty:
        usable. Cheap enough to run when a spec is loaded; reads nothing large."""
        ...

    def fingerprint(self, cfg: BaseDatasetConfig) -> str:
        """Digest of the data this entry reads (file contents, not paths or times): with
        the entry's dump it keys the caches, so changed data is rebuilt."""
        ...

    def for_config(self, cfg: BaseDatasetConfig) -> DataSource:
        """The source of one entry, whose ``name``, ``task`` and ``metric`` are final: a
        dataset returns itself; a kind returns a source for that entry's files."""
        ...


@runtime_checkable
class MoleculeDataSource(DataSource, Protocol):
    """A source of the ``graph_property`` family: labelled molecules."""

    def build(self, cfg: BaseDatasetConfig) -> dict:
        """Featurized, split molecules: ``train``/``valid``/``test`` (lists of PyG
        ``Data`` with ``y`` of shape [1, T], NaN for a missing label), ``y_mean`` and
        ``y_std`` (training-label statistics per task), ``num_invalid`` and
        ``num_missing_label`` (rows skipped, counted); see
        :func:`workloads.datasets.build.build_from_smiles`. Called once per cache key."""
        ...


@runtime_checkable
class TextGraphDataSource(DataSource, Protocol):
    """A source of the ``node_classification`` family: a text-attributed graph."""

    def read(self, cfg: BaseDatasetConfig) -> TextGraph:
        """The graph with its split assigned (``TextGraph.split`` not None); rows that
        could not be used counted in ``TextGraph.dropped``. Raises ``TextGraphError``
        naming the file for a graph that cannot be used."""
        ...


__all__ = ["DataSource", "MoleculeDataSource", "TextGraphDataSource"]
