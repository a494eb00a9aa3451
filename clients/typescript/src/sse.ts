/**
 * A server-sent events parser after the WHATWG HTML "event stream interpretation": lines end in
 * CRLF, LF or CR (a CRLF split across two chunks counts once), a leading BOM is dropped, `:` lines
 * are comments, `data` lines join with "\n", `id` sets the last event id (kept across events, an id
 * with NUL ignored), `retry` sets the reconnection time, and an unfinished event at the end of the
 * stream is discarded.
 *
 * One deliberate difference: an event with an `event:` field but no `data:` line is still
 * dispatched (with data ""), so a bare `event: end` is not lost. Its data is then "".
 */

export interface SSEEvent {
  /** The `event:` field, or "message". */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The last event id at dispatch (this event's `id:`, or an earlier one's), "" if none yet. */
  id: string;
  /** True when this event block carried an `id:` line itself. */
  hasId: boolean;
}

export interface SSEParserOptions {
  /** Called with each comment line's text (without the leading ':'). */
  onComment?: (text: string) => void;
  /** Called when a `retry:` field sets the reconnection time (ms). */
  onRetry?: (ms: number) => void;
}

export class SSEParser {
  private buffer = '';
  private afterCR = false;
  private started = false;
  private dataLines: string[] = [];
  private sawData = false;
  private eventType = '';
  private sawId = false;
  private lastId = '';
  private retry: number | undefined;

  constructor(private readonly options: SSEParserOptions = {}) {}

  /** The last event id seen so far (for `Last-Event-ID`). */
  get lastEventId(): string {
    return this.lastId;
  }

  /** The reconnection time the stream asked for with `retry:`, if it did. */
  get retryMs(): number | undefined {
    return this.retry;
  }

  /** Feeds decoded text; returns the events completed by it, in order. */
  feed(chunk: string): SSEEvent[] {
    const out: SSEEvent[] = [];
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let i = 0;
    if (this.afterCR && text.length > 0) {
      // The previous chunk ended with CR: a LF here belongs to that line ending.
      if (text.charCodeAt(0) === 10) i = 1;
      this.afterCR = false;
    }
    let lineStart = i;
    const n = text.length;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.buffer + text.slice(lineStart, i);
      this.buffer = '';
      if (c === 13) {
        if (i + 1 < n) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else {
          this.afterCR = true;
        }
      }
      lineStart = i + 1;
      this.line(line, out);
    }
    if (lineStart < n) this.buffer += text.slice(lineStart);
    return out;
  }

  /** The stream ended: an unfinished event is discarded (per the spec). Resets for a new stream. */
  end(): void {
    this.buffer = '';
    this.afterCR = false;
    this.started = false;
    this.resetEvent();
  }

  private line(line: string, out: SSEEvent[]): void {
    if (line === '') {
      this.dispatch(out);
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' */) {
      this.options.onComment?.(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    let field: string;
    let value: string;
    if (colon === -1) {
      field = line;
      value = '';
    } else {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.charCodeAt(0) === 32 /* ' ' */) value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.dataLines.push(value);
        this.sawData = true;
        break;
      case 'id':
        if (!value.includes('\u0000')) {
          this.lastId = value;
          this.sawId = true;
        }
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) {
          this.retry = parseInt(value, 10);
          this.options.onRetry?.(this.retry);
        }
        break;
      default:
        // unknown fields are ignored
        break;
    }
  }

  private dispatch(out: SSEEvent[]): void {
    if (this.sawData || this.eventType !== '') {
      out.push({
        event: this.eventType === '' ? 'message' : this.eventType,
        data: this.dataLines.join('\n'),
        id: this.lastId,
        hasId: this.sawId,
      });
    }
    this.resetEvent();
  }

  private resetEvent(): void {
    this.dataLines = [];
    this.sawData = false;
    this.eventType = '';
    this.sawId = false;
  }
}

/** An {@link SSEParser} fed with bytes: decodes UTF-8, a character split across chunks included. */
export class SSEDecoder {
  readonly parser: SSEParser;
  private decoder = new TextDecoder('utf-8');

  constructor(options: SSEParserOptions = {}) {
    this.parser = new SSEParser(options);
  }

  feed(bytes: Uint8Array): SSEEvent[] {
    return this.parser.feed(this.decoder.decode(bytes, { stream: true }));
  }

  /** The stream ended: flushes the decoder; completes no event (an unfinished one is discarded). */
  end(): SSEEvent[] {
    const rest = this.parser.feed(this.decoder.decode());
    this.parser.end();
    this.decoder = new TextDecoder('utf-8');
    return rest;
  }
}
