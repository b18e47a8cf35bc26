"""The API server's messages without the values they echo. Pure."""

from __future__ import annotations

import pytest

from smith_engine.redaction import without_values
from smith_kube import ApiError


@pytest.mark.parametrize(
    ("message", "kept"),
    [
        (
            'ConfigMap "c" is invalid: metadata.labels: Invalid value: "aHVudGVyMiE=": a valid label must be '
            "an empty string or consist of alphanumeric characters",
            'metadata.labels: Invalid value: "[value not shown]": a valid label must be',
        ),
        (
            'Service "s" is invalid: spec.type: Unsupported value: "hunter2": supported values: "ClusterIP"',
            'spec.type: Unsupported value: "[value not shown]": supported values: "ClusterIP"',
        ),
        (
            'x: Invalid value: "with \\"quotes\\" hunter2": bad',
            'x: Invalid value: "[value not shown]": bad',
        ),
        (  # a Go %#v of a struct
            'spec.template: Invalid value: core.PodTemplateSpec{Meta:v1.ObjectMeta{Name:"hunter2"}}: bad',
            'spec.template: Invalid value: "[value not shown]": bad',
        ),
    ],
)
def test_a_value_the_api_server_echoes_is_not_shown(message: str, kept: str) -> None:
    shown = without_values(message)
    assert "hunter2" not in shown
    assert "aHVudGVyMiE=" not in shown
    assert kept in shown


def test_numbers_and_messages_without_values_stay_as_they_are() -> None:
    assert without_values("spec.replicas: Invalid value: -1: must be >= 0") == (
        "spec.replicas: Invalid value: -1: must be >= 0"
    )
    plain = 'configmaps "c" is forbidden: User "u" cannot create resource "configmaps"'
    assert without_values(plain) == plain


def test_an_api_error_carries_no_echoed_value() -> None:
    body = {
        "reason": "Invalid",
        "message": 'Secret "s" is invalid: metadata.labels: Invalid value: "hunter2": bad',
    }
    error = ApiError(422, body, method="PATCH", path="/api/v1/namespaces/a/secrets/s")
    assert "hunter2" not in error.message
    assert "hunter2" not in str(error)
