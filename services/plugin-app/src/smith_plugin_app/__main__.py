"""`python -m smith_plugin_app`: serve the `app` plugin on $SMITH_LISTEN (default 127.0.0.1:7420) and
register it as Plugin `app` in $SMITH_NAMESPACE (default smith-system)."""

from smith_executor.plugin import run_plugin

from smith_plugin_app import PLUGIN


def main() -> None:
    run_plugin(PLUGIN, default_address="127.0.0.1:7420")


if __name__ == "__main__":
    main()
