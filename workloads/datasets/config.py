"""Configuration of one dataset in a sweep: one model per source, chosen by the entry.

Every dataset source declares the model its entries validate against
(``config_cls``, a subclass of :class:`BaseDatasetConfig`; see
:mod:`workloads.datasets.contract`). A dataset entry picks its model by its ``kind``
(a kind reads the user's own files: ``csv``, ``text_graph_csv``) or, with no kind, by
its registered ``name`` (``freesolv``, ``ogbg-molhiv``, ``wordnet``, ...). So each
model holds only the fields its source reads: a misplaced field (``nodes`` on a
molecule set) is an unknown key, named with the path to it.

:class:`DatasetConfig` is the type of a dataset entry in other models
(``TrialConfig.dataset``, the spec's ``datasets``); the selection happens when the
entry is validated, from the registry as it is then, so a kind registered at run time
(one module plus one registry row) needs no edit here. ``DatasetConfig(**fields)``
(or :func:`dataset_config`) builds one entry, :func:`parse_dataset` one from a mapping.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, SerializeAsAny, ValidationError, WrapValidator
from pydantic_core import CoreSchema, PydanticCustomError

from workloads.datasets.entry import NAME_PATTERN, BaseDatasetConfig
from workloads.datasets.sources import SOURCES, registered_kinds

def _error(kind: str, message: str, loc: tuple = (), value: Any = None) -> ValidationError:
    return ValidationError.from_exception_data(
        "DatasetConfig", [{"type": PydanticCustomError(kind, message), "loc": loc, "input": value}])


def _plain(err: dict) -> dict:
    return {"type": err["type"], "loc": err["loc"], "input": err.get("input"),
            **({"ctx": err["ctx"]} if "ctx" in err else {})}


def _owners(field: str, sources) -> str:
    """Which sources' entries have ``field``: "'wordnet', 'ogbn-arxiv'; dataset kind text_graph_csv"."""
    names = [n for n in sources.names() if field in sources.get(n).config_cls.model_fields]
    plain = [f"'{n}'" for n in names if not sources.get(n).is_kind]
    kinds = ", ".join(f"dataset kind {n}" for n in names if sources.get(n).is_kind)
    plain_text = ", ".join(plain) if len(plain) <= 3 else ", ".join(plain[:3]) + f" and {len(plain) - 3} more"
    return "; ".join(p for p in (plain_text, kinds) if p)


def select_config_cls(data: dict) -> type[BaseDatasetConfig]:
    """The model of a dataset entry (a mapping): its kind's, else its registered name's.

    Raises a ValidationError located at ``kind`` or ``name`` for an unknown kind, an
    unknown name, or a kind's name written as a dataset name."""
    kinds = registered_kinds()
    kind, name = data.get("kind"), data.get("name")
    if kind is not None:
        if not isinstance(kind, str):
            raise ValidationError.from_exception_data("DatasetConfig", [
                {"type": "string_type", "loc": ("kind",), "input": kind}])
        if kind not in kinds:
            raise _error("unknown_dataset_kind", f"unknown dataset kind '{kind}'; known: {', '.join(kinds)}",
                         ("kind",), kind)
        return SOURCES.get(kind).config_cls
    if "name" not in data:
        raise ValidationError.from_exception_data("DatasetConfig", [{"type": "missing", "loc": ("name",),
                                                                     "input": data}])
    if not isinstance(name, str):
        raise ValidationError.from_exception_data("DatasetConfig", [
            {"type": "string_type", "loc": ("name",), "input": name}])
    if name in kinds:
        raise _error("dataset_kind_as_name",
                     f"'{name}' is a dataset kind: write 'kind: {name}' and give the dataset a name",
                     ("name",), name)
    if name not in SOURCES:
        raise _error("unknown_dataset", f"unknown dataset '{name}'; known: "
                     + ", ".join(n for n in SOURCES.names() if n not in kinds), ("name",), name)
    return SOURCES.get(name).config_cls


def parse_dataset(data: Any) -> BaseDatasetConfig:
    """One validated dataset entry from a mapping (a model instance passes as it is).

    Errors keep the entry's own paths (``max_molecules``, ``nodes``); a key that the
    chosen model lacks but another source reads is told so: ``unknown key for dataset
    'freesolv' (a field of dataset kind text_graph_csv)``."""
    if isinstance(data, BaseDatasetConfig):
        return data
    if not isinstance(data, dict):
        raise ValidationError.from_exception_data("DatasetConfig", [
            {"type": "model_type", "loc": (), "input": data, "ctx": {"class_name": "DatasetConfig"}}])
    cls = select_config_cls(data)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        errors, hinted = [], False
        what = f"dataset kind {data['kind']}" if data.get("kind") is not None else f"dataset '{data.get('name')}'"
        for err in e.errors(include_url=False):
            owners = (_owners(err["loc"][0], SOURCES)
                      if err["type"] == "extra_forbidden" and len(err["loc"]) == 1 else "")
            if owners:
                hinted = True
                errors.append({"type": PydanticCustomError("unknown_key", f"unknown key for {what} "
                                                           f"(a field of {owners})"),
                               "loc": err["loc"], "input": err.get("input")})
            else:
                errors.append(err)
        if not hinted:
            raise
        try:
            raise ValidationError.from_exception_data(cls.__name__, [
                x if isinstance(x["type"], PydanticCustomError) else _plain(x) for x in errors]) from None
        except (KeyError, TypeError):  # an error type that needs more context: kept by its message
            raise ValidationError.from_exception_data(cls.__name__, [
                x if isinstance(x["type"], PydanticCustomError)
                else {"type": PydanticCustomError(x["type"], x["msg"]), "loc": x["loc"], "input": x.get("input")}
                for x in errors]) from None


def _validate(value: Any, handler) -> BaseDatasetConfig:
    return parse_dataset(value)


_ENTRY = Annotated[SerializeAsAny[BaseDatasetConfig], WrapValidator(_validate)]


class _EntryType(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, BaseDatasetConfig)


class DatasetConfig(metaclass=_EntryType):
    """The type of a dataset entry, in a model (``dataset: DatasetConfig``,
    ``datasets: list[DatasetConfig]``) and called: ``DatasetConfig(name="freesolv",
    max_molecules=200)`` validates into the source's own config model (a
    :class:`BaseDatasetConfig`; see the module docstring), which is also what
    ``isinstance(x, DatasetConfig)`` asks. Dumped with all of that model's fields."""

    def __new__(cls, **fields: Any) -> BaseDatasetConfig:  # type: ignore[misc]
        return parse_dataset(fields)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return handler.generate_schema(_ENTRY)


def dataset_config(**fields: Any) -> BaseDatasetConfig:
    """One dataset entry from keyword arguments: ``dataset_config(name="freesolv", max_molecules=200)``."""
    return parse_dataset(fields)


__all__ = ["NAME_PATTERN", "BaseDatasetConfig", "DatasetConfig", "dataset_config", "parse_dataset", "select_config_cls"]
