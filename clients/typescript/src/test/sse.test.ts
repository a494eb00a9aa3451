import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SSEDecoder, SSEParser, type SSEEvent } from '../sse.js';

function parseAll(chunks: string[]): SSEEvent[] {
  const p = new SSEParser();
  const out: SSEEvent[] = [];
  for (const c of chunks) out.push(...p.feed(c));
  p.end();
  return out;
}

function ev(event: string, data: string, id = '', hasId = false): SSEEvent {
  return { event, data, id, hasId };
}

/** Every way of cutting `text` in two, plus single characters. */
function splits(text: string): string[][] {
  const out: string[][] = [[text], Array.from(text)];
  for (let i = 0; i <= text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  for (let i = 1; i < text.length; i += 3) {
    for (let j = i; j <= text.length; j += 5) out.push([text.slice(0, i), text.slice(i, j), text.slice(j)]);
  }
  return out;
}

const JOB1 = JSON.stringify({ id: 'a', state: 'queued', cancel_requested: false });
const JOB2 = JSON.stringify({ id: 'a', state: 'completed', cancel_requested: false });
const STREAM =
  `: keepalive\n` +
  `retry: 2000\n\n` +
  `event: job\nid: 1\ndata: ${JOB1}\n\n` +
  `: another comment\n` +
  `event: job\nid: 2\ndata: ${JOB2}\n\n` +
  `event: end\nid: 3\ndata: ${JOB2}\n\n`;
const EXPECTED = [ev('job', JOB1, '1', true), ev('job', JOB2, '2', true), ev('end', JOB2, '3', true)];

describe('SSEParser', () => {
  it('parses event, id and data fields', () => {
    assert.deepEqual(parseAll([STREAM]), EXPECTED);
  });

  it('gives the same events wherever the chunks are cut', () => {
    for (const chunks of splits(STREAM)) assert.deepEqual(parseAll(chunks), EXPECTED, JSON.stringify(chunks));
  });

  it('takes CRLF, CR and LF line endings, mixed, and a CRLF cut between chunks', () => {
    for (const nl of ['\r\n', '\r', '\n']) {
      const text = STREAM.replace(/\n/g, nl);
      for (const chunks of splits(text)) assert.deepEqual(parseAll(chunks), EXPECTED, JSON.stringify(chunks));
    }
    const mixed = 'event: job\r\nid: 7\rdata: x\n\r\n' + 'data: y\r\r';
    assert.deepEqual(parseAll([mixed]), [ev('job', 'x', '7', true), ev('message', 'y', '7')]);
    // "\r" then "\n" in the next chunk is one line ending: no empty line, so no early dispatch.
    assert.deepEqual(parseAll(['data: a\r', '\ndata: b\r', '\n\r', '\n']), [ev('message', 'a\nb')]);
  });

  it('ignores comments and reports them to onComment', () => {
    const comments: string[] = [];
    const p = new SSEParser({ onComment: (c) => comments.push(c) });
    const out = p.feed(':\n: ping\n:x\ndata: 1\n: inside an event\n\n');
    assert.deepEqual(out, [ev('message', '1')]);
    assert.deepEqual(comments, ['', ' ping', 'x', ' inside an event']);
    assert.deepEqual(parseAll([': only comments\n\n: more\n\n']), []);
  });

  it('joins multi-line data with \\n and keeps empty data lines', () => {
    assert.deepEqual(parseAll(['data: a\ndata: b\ndata\ndata:\ndata: c\n\n']), [ev('message', 'a\nb\n\n\nc')]);
    assert.deepEqual(parseAll(['data\n\n']), [ev('message', '')]);
    assert.deepEqual(parseAll(['data: {"a":\ndata: 1}\n\n']), [ev('message', '{"a":\n1}')]);
  });

  it('strips one space after the colon, no more', () => {
    assert.deepEqual(parseAll(['data:  two\ndata:none\n\n']), [ev('message', ' two\nnone')]);
    assert.deepEqual(parseAll(['data: a: b\n\n']), [ev('message', 'a: b')]);
  });

  it('keeps the last id across events, resets it on an empty id, ignores ids with NUL', () => {
    const out = parseAll(['id: 5\ndata: a\n\n', 'data: b\n\n', 'id: x\u0000y\ndata: c\n\n', 'id\ndata: d\n\n']);
    assert.deepEqual(out, [ev('message', 'a', '5', true), ev('message', 'b', '5'), ev('message', 'c', '5'), ev('message', 'd', '', true)]);
    const p = new SSEParser();
    p.feed('id: 42\n\n');
    assert.equal(p.lastEventId, '42', 'an id-only block sets the last id without an event');
  });

  it('dispatches an event with a type and no data (a bare `event: end`)', () => {
    assert.deepEqual(parseAll(['event: end\n\n']), [ev('end', '')]);
    assert.deepEqual(parseAll(['\n\n\n']), [], 'empty lines alone dispatch nothing');
  });

  it('resets the event type after each dispatch', () => {
    assert.deepEqual(parseAll(['event: job\ndata: 1\n\ndata: 2\n\n']), [ev('job', '1'), ev('message', '2')]);
  });

  it('reads retry only when it is all digits', () => {
    const seen: number[] = [];
    const p = new SSEParser({ onRetry: (ms) => seen.push(ms) });
    p.feed('retry: 1500\n\nretry: 1.5\n\nretry: x\n\nretry:300\n\n');
    assert.deepEqual(seen, [1500, 300]);
    assert.equal(p.retryMs, 300);
  });

  it('ignores unknown fields and lines without a known name', () => {
    assert.deepEqual(parseAll(['foo: bar\nDATA: no\nevent: job\ndata: y\n\n']), [ev('job', 'y')]);
  });

  it('drops a leading BOM once', () => {
    assert.deepEqual(parseAll(['\ufeffdata: a\n\n']), [ev('message', 'a')]);
    assert.deepEqual(parseAll(['', '\ufeff', 'data: a\n\n']), [ev('message', 'a')]);
    assert.deepEqual(parseAll(['data: a\n\n\ufeffdata: b\n\n']).length, 1, 'a later BOM is part of a field name');
  });

  it('discards an unfinished event at the end of the stream', () => {
    assert.deepEqual(parseAll(['data: a\n\ndata: b\n']), [ev('message', 'a')]);
    assert.deepEqual(parseAll(['data: a\n\ndata: b']), [ev('message', 'a')]);
  });
});

describe('SSEDecoder', () => {
  it('decodes UTF-8 split anywhere, multi-byte characters included', () => {
    const text = 'event: job\r\nid: é1\r\ndata: {"prompt":"renard roux 🦊 — ünïcödé"}\r\n\r\n';
    const bytes = new TextEncoder().encode(text);
    const expected = [ev('job', '{"prompt":"renard roux 🦊 — ünïcödé"}', 'é1', true)];
    for (let i = 0; i <= bytes.length; i++) {
      for (const j of [i, Math.min(bytes.length, i + 1), Math.min(bytes.length, i + 2), bytes.length]) {
        const d = new SSEDecoder();
        const out = [...d.feed(bytes.slice(0, i)), ...d.feed(bytes.slice(i, j)), ...d.feed(bytes.slice(j)), ...d.end()];
        assert.deepEqual(out, expected, `cut at ${i}, ${j}`);
      }
    }
    const d = new SSEDecoder();
    const out: SSEEvent[] = [];
    for (const b of bytes) out.push(...d.feed(Uint8Array.of(b)));
    assert.deepEqual(out, expected, 'one byte at a time');
  });
});
