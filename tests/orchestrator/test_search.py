import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from pydantic import TypeAdapter, ValidationError

from orchestrator.search import SearchParam, distributions

P = TypeAdapter(SearchParam)


def test_each_param_maps_onto_its_optuna_distribution():
    space = {
        "lr": P.validate_python({"type": "float", "low": 1e-4, "high": 1e-2, "log": True}),
        "r": P.validate_python({"type": "int", "low": 2, "high": 16, "step": 2}),
        "act": P.validate_python({"type": "categorical", "choices": ["gelu", "relu"]}),
    }
    d = distributions(space)
    assert d["lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert d["r"] == IntDistribution(2, 16, step=2)
    assert d["act"] == CategoricalDistribution(("gelu", "relu"))
    for name, p in space.items():
        assert d[name]._contains(d[name].to_internal_repr(p.default()))


def test_bad_params_are_rejected():
    with pytest.raises(ValidationError):
        P.validate_python({"type": "float", "low": 1, "high": 1})
    with pytest.raises(ValidationError):
        P.validate_python({"type": "int", "low": 0, "high": 4, "log": True})
    with pytest.raises(ValidationError):
        P.validate_python({"type": "categorical", "choices": []})
    with pytest.raises(ValidationError):
        P.validate_python({"type": "float", "low": 0, "high": 1, "extra": 1})
