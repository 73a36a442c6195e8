"""Where the store's logs, spans and metrics go: the public face of its observability.

The store logs to the stdlib logger named ``LOGGER_NAME`` (``"saga_store_pynamo"``) and,
with ``opentelemetry-api`` installed (the ``[otel]`` extra), records spans and metrics
through OpenTelemetry's global providers. ``use()`` sends them to providers of your own
instead, for tests (OpenTelemetry's global providers can be set only once per process) and
for programs that keep the store's telemetry apart::

    from saga_store_pynamo import telemetry

    telemetry.use(tracer_provider=provider)  # and meter_provider=... for metrics
    try:
        ...  # store calls
    finally:
        telemetry.use()  # back to the global providers

See ``docs/observability.md`` for the records, span names, attributes and metrics.
"""

from __future__ import annotations

from ._telemetry import LOGGER_NAME, use

__all__ = ["LOGGER_NAME", "use"]
