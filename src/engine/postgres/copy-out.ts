/**
 * `COPY … TO STDOUT` as a stream of big buffers: pg-copy-streams' query with a message parser that
 * gathers each socket read's CopyData payloads (one row each) in place, into one view of it.
 * pg-copy-streams' own parser takes every row out of a buffer list as a Buffer of its own and then
 * joins them: at a few million rows a backup that is two allocations and a copy per row on the
 * thread that also cuts and hashes them. Everything else (taking the connection's socket over,
 * handing it back with the bytes after the COPY, errors) is pg-copy-streams'.
 */
import type { Readable } from 'node:stream';
import { to as copyTo } from 'pg-copy-streams';

const CopyData = 0x64;
const ErrorResponse = 0x45;
/** Messages that may come between CopyData ones; any other ends copy-out mode (see the protocol). */
const INTERSPERSED = new Set([0x48 /* CopyOutResponse */, CopyData, 0x53, 0x4e, 0x41]);

/** pg-copy-streams' CopyStreamQuery, as much of it as this parser uses. */
interface CopyToQuery extends Readable {
  _buffer: { push(b: Buffer): void };
  _detach(): void;
  _cleanup(): void;
  _parse(chunk: Buffer): boolean | undefined;
}

interface State {
  /** Bytes of a message header split across socket reads. */
  head: Buffer | undefined;
  code: number;
  /** Payload bytes of the current message still to come. */
  remaining: number;
}

/** A copy-out query for `client.query()`; reads like pg-copy-streams' `to()`. */
export function copyOut(sql: string): ReturnType<typeof copyTo> {
  const made = copyTo(sql);
  const query = made as unknown as CopyToQuery;
  const s: State = { head: undefined, code: 0, remaining: 0 };
  query._parse = (chunk: Buffer) => parse(query, s, chunk);
  return made;
}

function parse(q: CopyToQuery, s: State, chunk: Buffer): boolean | undefined {
  // The socket's buffer is ours once read: payloads are moved left over the headers between them
  // (copyWithin: no allocation or wrapper per row, unlike Buffer#copy) and sent as one view.
  const buf = s.head ? Buffer.concat([s.head, chunk]) : chunk;
  s.head = undefined;
  let written = 0;
  let p = 0;
  let done = false;
  while (p < buf.length) {
    if (s.remaining > 0) {
      const n = Math.min(s.remaining, buf.length - p);
      if (s.code === CopyData) {
        if (written !== p) buf.copyWithin(written, p, p + n);
        written += n;
      }
      p += n;
      s.remaining -= n;
      if (s.remaining > 0) break;
      if (!INTERSPERSED.has(s.code)) {
        done = true;
        break;
      }
      continue;
    }
    if (buf[p] === ErrorResponse) {
      // pg parses the error and what follows, and fails the query
      q._buffer.push(buf.subarray(p));
      q._detach();
      return undefined;
    }
    if (buf.length - p < 5) {
      s.head = Buffer.from(buf.subarray(p));
      break;
    }
    s.code = buf[p]!;
    s.remaining = buf.readUInt32BE(p + 1) - 4;
    p += 5;
    if (s.remaining === 0 && !INTERSPERSED.has(s.code)) {
      done = true;
      break;
    }
  }
  const drained = written > 0 ? q.push(buf.subarray(0, written)) : true;
  if (done) {
    // what follows the COPY (CommandComplete, ReadyForQuery) is pg's to read; compaction only
    // wrote below p
    if (p < buf.length) q._buffer.push(buf.subarray(p));
    q._detach();
    q.push(null);
    q._cleanup();
  }
  return drained;
}
