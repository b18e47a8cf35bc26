"""kopf's failure to close one of its watch streams as the process exits is logged as a warning; every
other error of asyncio's stays an error."""

from __future__ import annotations

import logging

import pytest
from smith_controller.shutdown import CLOSING, NOT_STOPPED, quiet_kopf_watch_closing


def logged(message: str, error: Exception, caplog: pytest.LogCaptureFixture) -> str:
    caplog.clear()
    try:
        raise error
    except type(error):
        logging.getLogger("asyncio").error(message, exc_info=True)
    (record,) = caplog.records
    return record.levelname


def test_only_kopfs_watch_closing_at_exit_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    quiet_kopf_watch_closing()
    closing = f"{CLOSING} at 0x7f63cdbbe8f0>\nasyncgen: <async_generator object infinite_watch at 0x7f>"
    assert logged(closing, RuntimeError(NOT_STOPPED), caplog) == "WARNING"
    assert logged(closing, RuntimeError("something else"), caplog) == "ERROR"
    assert logged("Task exception was never retrieved", RuntimeError(NOT_STOPPED), caplog) == "ERROR"
