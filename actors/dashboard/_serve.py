"""``python -m actors dashboard``: the app on Hypercorn's trio worker until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from transports import Transport

from ._app import create_app

__all__ = ["serve"]

logger = logging.getLogger("actors.dashboard")


async def serve(transport: Transport, host: str, port: int, token: str | None) -> None:
    """Serve the dashboard of ``transport``'s store on ``host``:``port`` until SIGINT or
    SIGTERM, then stop gracefully.

    Raises:
        OSError: the address cannot be bound (in use, or not this machine's).
    """
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # the CLI's log format, once
    config.graceful_timeout = 1.0
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    logger.info("%s: stopping the dashboard", signal.Signals(signum).name)
                    stop.set()

            nursery.start_soon(watch)
            app = create_app(transport, token=token)

            async def server(*, task_status: trio.TaskStatus[list[str]]) -> None:
                # Open event streams are cut after config.graceful_timeout.
                await hypercorn_serve(
                    app,  # type: ignore[arg-type]  # Starlette's ASGI types are looser
                    config,
                    shutdown_trigger=stop.wait,
                    task_status=task_status,
                )
                nursery.cancel_scope.cancel()  # the signal watch

            binds = await nursery.start(server)
            # Where it listens (the port chosen when given 0): what a script waits for.
            logger.info(
                "dashboard on %s%s",
                " ".join(binds),
                " (replay and delete need the token)" if token else "",
            )
