"""SSE parsing (genworker_client.sse), no server."""
import json

import pytest

from genworker_client._core import event_snapshot
from genworker_client.sse import ServerSentEvent, SSEDecoder, Utf8StreamDecoder

JOB = {"id": "j1", "state": "running", "cancel_requested": False, "progress": {"percent": 40}}


def feed_all(chunks, decoder=None):
    d = decoder or SSEDecoder()
    out = []
    for c in chunks:
        out.extend(d.feed(c))
    return out


def test_job_events_with_ids():
    stream = (
        "event: job\nid: 1\ndata: " + json.dumps(JOB) + "\n\n"
        "event: end\nid: 2\ndata: {}\n\n"
    )
    evs = feed_all([stream])
    assert [e.event for e in evs] == ["job", "end"]
    assert [e.id for e in evs] == ["1", "2"]
    assert json.loads(evs[0].data) == JOB


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings(newline):
    stream = newline.join(["event: job", "id: 7", "data: a", "data: b", "", ""])
    (ev,) = feed_all([stream])
    assert ev == ServerSentEvent(event="job", data="a\nb", id="7")


def test_every_split_point_gives_the_same_events():
    stream = (
        ": keepalive\r\n"
        "event: job\r\nid: 41\r\ndata: {\"id\": \"j\u00e9\", \"state\": \"queued\"}\r\n\r\n"
        ":\r\n"
        "event: end\r\nid: 42\r\n\r\n"
    )
    whole = feed_all([stream])
    assert [e.event for e in whole] == ["job", "end"]
    for i in range(len(stream) + 1):
        assert feed_all([stream[:i], stream[i:]]) == whole, i
    # one character at a time
    assert feed_all(list(stream)) == whole


def test_comments_are_keepalives_not_events():
    d = SSEDecoder()
    assert feed_all([": ping\n\n", ":\n\n"], d) == []
    assert d.comments == 2


def test_field_parsing_details():
    # no space after the colon; only one leading space is stripped; a field with no colon
    evs = feed_all(["data:x\ndata:  y\ndata\n\n"])
    assert evs[0].data == "x\n y\n"
    # unknown fields ignored; id with NUL ignored; retry must be digits
    d = SSEDecoder()
    evs = feed_all(["foo: bar\nid: a\0b\nretry: soon\ndata: z\n\n", "retry: 2500\ndata: w\n\n"], d)
    assert evs[0].id is None and evs[0].retry is None
    assert evs[1].retry == 2500 and d.retry == 2500


def test_ids_persist_and_can_be_reset():
    evs = feed_all(["id: 5\ndata: a\n\ndata: b\n\nid:\ndata: c\n\n"])
    assert [e.id for e in evs] == ["5", "5", ""]


def test_resume_id_is_kept():
    d = SSEDecoder(last_event_id="9")
    (ev,) = d.feed("data: x\n\n")
    assert ev.id == "9"


def test_event_without_data_is_dispatched_when_typed():
    # browsers drop an event with no data; a closing `event: end` may have none
    assert feed_all(["event: end\n\n"]) == [ServerSentEvent(event="end", data="", id=None)]
    # an id-only block is not an event
    assert feed_all(["id: 3\n\n"]) == []


def test_incomplete_event_at_eof_is_discarded():
    d = SSEDecoder()
    assert d.feed("event: job\ndata: {}\n") == []
    assert d.close() == []
    assert d.feed("\n") == []  # the blank line after close does not resurrect it


def test_bom_is_skipped():
    (ev,) = feed_all(["\ufeffdata: x\n\n"])
    assert ev.data == "x"


def test_utf8_split_across_chunks():
    raw = "data: renard \u00e9 \U0001F98A\n\n".encode()
    u = Utf8StreamDecoder()
    d = SSEDecoder()
    out = []
    for i in range(len(raw)):
        out.extend(d.feed(u.decode(raw[i:i + 1])))
    assert out[0].data == "renard \u00e9 \U0001F98A"


def test_event_snapshot():
    snap, end = event_snapshot(ServerSentEvent("job", json.dumps(JOB), "1"))
    assert not end and snap.id == "j1" and snap.progress.percent == 40
    snap, end = event_snapshot(ServerSentEvent("end", "", "2"))
    assert end and snap is None
    snap, end = event_snapshot(ServerSentEvent("end", json.dumps(dict(JOB, state="completed")), "2"))
    assert end and snap.state == "completed"
    snap, end = event_snapshot(ServerSentEvent("job", "not json", "3"))
    assert snap is None and not end
    snap, end = event_snapshot(ServerSentEvent("other", json.dumps(JOB), "3"))
    assert snap is None and not end
