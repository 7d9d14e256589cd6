"""The sans-I/O realtime core, without sockets: frame parsing, sequencing, catch-up, flood control."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.events import EventHead, PresenceFrame, bus_decoder, encode_event, event_decoder
from realtime.protocol import (
    FloodGuard,
    FrameError,
    Ping,
    PostOp,
    Sequencer,
    Subscribe,
    Unsubscribe,
    parse_client_frame,
)
from realtime.topics import Topics


def test_parse_valid_frames() -> None:
    assert parse_client_frame('{"op":"subscribe","room_id":"r1"}') == Subscribe(room_id="r1")
    assert parse_client_frame('{"op":"subscribe","room_id":"r1","since":7}') == Subscribe(room_id="r1", since=7)
    assert parse_client_frame(b'{"op":"unsubscribe","room_id":"r1"}') == Unsubscribe(room_id="r1")
    assert parse_client_frame('{"op":"ping"}') == Ping()


def test_parse_rejects_with_reasons() -> None:
    for raw, words in [
        ("nope", "not valid JSON"),
        ('{"op":"subscribe"}', "room_id"),
        ('{"op":"subscribe","room_id":5}', "Expected `str`"),
        ('{"op":"subscribe","room_id":"r","since":-2}', "since"),
        ('{"op":"subscribe","room_id":""}', "room id"),
        ('{"op":"ping","extra":1}', "unknown field"),
        ('{"op":"explode"}', "Invalid value 'explode'"),
        ('{"op":"subscribe","room_id":"' + "r" * 65 + '"}', "room id"),
    ]:
        result = parse_client_frame(raw)
        assert isinstance(result, FrameError), raw
        assert words in result.detail, (raw, result.detail)


def test_parse_post_frames() -> None:
    frame = parse_client_frame('{"op":"post","room_id":"r1","client_id":"c1","body":"hi"}')
    assert isinstance(frame, PostOp)
    assert (frame.room_id, frame.client_id, frame.body, frame.kind, frame.parent_id) == (
        "r1",
        "c1",
        "hi",
        "reflection",
        None,
    )
    assert bytes(frame.experiment) == b"", "no experiment: nothing for the application to decode"
    full = parse_client_frame(
        json.dumps(
            {
                "op": "post",
                "room_id": "r1",
                "client_id": "c2",
                "body": "",
                "kind": "experiment",
                "parent_id": "p1",
                "content_note": "grief",
                "reply_wish": "listen",
                "experiment": {"assumption": "a", "belief_before": 50},
            }
        )
    )
    assert isinstance(full, PostOp)
    assert (full.kind, full.parent_id, full.content_note, full.reply_wish) == ("experiment", "p1", "grief", "listen")
    assert json.loads(bytes(full.experiment)) == {"assumption": "a", "belief_before": 50}


def test_post_frames_that_do_not_parse_name_the_field_the_op_and_the_client_id() -> None:
    cases: list[tuple[dict[str, object], str, str | None]] = [
        ({"room_id": "r", "client_id": "c", "body": 5}, "$.body", "c"),
        ({"room_id": "r", "body": "hi"}, "client_id", None),
        ({"room_id": "r", "client_id": "c" * 65, "body": "hi"}, "$.client_id", None),
        ({"room_id": "r", "client_id": 7, "body": "hi"}, "$.client_id", None),
        ({"client_id": "c", "body": "hi"}, "room_id", "c"),
        ({"room_id": "r" * 65, "client_id": "c"}, "$.room_id", "c"),
        ({"room_id": "r", "client_id": "c", "kind": "rant"}, "$.kind", "c"),
        ({"room_id": "r", "client_id": "c", "content_note": "n" * 81}, "$.content_note", "c"),
        ({"room_id": "r", "client_id": "c", "reply_wish": "fix"}, "$.reply_wish", "c"),
        ({"room_id": "r", "client_id": "c", "parent_id": ""}, "$.parent_id", "c"),
        ({"room_id": "r", "client_id": "c", "html": "<b>"}, "unknown field `html`", "c"),
    ]
    for frame, words, client_id in cases:
        result = parse_client_frame(json.dumps({"op": "post", **frame}))
        assert isinstance(result, FrameError), frame
        assert (result.code, result.op, result.client_id) == ("bad_frame", "post", client_id), (frame, result)
        assert words in result.detail, (frame, result.detail)
    # Other ops' refusals say nothing of posts.
    other = parse_client_frame('{"op":"subscribe","client_id":"c"}')
    assert isinstance(other, FrameError) and (other.op, other.client_id) == (None, None)


def test_since_is_bounded_to_what_a_database_can_compare() -> None:
    ok = parse_client_frame('{"op":"subscribe","room_id":"r","since":9223372036854775807}')
    assert ok == Subscribe(room_id="r", since=2**63 - 1)
    for since in (2**63, 2**64, 10**30, -1):
        result = parse_client_frame(json.dumps({"op": "subscribe", "room_id": "r", "since": since}))
        assert isinstance(result, FrameError) and "since" in result.detail, since


@settings(max_examples=400)
@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_any_since_parses_into_a_bounded_int_or_a_bad_frame(since: int) -> None:
    result = parse_client_frame(json.dumps({"op": "subscribe", "room_id": "r", "since": since}))
    if isinstance(result, Subscribe):
        assert result.since is not None and 0 <= result.since <= 2**63 - 1
    else:
        assert isinstance(result, FrameError) and not 0 <= since <= 2**63 - 1


@settings(max_examples=400)
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.integers(min_value=2**62, max_value=2**70)
            | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["op", "room_id", "since", "x", "client_id", "body", "experiment"]),
                    inner | st.sampled_from(["post", "subscribe"]),
                    max_size=5,
                )
            ),
            max_leaves=10,
        ).map(json.dumps),
    )
)
def test_parser_never_raises(raw: str | bytes) -> None:
    result = parse_client_frame(raw)
    assert isinstance(result, (Subscribe, Unsubscribe, Ping, PostOp, FrameError))
    if isinstance(result, FrameError):
        assert result.op in (None, "post")
        assert result.client_id is None or (result.op == "post" and len(result.client_id) <= 64)


@settings(max_examples=200)
@given(
    st.integers(min_value=0, max_value=3000),
    st.sampled_from([b"[", b'{"a":']),
    st.binary(min_size=1, max_size=4).filter(lambda b: not _utf8(b)),
    st.integers(min_value=0, max_value=30),
)
def test_hostile_bytes_are_bad_frames(depth: int, opener: bytes, invalid: bytes, at: int) -> None:
    """The two shapes schemathesis could never send (issue 12): invalid UTF-8 inside a JSON string, and nesting far
    past the parser's limit. Both are a `bad_frame` error, never an exception."""
    body = b'{"op": "subscribe", "room_id": "' + b"r" * at + invalid + b'", "since": 0}'
    assert isinstance(parse_client_frame(body), FrameError)
    nested = opener * depth
    result = parse_client_frame(nested + b"1" + (b"]" if opener == b"[" else b"}") * depth)
    assert isinstance(result, FrameError)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_sequencer_in_order_fast_path() -> None:
    seq: Sequencer[str] = Sequencer(0)
    assert seq.offer(1, "a") == [(1, "a")]
    assert seq.offer(2, "b") == [(2, "b")]
    assert seq.gap() is None and seq.last == 2


def test_sequencer_reorders_drops_duplicates_and_reports_gaps() -> None:
    seq: Sequencer[str] = Sequencer(10)
    assert seq.offer(9, "old") == []
    assert seq.offer(13, "c") == []
    assert seq.gap() == (11, 12)
    assert seq.offer(12, "b") == []
    assert seq.gap() == (11, 11)
    assert seq.offer(13, "c-again") == []
    assert seq.offer(11, "a") == [(11, "a"), (12, "b"), (13, "c")]
    assert seq.gap() is None and seq.pending == 0


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=120), st.randoms())
def test_sequencer_releases_each_seq_once_in_order(extra: list[int], rng: random.Random) -> None:
    arrivals = list(range(1, 41)) + extra
    rng.shuffle(arrivals)
    seq: Sequencer[int] = Sequencer(0)
    released = [s for arrival in arrivals for s, _ in seq.offer(arrival, arrival)]
    assert released == list(range(1, 41))


def test_flood_guard_allows_bursts_then_refills() -> None:
    guard = FloodGuard(rate=10, burst=20, now=0.0)
    assert all(guard.allow(0.0) for _ in range(20))
    assert not guard.allow(0.0)
    assert guard.allow(0.1)
    assert not guard.allow(0.1)
    assert all(guard.allow(10.0) for _ in range(20))


def test_event_envelope_is_the_wire_frame_and_decodes_both_ways() -> None:
    data = json.dumps({"id": "p", "room_id": "r"}).encode()
    raw = encode_event("r", 3, "post.deleted", data)
    assert json.loads(raw) == {
        "type": "event",
        "room_id": "r",
        "seq": 3,
        "event": "post.deleted",
        "data": {"id": "p", "room_id": "r"},
    }
    assert bus_decoder.decode(raw) == EventHead(room_id="r", seq=3, event="post.deleted")
    assert event_decoder.decode(raw).data.id == "p"
    presence = bus_decoder.decode(b'{"type":"presence","room_id":"r","present":[],"hands":[]}')
    assert isinstance(presence, PresenceFrame)


def test_topics_are_prefixed_and_parse_back() -> None:
    topics = Topics("kx")
    assert topics.room("r1") == "kx:room:r1"
    assert topics.parse(topics.account("a1")) == ("account", "a1")
    assert topics.parse("other:room:r1") is None
    assert topics.parse("kx:weird:1") is None
