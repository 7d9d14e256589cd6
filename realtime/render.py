"""The HTML variant of room events, for Kindred's own pages: rendered once per event, not once per socket.

A frame is JSON naming what to change and the fragment to put there. The fragment is the same for every viewer;
what differs per viewer (your own post, coach controls) is applied by the page from data attributes.
"""

from __future__ import annotations

import logging

import msgspec

from realtime.events import (
    DropinChanged,
    LikeChanged,
    PinChanged,
    PostCreated,
    PostDeleted,
    PostUpdated,
    encoder,
    event_decoder,
)
from web.templating import render_fragment

log = logging.getLogger("kindred.render")


class HtmlEvent(msgspec.Struct, tag_field="type", tag="event"):
    room_id: str
    seq: int
    event: str
    # DOM id of the element to replace (updates) or of the post being created.
    target: str
    # For post.created: the DOM id of the parent post whose replies list receives it; None for top-level.
    parent: str | None
    html: str


class HtmlRenderer:
    def html_frame(self, envelope: bytes) -> str | None:
        try:
            event = event_decoder.decode(envelope)
        except msgspec.DecodeError:
            log.error("cannot render undecodable event")
            return None
        if isinstance(event, (PostCreated, PostUpdated)):
            post = event.data
            html = render_fragment("fragments/post.html", post=post, reply_count=None, replies=None)
            return self._frame(
                event.room_id,
                event.seq,
                event.__struct_config__.tag,
                f"post-{post.id}",  # type: ignore[arg-type]
                f"post-{post.parent_id}" if post.parent_id else None,
                html,
            )
        if isinstance(event, PostDeleted):
            html = render_fragment("fragments/post_deleted.html", post_id=event.data.id)
            return self._frame(event.room_id, event.seq, "post.deleted", f"post-{event.data.id}", None, html)
        if isinstance(event, LikeChanged):
            html = render_fragment("fragments/likes.html", like=event.data)
            return self._frame(event.room_id, event.seq, "like.changed", f"likes-{event.data.post_id}", None, html)
        if isinstance(event, PinChanged):
            html = render_fragment("fragments/pin.html", pin=event.data)
            return self._frame(event.room_id, event.seq, "pin.changed", f"pin-{event.data.post_id}", None, html)
        if isinstance(event, DropinChanged):
            return None
        return None

    @staticmethod
    def _frame(room_id: str, seq: int, name: str, target: str, parent: str | None, html: str) -> str:
        frame = HtmlEvent(room_id=room_id, seq=seq, event=name, target=target, parent=parent, html=html)
        return encoder.encode(frame).decode()
