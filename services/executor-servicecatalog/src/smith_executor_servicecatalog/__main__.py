"""`python -m smith_executor_servicecatalog`: serve ServiceInstance and ServiceBinding on $SMITH_LISTEN
(default 127.0.0.1:7412) and register as Executor `servicecatalog` in $SMITH_NAMESPACE."""

from smith_executor.run import run_executor
from smith_executor.servicer import RegistryFamily

from smith_engine.readiness import SERVICE_CATALOG

NAME = "servicecatalog"


def main() -> None:
    run_executor(name=NAME, family=RegistryFamily(SERVICE_CATALOG), default_address="127.0.0.1:7412")


if __name__ == "__main__":
    main()
