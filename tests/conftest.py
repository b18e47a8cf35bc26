"""Every test can use the local control plane's fixtures (they start nothing until asked for)."""

pytest_plugins = ["smith_controlplane.pytest_plugin"]
