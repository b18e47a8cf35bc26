"""`python -m smith_planner`: serve the planner on $SMITH_LISTEN (default 127.0.0.1:7401)."""

from smith_wire.rpc import run_service

from smith_planner.servicer import register


def main() -> None:
    run_service("smith-planner", [register], default_address="127.0.0.1:7401")


if __name__ == "__main__":
    main()
