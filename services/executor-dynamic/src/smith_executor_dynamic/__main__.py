"""`python -m smith_executor_dynamic`: serve custom resources on $SMITH_LISTEN (default 127.0.0.1:7411)
and register as the fallback Executor `dynamic` in $SMITH_NAMESPACE (default smith-system)."""

from smith_executor.run import run_executor

from smith_executor_dynamic.catalog import CrdCatalog

NAME = "dynamic"


def main() -> None:
    catalog = CrdCatalog()
    run_executor(
        name=NAME, family=catalog, fallback=True, default_address="127.0.0.1:7411", background=catalog.follow
    )


if __name__ == "__main__":
    main()
