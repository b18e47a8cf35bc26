"""The shipped samples (deploy/samples) and the design's example validate and plan."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from smith_cli.main import cli

from smith_engine.planner import Apply, VerdictState, plan_bundle
from smith_engine.validation import load_bundle
from support import SAMPLES, load_sample, observed

SAMPLE_FILES = sorted(p.name for p in SAMPLES.glob("*.yaml"))


def test_there_are_at_least_five_samples() -> None:
    assert len(SAMPLE_FILES) >= 5


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_sample_validates_and_plans_its_first_wave(name: str) -> None:
    b = load_bundle(load_sample(name))
    plan = plan_bundle(b, [])
    roots = {r.name for r in b.resources if not r.dependencies}
    assert {a.resource for a in plan.actions if isinstance(a, Apply)} == roots
    assert all(v.state is VerdictState.BLOCKED for v in plan.verdicts if v.resource not in roots)


def test_design_example_uses_both_shapes_and_reads_the_db_host() -> None:
    b = load_bundle(load_sample("shop.yaml"))
    db, app = b.by_name["db"], b.by_name["app"]
    assert db.object["kind"] == "PostgresqlResource"
    assert app.object["kind"] == "Deployment"
    assert app.dependencies == {"db"}
    db_obj = observed(b, db.object, status={"host": "shop-db.internal"})
    plan = plan_bundle(b, [db_obj])
    (deploy,) = [a for a in plan.actions if isinstance(a, Apply)]
    env = deploy.object["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "DB_HOST", "value": "shop-db.internal"}]


def test_config_chain_keeps_values_flowing_down_the_chain() -> None:
    b = load_bundle(load_sample("config-chain.yaml"))
    defaults = observed(b, b.by_name["defaults"].object)
    derived_plan = plan_bundle(b, [defaults])
    (derived,) = [a for a in derived_plan.actions if isinstance(a, Apply)]
    assert derived.object["data"]["endpoint"] == "https://api.ap-southeast-2.example.com/gold"


def test_make_plan_simulates_every_sample_to_the_end() -> None:
    """`make plan` (`smith plan deploy/samples`) walks each sample wave by wave until nothing is left."""
    result = CliRunner().invoke(cli, ["plan", str(SAMPLES)])
    assert result.exit_code == 0, result.output
    assert result.output.count("✓") == len(SAMPLE_FILES)
    assert "wave 4: ingress" in result.output
