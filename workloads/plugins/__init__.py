"""Training plug-ins, one package each, registered by name in ``PLUGINS``."""
from workloads.plugins.base import PLUGINS, Plugin, PluginConfig, TaskInfo

# Importing each package registers it.
from workloads.plugins import gist, proximal  # noqa: E402,F401

__all__ = ["PLUGINS", "Plugin", "PluginConfig", "TaskInfo"]
