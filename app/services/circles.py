"""Circles, their invites, memberships and rooms."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
from litestar.exceptions import ClientException, PermissionDeniedException

from app.errors import Conflict, Gone, not_found
from app.live import Live
from app.schemas import (
    CircleClosed,
    CircleCreate,
    CircleOut,
    CircleUpdate,
    InviteCreate,
    InviteOut,
    MemberWithIdentity,
    MyMembership,
    RoomCreate,
    RoomOut,
)
from app.services import aliases, audit, care, notifications, safe_alias
from app.services.common import (
    is_unique_violation,
    membership_struct,
    parse_id,
    require_can_write,
    require_coach_role,
    require_member,
)
from app.services.notifications import About
from app.services.outbox import Outbox, unit_of_work
from app.services.posts import decode_shared_from, shared_from_json
from db.engine import write_transaction
from db.queries import now
from db.rows import Member
from db.tables import (
    Account,
    Circle,
    Dropin,
    Invite,
    Membership,
    Room,
    RoomEvent,
)
from db.tables import Post as PostRow
from realtime.events import Dropin as DropinState
from realtime.events import Membership as PublicMembership
from realtime.events import Post, Role, encode_event, encoder, event_decoder

# How long a closed circle can still be reopened before it and everything in it is deleted.
CLOSE_GRACE = timedelta(days=30)


# Invites work for a week unless the coach says otherwise.
DEFAULT_INVITE_HOURS = 24 * 7
# Letters and digits of any script, spaces, and . _ - ; must start and end with a letter or digit.
_ALIAS = re.compile(r"^[^\W_](?:[\w .\-]*[^\W_])?$")
ALIAS_MIN, ALIAS_MAX = 2, 40
DEFAULT_ROOM = ("General", "Anything on the path: reflections, experiments, wins and questions.")


def clean_alias(alias: str) -> str:
    cleaned = " ".join(aliases.normalise(alias).split())
    if not (ALIAS_MIN <= len(cleaned) <= ALIAS_MAX) or not _ALIAS.match(cleaned):
        raise ClientException(
            f"choose an alias of {ALIAS_MIN}-{ALIAS_MAX} letters or digits (spaces, dots, dashes and underscores "
            "may go between them)"
        )
    return cleaned


def alias_from_name(name: str) -> str:
    """The coach's default alias: their display name, less what aliases may not hold ("Siobhán O'Brien" ->
    "Siobhán OBrien"); "Coach" when too little is left."""
    kept = " ".join("".join(ch for ch in name if ch.isalnum() or ch in " .-_").split())[:ALIAS_MAX]
    kept = kept.strip(" .-_")
    return kept if len(kept) >= ALIAS_MIN and _ALIAS.match(kept) else "Coach"


def circle_out(row: dict[str, Any]) -> CircleOut:
    return CircleOut(
        id=str(row["id"]),
        name=row["name"],
        commonality=row["commonality"],
        norms=row["norms"],
        coach_sees_identity=bool(row["coach_sees_identity"]),
        care_resources=care.resources(row.get("care_resources")),
        care_resources_html=care.resources_html(row.get("care_resources")),
    )


def room_out(row: dict[str, Any], dropin_id: uuid.UUID | None = None) -> RoomOut:
    return RoomOut(
        id=str(row["id"]),
        circle_id=str(row["circle"]),
        name=row["name"],
        topic=row["topic"],
        last_seq=int(row["last_seq"]),
        dropin_id=str(dropin_id) if dropin_id else None,
        kind="journal"
        if row.get("kind") == "journal"
        else "dropin"
        if dropin_id or row.get("kind") == "dropin"
        else "room",
        membership_id=str(row["membership"]) if row.get("membership") else None,
    )


async def create_circle(account_id: uuid.UUID, data: CircleCreate) -> CircleOut:
    name = " ".join(data.name.split())
    commonality = data.commonality.strip()
    if not name or not commonality:
        raise ClientException("give the circle a name and describe the path its members share")
    account = await Account.select(Account.name).where(Account.id == account_id).first()
    if account is None:
        raise not_found("account")
    # Clients know their coach, so by default the coach appears under their own name.
    alias = clean_alias(data.coach_alias) if data.coach_alias is not None else alias_from_name(account["name"])
    circle_id, room_id = uuid.uuid4(), uuid.uuid4()
    async with write_transaction():
        await Circle.insert(
            Circle(
                id=circle_id,
                name=name,
                commonality=commonality,
                norms=data.norms.strip(),
                coach_sees_identity=True,
                created_at=now(),
            )
        )
        await Membership.insert(new_membership(uuid.uuid4(), circle_id, account_id, alias, "coach", sees_identity=True))
        await Room.insert(
            Room(
                id=room_id, circle=circle_id, name=DEFAULT_ROOM[0], topic=DEFAULT_ROOM[1], last_seq=0, created_at=now()
            )
        )
    row = await Circle.select().where(Circle.id == circle_id).first()
    assert row is not None
    return circle_out(row)


async def get_circle(account_id: uuid.UUID, circle_id: str) -> tuple[CircleOut, Member]:
    cid = parse_id(circle_id, "circle")
    membership = await require_member(account_id, cid)
    row = await Circle.select().where(Circle.id == cid).first()
    if row is None:
        raise not_found("circle")
    return circle_out(row), membership


async def put_welcome_away(account_id: uuid.UUID, circle_id: str) -> Member:
    """The member has read the welcome card (dismissed it, or took its next step): it never shows again, on any
    device. Returns the membership; a second call changes nothing."""
    cid = parse_id(circle_id, "circle")
    membership = await require_member(account_id, cid)
    if membership.welcomed_at is None:
        await Membership.update({Membership.welcomed_at: now()}).where(
            (Membership.id == membership.id) & Membership.welcomed_at.is_null()
        )
    return membership


IDENTITY_ON_NOTICE = (
    "Your coach can now see the name and email of members who join this circle from now on. You joined before, "
    "so your coach still sees only your alias."
)
IDENTITY_OFF_NOTICE = "Your coach can no longer see any member's name or email in this circle, only aliases."


async def update_circle(account_id: uuid.UUID, circle_id: str, data: CircleUpdate, live: Live) -> CircleOut:
    cid = parse_id(circle_id, "circle")
    membership = await require_member(account_id, cid)
    require_coach_role(membership, "change the circle")
    values: dict[Any, Any] = {}
    if data.name is not msgspec.UNSET:
        values[Circle.name] = " ".join(data.name.split()) or None
    if data.commonality is not msgspec.UNSET:
        values[Circle.commonality] = data.commonality.strip() or None
    if data.norms is not msgspec.UNSET:
        values[Circle.norms] = data.norms.strip()
    if data.coach_sees_identity is not msgspec.UNSET:
        values[Circle.coach_sees_identity] = data.coach_sees_identity
    if data.care_resources is not msgspec.UNSET:
        # Stored as written; empty or null shows the default again.
        values[Circle.care_resources] = (data.care_resources or "").strip() or None
    if any(v is None for k, v in values.items() if k is not Circle.care_resources):
        raise ClientException("a circle needs a name and a commonality")
    async with unit_of_work(live) as outbox:
        current = await Circle.select(Circle.coach_sees_identity).where(Circle.id == cid).first()
        assert current is not None
        if values:
            await Circle.update(values).where(Circle.id == cid)
        identity = data.coach_sees_identity
        if identity is not msgspec.UNSET and identity != bool(current["coach_sees_identity"]):
            await _identity_changed(outbox, cid, membership, identity)
    row = await Circle.select().where(Circle.id == cid).first()
    assert row is not None
    return circle_out(row)


async def _identity_changed(outbox: Outbox, cid: uuid.UUID, coach: Member, visible: bool) -> None:
    """Consent is per membership, taken at join time: turning the setting on reaches only those who join afterwards
    (the join page tells them); turning it off withdraws it from everyone, for good. Logged, and members are told."""
    if not visible:
        await Membership.update({Membership.coach_sees_identity: False}).where(
            (Membership.circle == cid) & (Membership.role != "coach")
        )
    await audit.record(cid, coach, "identity_on" if visible else "identity_off")
    members = await notifications.members_of(cid, roles=("member",))
    await notifications.notify(
        outbox,
        "circle.privacy",
        members,
        coach,
        About(cid),
        reason=IDENTITY_ON_NOTICE if visible else IDENTITY_OFF_NOTICE,
    )


async def create_invite(account_id: uuid.UUID, circle_id: str, data: InviteCreate, base_url: str) -> InviteOut:
    cid = parse_id(circle_id, "circle")
    membership = await require_member(account_id, cid)
    require_coach_role(membership, "invite people")
    require_can_write(membership)
    code = secrets.token_urlsafe(12)
    hours = data.expires_in_hours or DEFAULT_INVITE_HOURS
    expires_at = now() + timedelta(hours=hours)
    await Invite.insert(
        Invite(
            id=uuid.uuid4(),
            circle=cid,
            code=code,
            created_by=membership.id,
            max_uses=data.max_uses,
            uses=0,
            expires_at=expires_at,
            created_at=now(),
        )
    )
    return InviteOut(
        code=code,
        url=f"{base_url}/join/{code}",
        expires_at=expires_at.isoformat().replace("+00:00", "Z"),
        max_uses=data.max_uses,
    )


async def invite_circle(code: str) -> dict[str, Any]:
    """The circle an invite code opens, for the join page; 404/410 exactly as joining would answer."""
    invite = await _usable_invite(code)
    row = await Circle.select().where(Circle.id == invite["circle"]).first()
    if row is None:
        raise not_found("invite")
    return row


async def _usable_invite(code: str) -> dict[str, Any]:
    if not code or len(code) > 32:
        raise not_found("invite")
    invite = await Invite.select().where(Invite.code == code).first()
    if invite is None:
        raise not_found("invite")
    if invite["expires_at"] <= now():
        raise Gone("this invite has expired; ask your coach for a new link")
    if invite["max_uses"] is not None and invite["uses"] >= invite["max_uses"]:
        raise Gone("this invite has been used up; ask your coach for a new link")
    if await Circle.exists().where((Circle.id == invite["circle"]) & Circle.closed_at.is_not_null()):
        raise Gone("this circle has been closed by its coach")
    return invite


async def alias_taken(
    circle_id: uuid.UUID, alias: str, account_id: uuid.UUID, *, except_membership: uuid.UUID | None = None
) -> str | None:
    """Why someone else holds the alias in this circle, or None: a current member, or a former one whose old posts
    still show it (anyone else taking it could pass as them), by the same letters in any case or by letters that
    look the same (aliases.py). A former member's alias stays theirs to use again."""
    key, skeleton = aliases.alias_key(alias), aliases.alias_skeleton(alias)
    query = Membership.select(Membership.alias_key, Membership.role).where(
        (Membership.circle == circle_id)
        & ((Membership.alias_key == key) | (Membership.alias_skeleton == skeleton))
        & (Membership.removed_at.is_null() | (Membership.account != account_id))
    )
    if except_membership is not None:
        query = query.where(Membership.id != except_membership)
    holders = await query
    if not holders:
        return None
    if any(h["alias_key"] == key for h in holders):
        return ALIAS_TAKEN
    if any(h["role"] == "coach" for h in holders):
        return f"“{alias}” looks too much like your coach's alias; choose a name that reads differently"
    return f"“{alias}” looks too much like an alias someone in this circle already has; choose a name that reads differently"


def new_membership(
    membership_id: uuid.UUID,
    circle_id: uuid.UUID,
    account_id: uuid.UUID,
    alias: str,
    role: Role,
    sees_identity: bool,
) -> Membership:
    """A membership row to insert, starting now, with its alias's look-up key and look-alike skeleton."""
    return Membership(
        id=membership_id,
        circle=circle_id,
        account=account_id,
        alias=alias,
        alias_key=aliases.alias_key(alias),
        alias_skeleton=aliases.alias_skeleton(alias),
        role=role,
        joined_at=now(),
        coach_sees_identity=sees_identity,
    )


def alias_columns(alias: str) -> dict[Any, str]:
    """The membership columns an alias sets, for an update."""
    return {
        Membership.alias: alias,
        Membership.alias_key: aliases.alias_key(alias),
        Membership.alias_skeleton: aliases.alias_skeleton(alias),
    }


ALIAS_TAKEN = "that alias is taken in this circle; choose another"
REMOVED_BY_COACH = (
    "your coach removed you from this circle, so you cannot join it again; if you think that was a mistake, "
    "ask your coach, who can let you back in"
)


async def join(account_id: uuid.UUID, code: str, alias: str) -> MyMembership:
    alias = clean_alias(alias)
    invite = await _usable_invite(code)
    circle_id = invite["circle"]
    membership_id = uuid.uuid4()
    try:
        async with write_transaction():
            before = await Membership.select(Membership.removed_at, Membership.rejoin_blocked).where(
                (Membership.account == account_id) & (Membership.circle == circle_id)
            )
            if any(m["removed_at"] is None for m in before):
                raise Conflict("you are already a member of this circle")
            # Only the person removed is told, and only that the coach removed them; leaving by yourself does not bar you.
            if any(m["rejoin_blocked"] for m in before):
                raise PermissionDeniedException(REMOVED_BY_COACH)
            if clash := await alias_taken(circle_id, alias, account_id):
                raise Conflict(clash)
            circle = await Circle.select(Circle.coach_sees_identity).where(Circle.id == circle_id).first()
            if circle is None:
                raise not_found("invite")
            # Counted in the same statement that checks the limit, so two joins cannot both take the last use.
            taken = await Invite.raw(
                "UPDATE invite SET uses = uses + 1 WHERE id = {} AND (max_uses IS NULL OR uses < max_uses) "
                "AND expires_at > {} RETURNING id",
                invite["id"],
                now(),
            )
            if not taken:
                raise Gone("this invite has just been used up; ask your coach for a new link")
            # Consent is what the join page said at this moment; turning the setting on later does not change it.
            consent = bool(circle["coach_sees_identity"])
            await Membership.insert(new_membership(membership_id, circle_id, account_id, alias, "member", consent))
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict(ALIAS_TAKEN) from None
        raise
    return MyMembership(
        membership_id=str(membership_id),
        circle_id=str(circle_id),
        alias=alias,
        role="member",
        warnings=safe_alias.warnings(alias),
    )


async def members(account_id: uuid.UUID, circle_id: str) -> list[PublicMembership] | list[MemberWithIdentity]:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    circle = await Circle.select(Circle.coach_sees_identity).where(Circle.id == cid).first()
    assert circle is not None
    where = (Membership.circle == cid) & Membership.removed_at.is_null()
    if me.role == "coach" and circle["coach_sees_identity"]:
        rows = (
            await Membership.select(
                Membership.id,
                Membership.alias,
                Membership.role,
                Membership.coach_sees_identity,
                Membership.account.name.as_alias("name"),
                Membership.account.email.as_alias("email"),
            )
            .where(where)
            .order_by(Membership.joined_at)
        )
        # Only members who joined while the setting was on agreed to it; the others stay aliases to the coach too.
        return [
            MemberWithIdentity(
                membership_id=str(r["id"]),
                alias=r["alias"],
                role=r["role"],
                name=r["name"] if r["coach_sees_identity"] else None,
                email=r["email"] if r["coach_sees_identity"] else None,
            )
            for r in rows
        ]
    rows = (
        await Membership.select(Membership.id, Membership.alias, Membership.role)
        .where(where)
        .order_by(Membership.joined_at)
    )
    return [membership_struct(r) for r in rows]


async def create_room(account_id: uuid.UUID, circle_id: str, data: RoomCreate) -> RoomOut:
    cid = parse_id(circle_id, "circle")
    membership = await require_member(account_id, cid)
    require_coach_role(membership, "open rooms")
    require_can_write(membership)
    name = " ".join(data.name.split())
    if not name:
        raise ClientException("give the room a name")
    room_id = uuid.uuid4()
    await Room.insert(Room(id=room_id, circle=cid, name=name, topic=data.topic.strip(), last_seq=0, created_at=now()))
    row = await Room.select().where(Room.id == room_id).first()
    assert row is not None
    return room_out(row)


async def rooms(account_id: uuid.UUID, circle_id: str) -> list[RoomOut]:
    cid = parse_id(circle_id, "circle")
    await require_member(account_id, cid)
    # Journals are never listed here: each is its member's and the coach's (GET /circles/{id}/journals).
    rows = await Room.select().where((Room.circle == cid) & (Room.kind != "journal")).order_by(Room.created_at)
    dropin_rooms = {r["room"]: r["id"] for r in await Dropin.select(Dropin.room, Dropin.id).where(Dropin.circle == cid)}
    return [room_out(r, dropin_rooms.get(r["id"])) for r in rows]


# --- an alias changed -------------------------------------------------------------------------------------------


async def _rewrite_author_alias(membership_id: uuid.UUID, alias: str) -> None:
    """Make the alias a member left behind unrecoverable from anything peers can read. Runs inside the caller's
    transaction. The member's posts (rows are joined at read time) and their events in the room log get the new
    alias; shares naming them as `shared_from.author` too; and @mentions of them in other people's posts keep the
    writer's words but lose the link to the membership, so the old alias cannot be tied to the new one."""
    mid = str(membership_id)
    link = f'<span class="mention" data-membership="{mid}">'
    events = await RoomEvent.select(RoomEvent.id, RoomEvent.room, RoomEvent.seq, RoomEvent.type, RoomEvent.data).where(
        RoomEvent.type.is_in(["post.created", "post.updated", "dropin.state"]) & RoomEvent.data.like(f"%{mid}%")
    )
    for e in events:
        event = event_decoder.decode(encode_event(str(e["room"]), e["seq"], e["type"], e["data"].encode()))
        data: Post | DropinState
        if isinstance(event.data, Post):
            data = _relabel(event.data, mid, alias)
            data.html = data.html.replace(link, '<span class="mention">')
        elif isinstance(event.data, DropinState) and (event.data.spotlight_post is not None or event.data.called):
            # A drop-in's state carries its spotlighted post, author and all, and the member called on.
            data = event.data
            if event.data.spotlight_post is not None:
                spotlit = _relabel(event.data.spotlight_post, mid, alias)
                spotlit.html = spotlit.html.replace(link, '<span class="mention">')
                data.spotlight_post = spotlit
            if data.called is not None and data.called.membership_id == mid:
                data.called = msgspec.structs.replace(data.called, alias=alias)
        else:
            continue
        await RoomEvent.update({RoomEvent.data: encoder.encode(data).decode()}).where(RoomEvent.id == e["id"])
    for row in await PostRow.select(PostRow.id, PostRow.html, PostRow.shared_from).where(
        PostRow.html.like(f"%{link}%") | PostRow.shared_from.like(f"%{mid}%")
    ):
        values: dict[Any, Any] = {PostRow.html: row["html"].replace(link, '<span class="mention">')}
        if row["shared_from"]:
            shared = decode_shared_from(row["shared_from"])
            if shared.author is not None and shared.author.membership_id == mid:
                relabelled = msgspec.structs.replace(shared.author, alias=alias)
                values[PostRow.shared_from] = shared_from_json(msgspec.structs.replace(shared, author=relabelled))
        await PostRow.update(values).where(PostRow.id == row["id"])


def _relabel(post: Post, membership_id: str, alias: str) -> Post:
    if post.author.membership_id == membership_id:
        post.author = msgspec.structs.replace(post.author, alias=alias)
    shared = post.shared_from
    if shared is not None and shared.author is not None and shared.author.membership_id == membership_id:
        post.shared_from = msgspec.structs.replace(shared, author=msgspec.structs.replace(shared.author, alias=alias))
    return post


async def change_alias(account_id: uuid.UUID, circle_id: str, alias: str, live: Live) -> MyMembership:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    # A new alias is a new face in the circle: not while muted, not in a closed (read-only) circle.
    require_can_write(me)
    alias = clean_alias(alias)
    try:
        async with write_transaction():
            if clash := await alias_taken(cid, alias, account_id, except_membership=me.id):
                raise Conflict(clash)
            await Membership.update(alias_columns(alias)).where(Membership.id == me.id)
            await _rewrite_author_alias(me.id, alias)
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict(ALIAS_TAKEN) from None
        raise
    rooms = [r["id"] for r in await Room.select(Room.id).where(Room.circle == cid)]
    who = PublicMembership(membership_id=str(me.id), alias=alias, role=me.role)
    await live.alias_changed(account_id, cid, who, rooms)
    return MyMembership(
        membership_id=str(me.id), circle_id=str(cid), alias=alias, role=me.role, warnings=safe_alias.warnings(alias)
    )


# --- closing a circle (archived at once, deleted after a grace period) ------------------------------------------


async def close_circle(account_id: uuid.UUID, circle_id: str, live: Live) -> CircleClosed:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    require_coach_role(me, "close the circle")
    closed_at, delete_after = now(), now() + CLOSE_GRACE
    async with unit_of_work(live) as outbox:
        await Circle.update({Circle.closed_at: closed_at, Circle.delete_after: delete_after}).where(Circle.id == cid)
        await audit.record(cid, me, "close")
        outbox.access_changed(cid)
        members = await notifications.members_of(cid)
        await notifications.notify(
            outbox,
            "circle.closed",
            members,
            me,
            About(cid),
            reason=f"Your coach closed this circle. It stays readable until {delete_after:%d %b %Y}, then it is deleted.",
        )
    return CircleClosed(id=str(cid), closed_at=_iso(closed_at), delete_after=_iso(delete_after))


async def reopen_circle(account_id: uuid.UUID, circle_id: str, live: Live) -> CircleClosed:
    cid = parse_id(circle_id, "circle")
    me = await require_member(account_id, cid)
    require_coach_role(me, "reopen the circle")
    async with write_transaction():
        await Circle.update({Circle.closed_at: None, Circle.delete_after: None}).where(Circle.id == cid)
        await audit.record(cid, me, "reopen")
    await live.access_changed(cid)
    return CircleClosed(id=str(cid), closed_at=None, delete_after=None)


async def purge_closed_circles() -> int:
    """Delete circles whose grace period has passed, with everything in them (cascading). Returns how many."""
    due = await Circle.select(Circle.id).where(Circle.delete_after.is_not_null() & (Circle.delete_after <= now()))
    for circle in due:
        await Circle.delete().where(Circle.id == circle["id"])
    return len(due)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def closed_state(circle_id: str) -> dict[str, Any] | None:
    """When and until when the circle is closed, or None while it is open."""
    row = (
        await Circle.select(Circle.closed_at, Circle.delete_after)
        .where((Circle.id == parse_id(circle_id, "circle")) & Circle.closed_at.is_not_null())
        .first()
    )
    return row
