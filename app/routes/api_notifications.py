"""/api/v1: notifications, preferences, and Web Push subscriptions."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from app.deps import LiveDep, PrincipalDep, SettingsDep
from app.schemas import (
    Preferences,
    PushKey,
    PushRenewal,
    PushSubscriptionIn,
    PushSubscriptionOut,
    ReadBody,
    UnreadCount,
)
from app.services import notifications, preferences
from realtime.events import Notification


@get("/notifications", summary="Your notifications, newest first")
async def list_notifications(
    principal: PrincipalDep,
    unread: Annotated[bool, QueryParameter(description="Only unread ones")] = False,
    limit: Annotated[int | None, QueryParameter(ge=1, le=100)] = None,
    before: Annotated[str | None, QueryParameter(description="Exclusive: older than this notification id")] = None,
) -> list[Notification]:
    return await notifications.feed(principal.account_id, unread=unread, limit=limit, before=before)


@post("/notifications/read", summary="Mark some or all notifications read", status_code=HTTP_204_NO_CONTENT)
async def mark_read(data: JSONBody[ReadBody], principal: PrincipalDep, live: LiveDep) -> None:
    await notifications.mark_read(principal.account_id, data.ids, data.all_, live)


@get("/notifications/unread", summary="How many of your notifications are unread. Extension.")
async def unread(principal: PrincipalDep) -> UnreadCount:
    return UnreadCount(unread=await notifications.unread_count(principal.account_id))


@get("/notifications/preferences", summary="How you want notifications: per kind, muted circles, quiet hours")
async def get_preferences(principal: PrincipalDep) -> Preferences:
    return await preferences.get(principal.account_id)


@put("/notifications/preferences", summary="Change how you want notifications. Extension.")
async def put_preferences(data: JSONBody[Preferences], principal: PrincipalDep) -> Preferences:
    return await preferences.put(principal.account_id, data)


@get("/push/key", summary="The VAPID application server key (base64url)")
async def push_key(state: State) -> PushKey:
    return PushKey(public_key=state["vapid"].public_key)


@post(
    "/push/subscriptions",
    summary="Register a browser's PushSubscription, for this sign-in",
    description="The subscription ends when this sign-in does (logout, a password change elsewhere, account "
    "deletion). An endpoint belongs to one account: subscribing it removes any other account's subscription of it.",
)
async def subscribe(
    data: JSONBody[PushSubscriptionIn], principal: PrincipalDep, settings: SettingsDep
) -> PushSubscriptionOut:
    return await preferences.subscribe(
        principal.account_id, principal.token_id, data, preferences.allowed_origins(settings)
    )


@post(
    "/push/subscriptions/renew",
    summary="Replace a browser's expired PushSubscription with its new one. Extension.",
    description="For the service worker's pushsubscriptionchange, which has no session to sign in with: the old "
    "subscription's endpoint and auth secret (known only to that browser and this server) prove it. The new one "
    "keeps the old one's account and sign-in. 404 when nothing matches.",
    status_code=HTTP_200_OK,
)
async def renew(data: JSONBody[PushRenewal], settings: SettingsDep) -> PushSubscriptionOut:
    return await preferences.renew(data, preferences.allowed_origins(settings))


@delete(
    "/push/subscriptions/{subscription_id:str}",
    summary="Forget a browser's subscription",
    status_code=HTTP_204_NO_CONTENT,
)
async def unsubscribe(subscription_id: FromPath[str], principal: PrincipalDep) -> None:
    await preferences.unsubscribe(principal.account_id, subscription_id)


ROUTES: list[Any] = [
    list_notifications,
    mark_read,
    unread,
    get_preferences,
    put_preferences,
    push_key,
    subscribe,
    renew,
    unsubscribe,
]
