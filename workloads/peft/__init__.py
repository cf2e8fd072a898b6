"""PEFT methods, one package each, registered by name in ``METHODS``."""
from workloads.peft.base import (METHODS, MethodConfig, PeftMethod, ReferenceKind, TrainHooks, count_parameters,
                                 method_names)

# Importing each package registers it.
from workloads.peft import (  # noqa: E402,F401
    adapter, bitfit, full, g_adapter, gpf, linear_probe, lora, prompt_tokens,
    gnn, engine, lm_lora, lm_full,
)
from workloads import references  # noqa: E402,F401  (reference baselines register as methods)

__all__ = ["METHODS", "MethodConfig", "PeftMethod", "ReferenceKind", "TrainHooks", "count_parameters", "method_names"]
