"""The providers' webhooks: SendGrid's Event Webhook and Twilio's status callbacks and inbound SMS.

Each request is checked with the provider's own signature before anything is read from it (SendGrid:
ECDSA under the verification key of `connectors/sendgrid.yml`; Twilio: HMAC under the auth token, over
the URL Twilio called, which is `public_url` and the path); an unsigned or altered one is a 403 and
nothing is recorded. A webhook whose connector no channel uses is a 404.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from twilio.twiml.messaging_response import MessagingResponse

from engage.bootstrap import Engage
from engage.connectors import TWILIO_STATUS_PATH
from engage.connectors import sendgrid as sendgrid_hook
from engage.connectors import twilio as twilio_hook
from engage.errors import EngageError
from engage.web._responses import text_errors

__all__ = ["hooks_router", "TWILIO_SMS_PATH", "SENDGRID_EVENTS_PATH"]

SENDGRID_EVENTS_PATH = "/hooks/sendgrid/events"
TWILIO_SMS_PATH = "/hooks/twilio/sms"
_MAX_BODY = 2 * 2**20


def hooks_router(engage: Engage) -> APIRouter:
    router = APIRouter()
    messaging = engage.messaging
    public_url = engage.workspace.endpoints.public_url

    def refuse(status: int, message: str) -> Response:
        return Response(message + "\n", status_code=status, media_type="text/plain")

    @router.post(SENDGRID_EVENTS_PATH, status_code=204, responses=text_errors(400, 403, 404, 413, 503))
    async def sendgrid_events(request: Request) -> Response:
        try:
            config = messaging.connectors.sendgrid()
        except EngageError as exc:  # a connector's setting missing here (its secret): not ready
            return refuse(503, str(exc))
        if config is None:
            return refuse(404, "email is not sent through SendGrid here")
        if not config.webhook_verification_key:
            return refuse(403, "set webhook_verification_key in the SendGrid connector to accept its events")
        body = await request.body()
        if len(body) > _MAX_BODY:
            return refuse(413, "too large")
        signature = request.headers.get(sendgrid_hook.SIGNATURE_HEADER, "")
        timestamp = request.headers.get(sendgrid_hook.TIMESTAMP_HEADER, "")
        if not signature or not sendgrid_hook.verify_signature(
            config.webhook_verification_key, body, signature, timestamp
        ):
            return refuse(403, "the signature does not match")
        try:
            events = sendgrid_hook.parse_events(body)
        except ValueError as exc:
            return refuse(400, str(exc))
        await run_in_threadpool(messaging.feedback.email_events, events)
        return Response(status_code=204)

    async def twilio_form(request: Request) -> dict[str, str] | Response:
        """The request's form once Twilio's signature over it is checked, else the refusal."""
        try:
            connector = messaging.connectors.twilio()
        except EngageError as exc:
            return refuse(503, str(exc))
        if connector is None:
            return refuse(404, "SMS are not sent through Twilio here")
        body = await request.body()
        if len(body) > _MAX_BODY:
            return refuse(413, "too large")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        url = public_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if not connector.verify(url, form, request.headers.get(twilio_hook.SIGNATURE_HEADER, "")):
            return refuse(403, "the signature does not match")
        return form

    @router.post(TWILIO_STATUS_PATH, status_code=204, responses=text_errors(400, 403, 404, 413, 503))
    async def twilio_status(request: Request) -> Response:
        form = await twilio_form(request)
        if isinstance(form, Response):
            return form
        try:
            status = twilio_hook.parse_status(form)
        except ValueError as exc:
            return refuse(400, str(exc))
        await run_in_threadpool(messaging.feedback.sms_status, status, request.query_params.get("send_id"))
        return Response(status_code=204)

    @router.post(
        TWILIO_SMS_PATH,
        response_class=Response,
        responses={200: {"description": "TwiML", "content": {"text/xml": {"schema": {"type": "string"}}}}}
        | text_errors(400, 403, 404, 413, 503),
    )
    async def twilio_sms(request: Request) -> Response:
        form = await twilio_form(request)
        if isinstance(form, Response):
            return form
        try:
            inbound = twilio_hook.parse_inbound(form)
        except ValueError as exc:
            return refuse(400, str(exc))
        reply = await run_in_threadpool(messaging.feedback.inbound_sms, inbound)
        twiml = MessagingResponse()
        if reply.text:
            twiml.message(reply.text)
        return Response(str(twiml), media_type="text/xml")

    return router
