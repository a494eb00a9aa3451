"""An incremental parser of ``text/event-stream`` (server-sent events), after the WHATWG
HTML standard's "event stream interpretation", with no I/O of its own.

Feed it text as it arrives (any chunking, ``\\n``, ``\\r\\n`` or ``\\r`` line ends, even a
``\\r\\n`` split across two chunks); it returns the events completed so far.

One deliberate difference from browsers: an event that has an ``event:`` field but no
``data:`` is still dispatched (with ``data == ""``), since a stream's closing ``event: end``
may carry no data.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import List, Optional

__all__ = ["ServerSentEvent", "SSEDecoder", "Utf8StreamDecoder"]


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event.

    ``event`` is the type (``"message"`` when the stream gave none); ``data`` the ``data:``
    lines joined by ``\\n``; ``id`` the stream's last event id at dispatch (ids persist
    from one event to the next, per the standard) or ``None``; ``retry`` the reconnection
    time in milliseconds if this event set one.
    """

    event: str = "message"
    data: str = ""
    id: Optional[str] = None
    retry: Optional[int] = None


class SSEDecoder:
    """Incremental event-stream parser. ``feed(text)`` returns completed events;
    ``last_event_id`` and ``retry`` hold the stream's current values."""

    def __init__(self, last_event_id: Optional[str] = None) -> None:
        self.last_event_id: Optional[str] = last_event_id
        self.retry: Optional[int] = None
        self._buffer = ""
        self._pending_cr = False
        self._started = False
        self._event_type = ""
        self._data: List[str] = []
        self._has_fields = False
        self._event_retry: Optional[int] = None
        self.comments = 0  # comment lines seen (keepalives)

    def feed(self, text: str) -> List[ServerSentEvent]:
        """Adds text; returns the events that a blank line completed."""
        if not text:
            return []
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._pending_cr:
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]  # the \n of a \r\n split across chunks
        events: List[ServerSentEvent] = []
        buf = self._buffer + text
        start = 0
        n = len(buf)
        i = 0
        while i < n:
            ch = buf[i]
            if ch == "\n" or ch == "\r":
                line = buf[start:i]
                if ch == "\r":
                    if i + 1 < n:
                        if buf[i + 1] == "\n":
                            i += 1
                    else:
                        self._pending_cr = True
                ev = self._line(line)
                if ev is not None:
                    events.append(ev)
                start = i + 1
            i += 1
        self._buffer = buf[start:]
        return events

    def close(self) -> List[ServerSentEvent]:
        """The stream ended. Per the standard an incomplete event (no blank line after it)
        is discarded, so this returns nothing and resets the partial state."""
        self._buffer = ""
        self._reset_event()
        return []

    def _reset_event(self) -> None:
        self._event_type = ""
        self._data = []
        self._has_fields = False
        self._event_retry = None

    def _line(self, line: str) -> Optional[ServerSentEvent]:
        if line == "":
            if not self._has_fields:
                return None
            ev = ServerSentEvent(
                event=self._event_type or "message",
                data="\n".join(self._data),
                id=self.last_event_id,
                retry=self._event_retry,
            )
            dispatch = bool(self._data) or bool(self._event_type)
            self._reset_event()
            return ev if dispatch else None
        if line.startswith(":"):
            self.comments += 1
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event_type = value
            self._has_fields = True
        elif name == "data":
            self._data.append(value)
            self._has_fields = True
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
            self._has_fields = True
        elif name == "retry":
            if value.isdigit():
                self.retry = int(value)
                self._event_retry = self.retry
        # any other field is ignored
        return None


class Utf8StreamDecoder:
    """Bytes to text for an event stream (always UTF-8), a multi-byte character split
    across chunks included; invalid bytes become U+FFFD."""

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def decode(self, data: bytes) -> str:
        return self._dec.decode(data)

    def flush(self) -> str:
        return self._dec.decode(b"", final=True)
