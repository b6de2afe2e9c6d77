"""Chatbot webhooks: Telegram's Bot API, and a generic shape for any other platform."""

import hmac
import logging
from functools import partial
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response, Security
from fastapi.security import APIKeyHeader
from sqlmodel.ext.asyncio.session import AsyncSession

from services.ingest import chatbots, history
from services.ingest import telegram as telegram_updates
from services.ingest.api.common import ANOTHER_SOURCE, JsonBody, KeyedSource, check_ip, client_of, run_once
from services.ingest.capture import Submission, prepare
from services.ingest.chatbots import ChatContact, ChatMessage
from services.ingest.history_schemas import ChatRecorded
from services.ingest.idempotency import Answer, KeyReused
from services.ingest.models import Source
from services.ingest.normalize import phone_region
from services.ingest.sources import hash_key
from services.ingest.telegram import BotChat
from services.ingest.telegram_bot import Pending, TelegramBot, keep
from services.ingest.telegram_replies import reply_due
from shared.error_docs import answers
from shared.http import InvalidInput
from shared.query_parameters import AnyQuery

log = logging.getLogger(__name__)
# Chatbot platforms call these URLs as they see fit: a query parameter they add is not refused.
router = APIRouter(prefix="/v1/chatbots", tags=["chatbots"], dependencies=[JsonBody, AnyQuery])
TELEGRAM_REFUSED = "Telegram secret token missing or wrong"
_telegram_secret = APIKeyHeader(
    name="X-Telegram-Bot-Api-Secret-Token", scheme_name="TelegramSecretToken", auto_error=False
)


@answers(401, 429)
async def telegram_source(
    request: Request, source_id: UUID, secret: Annotated[str | None, Security(_telegram_secret)] = None
) -> Source:
    """The source whose secret Telegram sends; checked before the body is read. One over 256
    characters is none of ours."""
    await check_ip(request)
    source: Source | None = await request.app.state.sources.by_id(source_id)
    expected = source.telegram_secret_hash if source is not None else None
    sent = secret or ""
    if source is None or expected is None or len(sent) > 256:
        raise HTTPException(401, TELEGRAM_REFUSED)
    if not hmac.compare_digest(hash_key(sent), expected):
        raise HTTPException(401, TELEGRAM_REFUSED)
    return source


UPDATE = (
    "A Telegram Bot API Update (https://core.telegram.org/bots/api#update); only `update_id` and "
    "the `message` fields `message_id`, `date`, `chat.id`, `from`, `text`, `caption`, `contact` and "
    "whether it was forwarded (`forward_origin`, `forward_from`, ...) are read."
)


@router.post(
    "/{source_id}/telegram",
    response_class=Response,
    responses={
        200: {"description": "Nothing to record (not a message), or an update dropped (see below)"},
        202: {"model": ChatRecorded, "description": "The message or the contact recorded"},
    },
)
async def telegram(
    request: Request,
    body: Annotated[Any, Body(description=UPDATE)],
    source: Annotated[Source, Depends(telegram_source)],
) -> Response:
    """Point the bot's webhook here (`setWebhook` with `secret_token` = the secret from `POST
    /v1/sources/{id}/telegram-secret`). A contact the sender shares of themselves creates or
    updates the lead (someone else's card does not); text messages become `chat_message`
    activities. A phone number or an email address the sender writes in a message of their own
    (not a forwarded one) makes the lead as their card would, while the chat has none yet: the
    first number, read in the source's region, and the first address.
    Telegram's retries of an update are recognised by its `update_id`.
    An update ingest cannot take (a `date` that is no integer, before Telegram began or a day
    ahead, a U+0000 in any text, a name over 200 characters, a phone that is none, an
    `update_id` already used for another update) is answered 200 and dropped, with a warning
    naming its fields: Telegram reads no answer's body, and it would send a refused one again
    and again. So the body is read here, after the secret, and not by FastAPI, whose refusal
    would be a 422."""
    try:
        update = telegram_updates.read_update(body)
        message = telegram_updates.from_telegram(update, request.app.state.clock())
        if message is None:
            return Response(status_code=200)  # not a message: nothing to record, and Telegram must not retry
        written = telegram_updates.written_in_telegram(update, _region(request, source))
        key = f"telegram:{update.update_id}"
        bot = telegram_updates.bot_chat(update, source)
        return await _receive(request, source, message, written, key, "update_id", bot)
    except (InvalidInput, KeyReused) as error:
        errors = error.errors if isinstance(error, InvalidInput) else [(error.field, "already used")]
        fields = "; ".join(f"{telegram_updates.telegram_field(f)}: {r}" for f, r in errors)
        update_id = telegram_updates.update_id_of(body)
        log.warning("telegram update %s of source %s dropped: %s", update_id, source.id, fields)
        return Response(status_code=200)


@router.post("/{source_id}/messages", status_code=202, response_model=ChatRecorded)
async def message(request: Request, source_id: UUID, data: ChatMessage, source: KeyedSource) -> Response:
    """A message from any chatbot: `contact` (email or phone) makes or updates the lead; `text`
    and `intent` become activities (an intent such as `callback_request` is recorded as that
    activity type). Messages before the contact wait on the conversation; a phone number or an
    email address written in a message's `text` makes the lead as a `contact` would, while the
    conversation has none yet (the first number, read in the source's region, and the first
    address)."""
    if source.id != source_id:  # its holder learns only that this key is not for that id
        raise HTTPException(401, ANOTHER_SOURCE)
    history.refuse_future(data.occurred_at, request.app.state.clock())
    key = f"chat:{data.conversation_id}:{data.message_id}" if data.message_id else None
    written = chatbots.written_contact(data.text, _region(request, source)) if data.contact is None else None
    return await _receive(request, source, data, written, key, "message_id")


def _region(request: Request, source: Source) -> str:
    return phone_region(
        source.default_region, source.default_language, request.app.state.settings.default_phone_region
    )


async def _receive(
    request: Request,
    source: Source,
    message: ChatMessage,
    written: ChatContact | None,
    key: str | None,
    key_field: str,
    bot: BotChat | None = None,
) -> Response:
    """`bot`: the chat the source's bot answers in (`telegram_replies`), after the commit."""
    region = _region(request, source)
    contact: Submission | None = None
    if message.contact is not None:
        contact = prepare(
            source, chatbots.contact_lead(message.contact), region, client_of(request), activity=None
        )
    typed = _written_submission(request, source, written, region)
    now = request.app.state.clock()
    telegram_bot: TelegramBot = request.app.state.telegram_bot
    replies: list[Pending] = []  # set by the work's last run: none when the update was a retry

    async def work(session: AsyncSession) -> Answer:
        conversation = await chatbots.open_conversation(session, source.id, message.conversation_id)
        had_lead = conversation.lead_id is not None
        lead_id = await chatbots.receive(session, source, message, contact, typed, conversation)
        reply = reply_due(conversation, had_lead, bot.chat_id, bot.language, now) if bot else None
        replies.clear()
        if reply is not None and source.telegram_bot_token is not None:  # kept, to be sent until taken
            chat = message.conversation_id
            replies.append(await keep(session, source, chat, reply, now, telegram_bot.lease))
        return Answer(202, {"lead_id": str(lead_id) if lead_id else None, "status": "recorded"})

    payload = partial(message.model_dump, mode="json")
    answer = await run_once(request, source.id, {key_field: key}, payload, work)
    for pending in replies:
        request.app.state.runtime.spawn(telegram_bot.send(pending), "telegram reply")
    return answer


def _written_submission(
    request: Request, source: Source, written: ChatContact | None, region: str
) -> Submission | None:
    """The contact written in a message, or None when there is none or the source cannot take
    it (a required field it lacks): the message then waits as any other, and is not lost."""
    if written is None:
        return None
    try:
        return prepare(source, chatbots.contact_lead(written), region, client_of(request), activity=None)
    except InvalidInput:
        return None
