"""The sweep spec: strict YAML → validated, resolved, hashed.

Unknown keys are errors that name their path in the YAML; nothing is dropped
or silently fixed. Names of datasets, backbones and methods, and of every
method and search parameter, are checked against the workload registries
(generically: this package knows no method, task or dataset by name).

One job per module:

* :mod:`~orchestrator.spec.schema`: the models (:class:`SweepSpec` and its sections),
  cells, the resolved and hashed form;
* :mod:`~orchestrator.spec.validate`: the semantic checks, one per section;
* :mod:`~orchestrator.spec.routing`: where a searched key goes (:func:`route`);
* :mod:`~orchestrator.spec.loading`: the strict YAML loader, :func:`load_spec`, :func:`parse_spec`;
* :mod:`~orchestrator.spec.overrides`: ``--override KEY.PATH=VALUE``;
* :mod:`~orchestrator.spec.errors`: :class:`SpecError` and how problems are worded;
* :mod:`~orchestrator.spec.secrets`: masking a storage URL's password.
"""
from orchestrator.spec.errors import SpecError
from orchestrator.spec.loading import AliasRefused, load_spec, parse_spec, read_yaml
from orchestrator.spec.overrides import apply_overrides
from orchestrator.spec.routing import Route, RouteError, routable, route
from orchestrator.spec.schema import (Budget, Cell, MethodEntry, Resources, Storage, SweepSpec, backbone_kind_of,
                                      compatible, dump_resolved, family_of)
from orchestrator.spec.secrets import mask_secrets, mask_url, redact
from orchestrator.spec.validate import semantic_errors

__all__ = ["AliasRefused", "Budget", "Cell", "MethodEntry", "Resources", "Route", "RouteError", "SpecError",
           "Storage", "SweepSpec", "apply_overrides", "backbone_kind_of", "compatible", "dump_resolved",
           "family_of", "load_spec", "mask_secrets", "mask_url", "parse_spec", "read_yaml", "redact", "routable",
           "route", "semantic_errors"]
