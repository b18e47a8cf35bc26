"""kopf (1.45) leaves some of its watch streams' async generators for the event loop to close when the
process exits, and closing one there can fail inside kopf (`RuntimeError: generator didn't stop after
athrow()` from its `streaming_block`), which asyncio logs as an error. It happens after kopf has
stopped, on the way out: nothing is being watched any more and the connections close with their
sessions. Seen three times in a day of runs here (once failing `make test`), in versions before and
after the changes around it; the cause inside kopf is not pinned down. This filter logs exactly that
one message as a warning, so that errors in the logs keep meaning errors (`tests/e2e/test_make_run.py`
requires none)."""

from __future__ import annotations

import logging

CLOSING = "an error occurred during closing of asynchronous generator <async_generator object infinite_watch"
NOT_STOPPED = "generator didn't stop after athrow()"


class KopfWatchClosing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if (
            record.levelno >= logging.ERROR
            and record.getMessage().startswith(CLOSING)
            and isinstance(error, RuntimeError)
            and str(error) == NOT_STOPPED
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_kopf_watch_closing() -> None:
    logging.getLogger("asyncio").addFilter(KopfWatchClosing())
