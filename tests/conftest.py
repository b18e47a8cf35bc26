"""Every test can use the local control plane's fixtures (they start nothing until asked for)."""

import pytest

pytest_plugins = ["smith_controlplane.pytest_plugin"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tilt: runs Tilt (built once per machine by tools/tilt/build.sh)")
