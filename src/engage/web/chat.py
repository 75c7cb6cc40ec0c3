"""The shop's chat page, `/chat`: the rasa-webchat widget talking to Rasa's socketio channel, with the
visitor's identity passed along as message metadata (`customData`), so the bot's actions and the
`ChatMessage` events are the visitor's own profile's.

Who the visitor is: `?user_id=` once they have signed in, else the storefront's anonymous id
(`?anonymous_id=`, or analytics.js's `ajs_anonymous_id` cookie), else an anonymous id of engage's own kept
in a cookie.
"""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from engage.bootstrap import Engage
from engage.web.widget import WIDGET_PACKAGE, widget_path

__all__ = ["chat_router"]

_COOKIE = "engage_anonymous_id"
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:Arial,sans-serif;margin:0;background:#f6f6f4}}
header{{padding:16px 24px;background:#222;color:#fff;font-size:18px}}
main{{max-width:720px;margin:24px auto;padding:0 16px}}
#webchat{{height:70vh;min-height:420px;background:#fff;border-radius:8px;overflow:hidden;
box-shadow:0 2px 12px rgba(0,0,0,.1)}}</style></head>
<body><header>{title}</header><main><p>Ask our assistant for ideas, a gift, your cart or an order.</p>
<div id="webchat"></div></main>
<script src="/chat/widget.js"></script>
<script>
WebChat.default({{
  initPayload: "/greet", socketUrl: {socket_url}, socketPath: "/socket.io/",
  customData: {custom_data}, title: {title_json}, subtitle: "Shopping assistant",
  inputTextFieldHint: "Type a message...", embedded: true, showFullScreenButton: false,
  params: {{storage: "local"}}
}}, document.getElementById("webchat"));
</script></body></html>
"""
_MISSING = (
    "<!DOCTYPE html><html><body><h1>The chat widget is not installed</h1><p>Run "
    f"<code>engage bot setup</code> (it fetches {WIDGET_PACKAGE} from the npm registry).</p></body></html>"
)


def chat_router(engage: Engage) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    shop = engage.messaging.config.shop
    rasa_url = engage.workspace.endpoints.rasa.url

    @router.get("/chat")
    def chat_page(request: Request, user_id: str | None = None, anonymous_id: str | None = None) -> Response:
        if not widget_path().is_file():
            return HTMLResponse(_MISSING, status_code=503)
        anonymous = anonymous_id or _segment_anonymous_id(request) or request.cookies.get(_COOKIE)
        new_visitor = anonymous is None
        anonymous = anonymous or uuid.uuid4().hex
        custom = {"anonymous_id": anonymous} | ({"user_id": user_id} if user_id else {})
        title = f"{shop.name} assistant"
        page = _PAGE.format(
            title=_escape(title), title_json=_script(title), socket_url=_script(rasa_url),
            custom_data=_script(custom),
        )  # fmt: skip
        response = HTMLResponse(page, headers={"Cache-Control": "no-store"})
        if new_visitor:
            response.set_cookie(_COOKIE, anonymous, max_age=365 * 86400, httponly=True, samesite="lax")
        return response

    @router.get("/chat/widget.js")
    def widget() -> Response:
        path = widget_path()
        if not path.is_file():
            return Response("// the chat widget is not installed: engage bot setup", 404)
        return FileResponse(
            path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
        )

    return router


def _segment_anonymous_id(request: Request) -> str | None:
    """analytics.js keeps the anonymous id JSON-quoted in the `ajs_anonymous_id` cookie."""
    raw = request.cookies.get("ajs_anonymous_id")
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return str(value) if value else None


def _script(value: object) -> str:
    """A value written into a <script>, unable to close it."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
