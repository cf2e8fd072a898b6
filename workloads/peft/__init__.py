"""PEFT methods, one package each, registered by name in ``METHODS``."""
from workloads.peft.base import METHODS, MethodConfig, PeftMethod, TrainHooks, count_parameters

# Importing each package registers it.
from workloads.peft import (  # noqa: E402,F401
    adapter, bitfit, full, g_adapter, gpf, linear_probe, lora, prompt_tokens,
    gnn, engine, lm_lora, lm_full,
)

__all__ = ["METHODS", "MethodConfig", "PeftMethod", "TrainHooks", "count_parameters"]
