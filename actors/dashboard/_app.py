"""The dashboard's web app (Starlette, served on trio): pages that work without
JavaScript, a JSON API, server-sent events for live updates, and the dead-letter
actions (replay, delete), which need the token when one is set."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from transports import ConfigurationError, MailboxSpec, Transport

from ._actions import Refused, act
from ._monitor import INTERVAL, Monitor, Snapshot
from ._render import FRAGMENTS, HERE, render

__all__ = ["create_app"]

#: Dead letters shown on a mailbox's page unless ``?count=`` says otherwise.
LETTERS = 100


def create_app(transport: Transport, *, token: str | None = None) -> Starlette:
    """The dashboard of the store behind ``transport`` (opened and closed by the
    caller). With ``token``, replaying and deleting dead letters require it (a form's
    ``token`` field, or an ``Authorization: Bearer`` header): 403 otherwise.
    """
    monitor = Monitor(transport)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            await nursery.start(monitor.sample)
            yield
            nursery.cancel_scope.cancel()

    def allowed(given: str | None) -> bool:
        return token is None or (
            given is not None and hmac.compare_digest(given.encode(), token.encode())
        )

    async def page_context(request: Request, address: str | None = None) -> dict[str, Any]:
        snapshot = await monitor.current()
        context: dict[str, Any] = {
            "snap": snapshot.as_data(),
            "token_required": token is not None,
            "request_path": request.url.path,
            "done": request.query_params.get("done"),
        }
        if address is not None:
            spec = _spec(address)
            count = _count(request)
            letters = await transport.dead_letters(spec, count)
            rows = [m for m in context["snap"]["mailboxes"] if m["mailbox"] == address]
            if not rows:
                stats = await transport.mailbox_stats(spec)
                rows = [
                    {
                        "mailbox": address,
                        "kind": spec.kind,
                        "group": spec.group_name if spec.kind == "stream" else None,
                        "depth": stats.depth,
                        "pending": stats.pending,
                        "dead": stats.dead,
                        "readers": [],
                        "handled": 0,
                        "rates": [],
                        "error": None,
                    }
                ]
            context["snap"]["mailboxes"] = rows
            context |= {
                "address": address,
                "kind": spec.kind,
                "letters": letters,
                "count": count,
                "replay_refused": _replay_refused(snapshot, spec),
            }
        return context

    async def index(request: Request) -> Response:
        return HTMLResponse(render("index.html", **await page_context(request)))

    async def mailbox(request: Request) -> Response:
        address = request.path_params["address"]
        return HTMLResponse(render("mailbox.html", **await page_context(request, address)))

    async def form_action(request: Request) -> Response:
        """A page's form: confirm first (a page of its own without JavaScript), then act
        and go back to the mailbox's page with what was done."""
        address = request.path_params["address"]
        spec = _spec(address)
        # A plain urlencoded form: parsed here, without python-multipart.
        form = {
            k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
        }
        op = str(form.get("op", ""))
        what, _, which = op.partition(":")
        ids = None if which == "all" else [which]
        given = form.get("token")
        context = {"address": address, "op": op, "what": what, "which": which}
        if not allowed(given):
            html = render("refused.html", message="a valid token is needed for this", **context)
            return HTMLResponse(html, status_code=403)
        if form.get("confirm") != "1":
            return HTMLResponse(
                render(
                    "confirm.html", token=given or "", token_required=token is not None, **context
                )
            )
        try:
            done = await act(what, spec, ids, transport, await monitor.current())
        except Refused as exc:
            return HTMLResponse(
                render("refused.html", message=str(exc), **context), status_code=exc.status
            )
        target = request.url_for("mailbox", address=address).include_query_params(done=done)
        return RedirectResponse(str(target), status_code=303)

    async def api_snapshot(_: Request) -> Response:
        return JSONResponse((await monitor.current()).as_data())

    async def api_letters(request: Request) -> Response:
        spec = _spec(request.path_params["address"])
        letters = await transport.dead_letters(spec, _count(request))
        return JSONResponse(
            [
                {
                    "id": letter.id,
                    "attempts": letter.attempts,
                    "dead_at": letter.dead_at,
                    "reason": letter.failure.reason,
                    "actor": letter.failure.actor,
                    "error_type": letter.failure.error_type,
                    "error": letter.failure.error,
                    "traceback": letter.failure.traceback,
                    "payload": letter.payload.decode("utf-8", "replace"),
                }
                for letter in letters
            ]
        )

    async def api_action(request: Request) -> Response:
        """``POST /api/{replay,delete}/ADDRESS`` with ``{"ids": [...]}`` (all without)."""
        what = request.path_params["what"]
        spec = _spec(request.path_params["address"])
        bearer = request.headers.get("authorization", "")
        if not allowed(bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None):
            return JSONResponse({"error": "a valid token is needed for this"}, status_code=403)
        body = await request.body()
        try:
            ids = json.loads(body or b"{}").get("ids")
        except (ValueError, AttributeError):
            return JSONResponse({"error": 'expected {"ids": [...]} or {}'}, status_code=400)
        if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
            return JSONResponse({"error": '"ids" must be a list of ids'}, status_code=400)
        try:
            done = await act(what, spec, ids, transport, await monitor.current())
        except Refused as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        return JSONResponse({"done": done})

    async def events(request: Request) -> Response:
        """Server-sent events: every :data:`INTERVAL`, the page's live parts as HTML by
        element id (``?mailbox=ADDRESS`` for a mailbox's page; ``?count=N`` stops after
        N events)."""
        address = request.query_params.get("mailbox")
        if address is not None:
            _spec(address)
        limit = request.query_params.get("count")
        remaining = int(limit) if limit and limit.isdigit() else None

        async def stream() -> AsyncIterator[str]:
            nonlocal remaining
            while remaining is None or remaining > 0:
                context = await page_context(request, address)
                parts = _fragments(context, address is not None)
                yield f"event: update\ndata: {json.dumps(parts)}\n\n"
                if remaining is not None:
                    remaining -= 1
                    if not remaining:
                        return
                await trio.sleep(INTERVAL)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def bad_request(_: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=400)

    return Starlette(
        routes=[
            Route("/", index, name="index"),
            Route("/mailboxes/{address:path}/actions", form_action, methods=["POST"]),
            Route("/mailboxes/{address:path}", mailbox, name="mailbox"),
            Route("/api/snapshot", api_snapshot),
            Route("/api/dead-letters/{address:path}", api_letters),
            Route("/api/{what:str}/{address:path}", api_action, methods=["POST"]),
            Route("/events", events),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        exception_handlers={ConfigurationError: bad_request},
        lifespan=lifespan,
    )


def _spec(address: str) -> MailboxSpec:
    """The mailbox named by a URL. Raises ConfigurationError: not an address."""
    return MailboxSpec.parse(address)


def _count(request: Request) -> int:
    given = request.query_params.get("count", "")
    return min(int(given), 10_000) if given.isdigit() else LETTERS


def _replay_refused(snapshot: Snapshot, spec: MailboxSpec) -> str | None:
    """Why replaying into ``spec`` is refused now: a channel nobody reads."""
    if spec.kind != "pubsub":
        return None
    if any(view.readers for view in snapshot.mailbox(str(spec))):
        return None
    return f"no live node subscribes to {spec}: a replayed message would be lost"


def _fragments(context: Mapping[str, Any], mailbox_page: bool) -> dict[str, str]:
    names = ["banner", "mailboxes", *(["letters"] if mailbox_page else ["nodes"])]
    return {name: render(FRAGMENTS[name], **context) for name in names}
