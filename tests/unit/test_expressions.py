"""CEL expressions in Bundles (`${...}`, readyWhen, includeWhen): what is an expression and what stays
literal text, what they read (dependencies), their values with their types, checks, cost, and the
planner's verdicts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smith_engine import expressions
from smith_engine.errors import InvalidBundleError, InvalidExpressionError, SelfDependencyError
from smith_engine.planner import Apply, Delete, Plan, Reason, VerdictState, dependency_reference, plan_bundle
from support import bundle, config_map, observed, resource, waiting


def applied(plan: Plan) -> dict[str, dict[str, Any]]:
    return {a.resource: dict(a.object) for a in plan.actions if isinstance(a, Apply)}


def db() -> dict[str, Any]:
    return resource("db", {**config_map("db", {"host": "db.example", "port": "5432"}), "status": {"n": 3}})


def app(data: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**resource("app", config_map("app", data)), **fields}


# --- what is an expression ------------------------------------------------------------------------


def test_a_dollar_brace_that_reads_no_name_of_the_bundle_is_literal_text() -> None:
    script = "echo ${HOME} ${PATH:-/bin} and ${db.data.host}"
    b = bundle(db(), app({"script": script}))
    assert b.by_name["app"].expressions == ("db.data.host",)
    assert b.by_name["app"].dependencies == {"db"}
    plan = plan_bundle(b, [observed(b, {**config_map("db", {"host": "h"})})])
    assert applied(plan)["app"]["data"]["script"] == "echo ${HOME} ${PATH:-/bin} and h"


def test_text_that_names_nothing_of_the_bundle_means_what_it_meant() -> None:
    data = {"x": "${b}", "y": "$${B.c}", "z": "${", "w": "${[1, 2]}", "v": "\\${b}"}
    b = bundle(resource("a", config_map("a", data)))
    assert b.by_name["a"].expressions == ()
    assert applied(plan_bundle(b, []))["a"]["data"] == data


def test_names_inside_string_literals_and_after_dots_are_not_read() -> None:
    known = expressions.variables(["db", "web-app", "status"])
    source = "'db' + web_app.status.db + resources['status'].x + \"${db}\""
    assert expressions.resources_read(source, known) == {"web-app", "status"}


def test_names_with_dashes_and_dots_are_identifiers_with_underscores_unless_two_collide() -> None:
    assert expressions.variables(["db-secret", "a.b", "a-b", "in"]) == {"db_secret": "db-secret"}


@given(st.text(alphabet="${}'\"\\ab.", max_size=30))
def test_scanning_any_text_never_fails_and_finds_only_balanced_expressions(text: str) -> None:
    for found in expressions.scan(text, escaped=True):
        assert text[found.start : found.end].endswith("}")
        assert text[found.start : found.end].lstrip("\\").startswith("${")


# --- values ---------------------------------------------------------------------------------------


def test_a_whole_string_expression_keeps_its_type_and_text_takes_its_text() -> None:
    b = bundle(
        db(),
        app(
            {
                "url": "${db.data.host + ':' + db.data.port}",
                "n": "${db.status.n + 1}",
                "map": "${ {'a': db.status.n} }",
                "line": "n=${db.status.n} list=${[db.status.n, 2]}",
                "escaped": "\\${db.data.host}",
            }
        ),
    )
    source = {**config_map("db", {"host": "db.example", "port": "5432"}), "status": {"n": 3}}
    data = applied(plan_bundle(b, [observed(b, source)]))["app"]["data"]
    assert data == {
        "url": "db.example:5432",
        "n": 4,
        "map": {"a": 3},
        "line": "n=3 list=[3,2]",
        "escaped": "${db.data.host}",
    }


def test_a_value_an_expression_gives_is_never_read_for_markers_or_expressions() -> None:
    b = bundle(db(), app({"v": "${db.data.host}"}))
    hostile = config_map("db", {"host": "!{x} {{db#data.port}} ${db.data.port}"})
    assert applied(plan_bundle(b, [observed(b, hostile)]))["app"]["data"]["v"] == hostile["data"]["host"]


def test_a_field_not_there_yet_blocks_and_a_type_error_is_the_resources_error() -> None:
    b = bundle(db(), app({"v": "${db.status.endpoint}"}), resource("other"))
    plan = plan_bundle(b, [observed(b, config_map("db"))])
    assert plan.verdict("app").state is VerdictState.BLOCKED
    assert plan.verdict("app").reason is Reason.REFERENCE_NOT_RESOLVED
    assert "status" in plan.verdict("app").message
    wrong = bundle(db(), app({"v": "${db.data.port + 1}"}), resource("other"))
    plan = plan_bundle(wrong, [observed(wrong, config_map("db", {"port": "5432"}))])
    assert plan.verdict("app").state is VerdictState.ERROR
    assert plan.verdict("app").message.endswith("no overload of _+_(string, int64)")
    assert "other" in applied(plan)


def test_an_expression_waits_for_what_it_reads_as_for_depends_on() -> None:
    b = bundle(db(), app({"v": "${db.data.host}"}))
    plan = plan_bundle(b, [observed(b, config_map("db", {"host": "h"}), waiting())])
    assert plan.verdict("app").blocked_on == ("db",)


# --- checks ---------------------------------------------------------------------------------------


def test_unknown_identifiers_and_syntax_errors_are_errors_of_their_resource_only() -> None:
    b = bundle(db(), app({"v": "${db.data.host + nope}", "w": "${db.data.}"}), resource("other"))
    problems = b.refused["app"]
    assert all(isinstance(p, InvalidExpressionError) for p in problems)
    assert "undeclared reference to 'nope'" in problems[0].message
    assert "${db.data.host + nope}" in problems[0].message
    assert "Syntax error" in problems[1].message
    plan = plan_bundle(b, [])
    assert plan.verdict("app").reason is Reason.TERMINAL_ERROR
    assert set(applied(plan)) == {"db", "other"}


def test_an_expression_reading_its_own_resource_is_a_self_dependency() -> None:
    with pytest.raises(InvalidBundleError) as invalid:
        bundle(resource("a", config_map("a", {"v": "${a.data.x}"})))
    assert any(isinstance(p, SelfDependencyError) for p in invalid.value.problems)


def test_an_expression_over_the_cost_limit_is_refused_before_it_runs() -> None:
    nested = "db.data.l.map(a, db.data.l.map(b, db.data.l.map(c, a + b + c)))"
    b = bundle(db(), app({"v": "${" + nested + "}"}))
    many = config_map("db", {"l": "x" * 200})
    plan = plan_bundle(b, [observed(b, {**many, "data": {"l": list(range(200))}})])
    assert plan.verdict("app").state is VerdictState.ERROR
    assert "exceeds the limit of 1,000,000" in plan.verdict("app").message
    small = plan_bundle(b, [observed(b, {**many, "data": {"l": [1, 2]}})])
    assert applied(small)["app"]["data"]["v"] == [[[3, 4], [4, 5]], [[4, 5], [5, 6]]]


# --- includeWhen and readyWhen --------------------------------------------------------------------


def test_include_when_false_leaves_the_resource_and_its_dependents_out_and_deletes_them() -> None:
    b = bundle(
        db(),
        app({"v": "x"}, includeWhen=["${db.data.enabled == 'true'}"]),
        resource("uses-app", depends_on=["app"]),
        resource("other"),
    )
    made_app = observed(b, config_map("app", {"v": "x"}))
    uses_app = observed(b, config_map("uses-app"))
    uses_app.object["metadata"]["ownerReferences"].insert(0, dependency_reference(made_app.object))
    present = [observed(b, config_map("db", {"enabled": "false"})), made_app, uses_app]
    present.append(observed(b, config_map("other")))
    plan = plan_bundle(b, present)
    assert plan.verdict("app").reason is Reason.EXCLUDED
    assert plan.verdict("app").state is VerdictState.READY
    assert "includeWhen" in plan.verdict("app").message
    assert plan.verdict("uses-app").reason is Reason.EXCLUDED
    deleted = {a.object.name for a in plan.actions if isinstance(a, Delete)}
    assert deleted == {"uses-app"}  # dependents first; `app` once nothing that depends on it is left
    included = plan_bundle(b, [observed(b, config_map("db", {"enabled": "true"}))])
    assert "app" in applied(included)


def test_include_when_must_be_true_or_false() -> None:
    b = bundle(db(), app({}, includeWhen=["db.data.host"]))
    plan = plan_bundle(b, [observed(b, config_map("db", {"host": "h"}))])
    assert plan.verdict("app").state is VerdictState.ERROR
    assert plan.verdict("app").message.endswith("must be true or false, not a str")  # never the value


def test_ready_when_decides_readiness_from_the_object_itself() -> None:
    b = bundle(
        resource("job", config_map("job"))
        | {"readyWhen": ["${self.data.done == 'yes'}", "job.data.ok == 'yes'"]},
        resource("next", depends_on=["job"]),
    )
    not_yet = plan_bundle(b, [observed(b, config_map("job", {"done": "no", "ok": "yes"}))])
    assert not_yet.verdict("job").state is VerdictState.IN_PROGRESS
    assert "readyWhen ${self.data.done == 'yes'}" in not_yet.verdict("job").message
    assert "next" not in applied(not_yet)
    missing = plan_bundle(b, [observed(b, config_map("job"))])
    assert missing.verdict("job").state is VerdictState.IN_PROGRESS
    done = plan_bundle(b, [observed(b, config_map("job", {"done": "yes", "ok": "yes"}))])
    assert done.verdict("job").state is VerdictState.READY
    assert "next" in applied(done)


def test_ready_when_reads_only_its_own_object() -> None:
    b = bundle(db(), resource("app", depends_on=["db"]) | {"readyWhen": ["db.data.x == 'y'"]})
    (problem,) = b.refused["app"]
    assert "undeclared reference to 'db.data.x'" in problem.message
    assert "readyWhen reads its own object only, as `self`" in problem.message


# --- externalRef ----------------------------------------------------------------------------------


def external(name: str, kind: str = "Secret", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "externalRef": {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}},
        **fields,
    }


def test_an_external_object_is_read_never_written_and_owns_nothing() -> None:
    b = bundle(external("db-credentials"), app({"user": "${db_credentials.data.user}"}))
    missing = plan_bundle(b, [])
    assert missing.verdict("db-credentials").state is VerdictState.BLOCKED
    assert missing.verdict("db-credentials").reason is Reason.EXTERNAL_NOT_FOUND
    assert "waiting for Secret db-credentials to exist" in missing.verdict("db-credentials").message
    assert missing.verdict("app").blocked_on == ("db-credentials",)
    assert not missing.actions
    theirs = observed(
        b, {**config_map("db-credentials", {"user": "dXNlcg=="}), "kind": "Secret"}, owned=False
    )
    plan = plan_bundle(b, [theirs])
    assert plan.verdict("db-credentials").state is VerdictState.READY
    made = applied(plan)
    assert set(made) == {"app"}  # the Secret itself is never applied
    assert made["app"]["data"]["user"] == "dXNlcg=="
    assert [o["kind"] for o in made["app"]["metadata"]["ownerReferences"]] == ["Bundle"]
    assert not [a for a in plan.actions if isinstance(a, Delete)]  # not the Bundle's: never deleted


def test_an_external_objects_ready_when_decides_and_its_shape_is_checked() -> None:
    b = bundle(
        external("gate", "ConfigMap", readyWhen=["${self.data.open == 'yes'}"]),
        resource("after", depends_on=["gate"]),
    )
    closed = plan_bundle(b, [observed(b, config_map("gate", {"open": "no"}), owned=False)])
    assert closed.verdict("gate").state is VerdictState.IN_PROGRESS
    assert not closed.actions
    with pytest.raises(InvalidBundleError) as invalid:
        bundle(
            {**external("x"), "spec": {"object": config_map("x")}},
            {"name": "y", "externalRef": {"kind": "Secret"}},
        )
    messages = [p.message for p in invalid.value.problems]
    assert any("externalRef takes the place of spec" in m for m in messages), messages
    assert any("'y'" in m and "apiVersion" in m for m in messages), messages


@pytest.mark.parametrize(
    "source",
    [
        "creds.data.password",  # a string where a bool is wanted (includeWhen)
        "creds.data[creds.data.password] == 'x'",  # a key not found, named by the value
        "creds.data.user.matches(creds.data.password + '(')",  # a pattern RE2 refuses, made of the value
        "int(creds.data.password) > 0",  # a conversion that fails
        "creds.data['pre-' + creds.data.password] == 'x'",  # the value inside a longer key
        "'%e'.format([string(base64.decode(creds.data.password))]) == ''",  # a format that quotes it
        "[][creds.data.password.size() * 1000 + 7] == 1",  # an index made of it
        "{}[creds.data.password.charAt(0)] || 'abcdefghijklmnopqrstuvwxyz' == ''",  # a key made of it
    ],
)
def test_no_value_an_expression_read_is_ever_in_its_verdict(source: str) -> None:
    secret = "hunter2-in-a-secret"
    b = bundle(external("creds"), app({}, includeWhen=["${" + source + "}"]))
    creds = observed(
        b, {**config_map("creds", {"password": secret, "user": "u"}), "kind": "Secret"}, owned=False
    )
    plan = plan_bundle(b, [creds])
    verdict = plan.verdict("app")
    assert verdict.state in (VerdictState.ERROR, VerdictState.BLOCKED)
    assert secret not in verdict.message
    assert "hunter2" not in verdict.message
    assert "19007" not in verdict.message  # nor a number made of it
    assert '"h"' not in verdict.message


def test_optional_values_are_not_part_of_the_language_here() -> None:
    """The runtime crashes its process giving back a map that holds an optional value: `.?` is refused
    when the Bundle is read, never run."""
    b = bundle(db(), app({"v": "${ {'a': db.?kind} }"}), resource("other"))
    (problem,) = b.refused["app"]
    assert "unsupported syntax '.?'" in problem.message
    assert "other" in applied(plan_bundle(b, []))


@pytest.mark.parametrize(
    "source",
    [
        "db.data.x.replace('x', db.data.x).replace('x', db.data.x).replace('x', db.data.x)",  # chained
        "db.data.x.replace// a comment hides nothing\n('x', db.data.x).replace('x', db.data.x)",
        "db.kind + 'a'.replace('a', '" + "a" * 300 + "').replace('a', '" + "a" * 300 + "')",  # literals count
        "db.data.l.map(a, db.data.l.map(b, db.data.l))",  # nested comprehensions
    ],
)
def test_expressions_whose_output_could_grow_past_the_limit_are_refused_before_they_run(source: str) -> None:
    b = bundle(db(), app({"v": "${" + source + "}"}))
    source_object = config_map("db", {"x": "x" * 300})
    source_object["data"]["l"] = list(range(150))
    plan = plan_bundle(b, [observed(b, source_object)])
    assert plan.verdict("app").state is VerdictState.ERROR
    assert "exceeds the limit of 1,000,000" in plan.verdict("app").message


def test_names_are_read_past_comments_spaces_and_literals_as_cel_reads_them() -> None:
    assert expressions.names_read("a . b + c .? d + e // f g\n + 'h' + r'i\\' + j") == {"a", "c", "e", "j"}
    assert expressions.names_read("x ." + " " * 5000) == {"x"}
    assert expressions.names_read('"""' + '\\"' * 2000) == frozenset()


# --- forEach --------------------------------------------------------------------------------------


def environments(*names: str, **fields: Any) -> dict[str, Any]:
    template = config_map("app-${each}", {"env": "${each}", "region": "${db.data.region}"})
    return {**resource("envs", template), "forEach": "${db.data.envs.split(',')}", **fields}


def settings(envs: str) -> dict[str, Any]:
    return config_map("db", {"envs": envs, "region": "eu"})


def test_for_each_makes_one_object_per_element_and_one_verdict_for_them_all() -> None:
    b = bundle(db(), environments(), resource("after", depends_on=["envs"]))
    assert b.by_name["envs"].dependencies == {"db"}
    plan = plan_bundle(b, [observed(b, settings("dev,prod"))])
    made = applied(plan)
    assert set(made) == {"envs[app-dev]", "envs[app-prod]"}
    assert made["envs[app-dev]"]["data"] == {"env": "dev", "region": "eu"}
    assert made["envs[app-prod]"]["metadata"]["annotations"] == {"smith.atlassian.com/forEach": "envs"}
    assert plan.verdict("envs").state is VerdictState.IN_PROGRESS
    assert "0 of 2 objects ready" in plan.verdict("envs").message
    assert plan.verdict("after").blocked_on == ("envs",)
    there = [observed(b, settings("dev,prod")), *(observed(b, o) for o in made.values())]
    ready = plan_bundle(b, there)
    assert ready.verdict("envs").state is VerdictState.READY
    assert ready.verdict("envs").message == "2 of 2 objects ready"
    assert set(applied(ready)) == {"after"}
    assert {o["name"] for o in applied(ready)["after"]["metadata"]["ownerReferences"][:-1]} == {
        "app-dev",
        "app-prod",
    }


def test_an_element_removed_deletes_its_object_once_the_rest_is_ready_and_a_list_not_known_deletes_none() -> (
    None
):
    b = bundle(db(), environments())
    dev, prod = (observed(b, config_map(f"app-{e}", {"env": e, "region": "eu"})) for e in ("dev", "prod"))
    for o in (dev, prod):
        o.object["metadata"]["annotations"] = {"smith.atlassian.com/forEach": "envs"}
    shrunk = plan_bundle(b, [observed(b, settings("dev")), dev, prod])
    assert [a.object.name for a in shrunk.actions if isinstance(a, Delete)] == ["app-prod"]
    unknown = plan_bundle(b, [observed(b, config_map("db", {"region": "eu"})), dev, prod])  # no envs yet
    assert unknown.verdict("envs").state is VerdictState.BLOCKED
    assert not [a for a in unknown.actions if isinstance(a, Delete)]


@pytest.mark.parametrize(
    ("envs", "said"),
    [
        ("dev,dev", "two elements make the object 'app-dev'"),
        ("dev,Bad_Name", "an object's name 'app-Bad_Name'"),
        (",".join(f"e{i}" for i in range(101)), "gives 101 elements; one resource may make at most 100"),
    ],
)
def test_a_list_that_cannot_make_its_objects_is_an_error_of_its_resource(envs: str, said: str) -> None:
    b = bundle(db(), environments(), resource("other"))
    plan = plan_bundle(b, [observed(b, settings(envs))])
    assert plan.verdict("envs").state is VerdictState.ERROR
    assert said in plan.verdict("envs").message
    assert not [a for a in plan.actions if isinstance(a, Apply) and a.resource.startswith("envs")]
    assert "other" in applied(plan)


def test_a_for_each_name_must_vary_and_its_objects_are_read_with_expressions() -> None:
    fixed = {
        **resource("envs", config_map("same", {"env": "${each}"})),
        "forEach": "${db.data.envs.split(',')}",
    }
    reader = resource(
        "reader", config_map("reader"), references=[{"name": "x", "resource": "envs", "path": "data"}]
    )
    b = bundle(db(), fixed, reader)
    assert "metadata.name must vary with each element" in b.refused["envs"][0].message
    assert "'envs' is a forEach resource, read with an expression: ${envs}" in b.refused["reader"][0].message
    counted = bundle(
        db(), environments(), resource("count", config_map("count", {"n": "${string(size(envs))}"}))
    )
    objects = [config_map(f"app-{e}", {"env": e, "region": "eu"}) for e in ("dev", "prod")]
    there = [observed(counted, settings("dev,prod")), *(observed(counted, o) for o in objects)]
    assert applied(plan_bundle(counted, there))["count"]["data"]["n"] == "2"


def test_a_for_each_value_that_looks_like_a_marker_is_put_in_as_it_is_and_each_escapes() -> None:
    template = config_map("app-${each}", {"v": "${db.data.v}", "literal": "\\${each}"})
    b = bundle(db(), {**resource("envs", template), "forEach": "${db.data.l}"})
    source = {**config_map("db", {"v": "!{x}"}), "data": {"v": "!{x}", "l": ["a"]}}
    made = applied(plan_bundle(b, [observed(b, source)]))["envs[app-a]"]["data"]
    assert made == {"v": "!{x}", "literal": "${each}"}


def test_for_each_objects_ready_when_reads_them_by_the_resources_name_and_by_self() -> None:
    envs = environments(readyWhen=["${envs.data.env != ''}", "${self.data.region == 'eu'}"])
    b = bundle(db(), envs)
    made = [config_map(f"app-{e}", {"env": e, "region": "eu"}) for e in ("dev", "prod")]
    plan = plan_bundle(b, [observed(b, settings("dev,prod")), *(observed(b, o) for o in made)])
    assert plan.verdict("envs").state is VerdictState.READY, plan.verdict("envs").message


def test_two_for_each_resources_making_one_object_is_an_error_and_odd_templates_are_read_safely() -> None:
    lowered = config_map("app-${each.lowerAscii()}", {"x": "1"})
    second = {**resource("again", lowered), "forEach": "${db.data.envs.split(',')}"}
    weird = config_map("w-${each}", {"x": "1"})
    weird["metadata"]["annotations"] = None
    b = bundle(
        db(), environments(), second, {**resource("weird", weird), "forEach": "${db.data.envs.split(',')}"}
    )
    plan = plan_bundle(b, [observed(b, settings("dev"))])
    claimed, refused = plan.verdict("again"), plan.verdict("envs")  # planned in that order: the first claims
    assert claimed.state is VerdictState.IN_PROGRESS
    assert refused.state is VerdictState.ERROR
    assert "ConfigMap/app-dev, which another resource describes" in refused.message
    assert applied(plan)["weird[w-dev]"]["metadata"]["annotations"] == {
        "smith.atlassian.com/forEach": "weird"
    }


def test_a_for_each_deployment_reads_config_its_bundle_makes_per_element() -> None:
    configs = {
        **resource("cfgs", config_map("cfg-${each}", {"env": "${each}"})),
        "forEach": "${db.data.envs.split(',')}",
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-${each}"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "web:1",
                            "envFrom": [{"configMapRef": {"name": "cfg-${each}"}}],
                        }
                    ]
                },
            },
        },
    }
    webs = {**resource("webs", deployment, depends_on=["cfgs"]), "forEach": "${db.data.envs.split(',')}"}
    b = bundle(db(), configs, webs)
    made = [observed(b, config_map("cfg-dev", {"env": "dev"}))]
    made[0].object["metadata"]["annotations"] = {"smith.atlassian.com/forEach": "cfgs"}
    plan = plan_bundle(b, [observed(b, settings("dev")), *made])
    assert "webs[web-dev]" in applied(plan), plan.verdict("webs").message


def test_names_for_each_cannot_take_and_fields_it_cannot_be_on() -> None:
    assert "each" not in expressions.variables(["each", "self", "resources", "db"])
    plugin_dependent = {
        "name": "p",
        "dependsOn": ["envs"],
        "spec": {"plugin": {"name": "x", "objectName": "p"}},
    }
    b = bundle(db(), environments(), plugin_dependent)
    assert "a plugin's resource cannot depend on forEach resources (envs)" in str(b.refused["p"][0])
    with pytest.raises(InvalidBundleError, match="an externalRef is one object"):
        bundle(db(), {**external("ext"), "forEach": "${db.data.l}"})
