"""The HTML variant of room events, for Kindred's own pages: rendered once per event, not once per socket.

A frame is JSON naming what to change and the fragment to put there. The fragment is the same for every viewer;
what differs per viewer (your own post, coach controls) is applied by the page from data attributes.
"""

from __future__ import annotations

import logging

import msgspec

from realtime.events import (
    DropinChanged,
    ExperimentChanged,
    LikeChanged,
    PinChanged,
    PostCreated,
    PostDeleted,
    PostUpdated,
    RoomEvent,
    encoder,
    event_decoder,
)
from web.templating import render_fragment

log = logging.getLogger("kindred.render")


class HtmlEvent(msgspec.Struct, tag_field="type", tag="event"):
    room_id: str
    seq: int
    event: str
    # The post the event is about; for dropin.state, the drop-in's id.
    post_id: str
    # For post.created: the post whose replies list receives the new one; None for a top-level post.
    parent_id: str | None
    html: str
    # For dropin.state: the drop-in's state, so a page can tell a change of state from a change of spotlight.
    state: str | None = None


class HtmlRenderer:
    def html_frame(self, envelope: bytes) -> str | None:
        try:
            event = event_decoder.decode(envelope)
        except msgspec.DecodeError:
            log.error("cannot render an undecodable event")
            return None
        if isinstance(event, PostCreated):
            post = event.data
            html = render_fragment("fragments/post.html", post=post)
            return self._frame(event, post.id, post.parent_id, html)
        if isinstance(event, PostUpdated):
            post = event.data
            return self._frame(event, post.id, post.parent_id, render_fragment("fragments/post_main.html", post=post))
        if isinstance(event, PostDeleted):
            return self._frame(event, event.data.id, None, render_fragment("fragments/post_deleted.html"))
        if isinstance(event, LikeChanged):
            return self._frame(
                event, event.data.post_id, None, render_fragment("fragments/likes.html", like=event.data)
            )
        if isinstance(event, PinChanged):
            return self._frame(event, event.data.post_id, None, render_fragment("fragments/pin.html", pin=event.data))
        if isinstance(event, ExperimentChanged):
            move = event.data
            html = render_fragment("fragments/experiment_card.html", post_id=move.post_id, e=move.experiment)
            return self._frame(event, move.post_id, None, html)
        if isinstance(event, DropinChanged):
            dropin = event.data
            html = render_fragment("fragments/spotlight.html", dropin=dropin)
            frame = HtmlEvent(
                room_id=event.room_id,
                seq=event.seq,
                event="dropin.state",
                post_id=dropin.id,
                parent_id=None,
                html=html,
                state=dropin.state,
            )
            return encoder.encode(frame).decode()
        return None

    @staticmethod
    def _frame(event: RoomEvent, post_id: str, parent_id: str | None, html: str) -> str:
        name = type(event).__struct_config__.tag
        frame = HtmlEvent(
            room_id=event.room_id, seq=event.seq, event=str(name), post_id=post_id, parent_id=parent_id, html=html
        )
        return encoder.encode(frame).decode()
