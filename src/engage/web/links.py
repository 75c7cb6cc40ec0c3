"""engage's own links in messages: tracked clicks (`/c/TOKEN`, a 302 to where the message said; `/r/TOKEN`
for an item of a list the bot showed), the open pixel (`/o/TOKEN.gif`) and unsubscribing (`/u/TOKEN`: a
page that asks, and a POST that does it, which is also RFC 8058's one-click unsubscribe that mail clients
send for `List-Unsubscribe-Post`).

A token engage did not sign, or that was altered, is a 404 and records nothing; it never redirects
anywhere, since a token holds no URL (`engage.messaging.links`).
"""

from __future__ import annotations

import base64
import html

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from engage.bootstrap import Engage
from engage.messaging.links import InvalidLink, LinkKind

__all__ = ["links_router"]

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def links_router(engage: Engage) -> APIRouter:
    router = APIRouter(include_in_schema=True)
    feedback = engage.messaging.feedback
    shop = engage.messaging.config.shop

    def page(title: str, body: str, status: int = 200) -> HTMLResponse:
        content = (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title></head>'
            f'<body style="font-family:Arial,sans-serif;max-width:520px;margin:40px auto;padding:0 16px;">'
            f'<h1 style="font-size:22px;">{html.escape(title)}</h1>{body}</body></html>'
        )
        return HTMLResponse(content, status, headers=_NO_STORE)

    def not_ours() -> HTMLResponse:
        shop_link = f'<a href="{html.escape(shop.url)}">{html.escape(shop.name)}</a>'
        return page(
            "This link is not valid", f"<p>It may have been cut or changed. Go to {shop_link}.</p>", 404
        )

    @router.get("/c/{token}")
    def click(token: str) -> Response:
        try:
            destination = feedback.click(token)
        except InvalidLink:
            return not_ours()
        return RedirectResponse(destination, status_code=302, headers=_NO_STORE)

    @router.get("/r/{token}")
    def recommendation_click(token: str) -> Response:
        """An item of a list the bot showed: a `RecommendationClicked`, then the product's page."""
        try:
            destination = engage.chat.click(token)
        except InvalidLink:
            return not_ours()
        return RedirectResponse(destination, status_code=302, headers=_NO_STORE)

    @router.get("/o/{token}.gif")
    def opened(token: str) -> Response:
        try:
            feedback.open(token)
        except InvalidLink:
            return Response(status_code=404)
        return Response(_PIXEL, media_type="image/gif", headers=_NO_STORE)

    @router.get("/u/{token}")
    async def unsubscribe_page(token: str) -> Response:
        try:
            message = await run_in_threadpool(feedback.message_of, token, LinkKind.UNSUBSCRIBE)
        except InvalidLink:
            return not_ours()
        what = "text messages" if message is not None and message.channel == "sms" else "emails"
        address = html.escape(message.address or "") if message is not None else ""
        to = f" to <strong>{address}</strong>" if address else ""
        button = '<button type="submit" style="padding:10px 18px;">Unsubscribe</button>'
        form = f'<p>Stop {what} from {html.escape(shop.name)}{to}?</p><form method="post">{button}</form>'
        return page(f"Unsubscribe from {shop.name}", form)

    @router.post("/u/{token}")
    def unsubscribe(token: str) -> Response:
        try:
            message = feedback.unsubscribe(token)
        except InvalidLink:
            return not_ours()
        what = "text messages" if message is not None and message.channel == "sms" else "emails"
        return page(
            "You are unsubscribed", f"<p>You will get no more {what} from {html.escape(shop.name)}.</p>"
        )

    return router
