"""`python -m smith_executor_core`: serve the built-in kinds on $SMITH_LISTEN (default 127.0.0.1:7410)
and register as Executor `core` in $SMITH_NAMESPACE (default smith-system)."""

from smith_executor.run import run_executor
from smith_executor.servicer import RegistryFamily

from smith_engine.readiness import BUILTIN

NAME = "core"


def main() -> None:
    run_executor(name=NAME, family=RegistryFamily(BUILTIN), default_address="127.0.0.1:7410")


if __name__ == "__main__":
    main()
