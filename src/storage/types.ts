/** The one small interface every store implements: put, get, stat, list, delete. */
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  /** Key relative to the target's prefix, '/'-separated. */
  key: string;
  size: number;
  etag?: string;
  modified?: Date;
}

export interface PutOptions {
  /** Byte length when known; lets stores skip buffering. */
  size?: number;
  /** MD5 of the body; the store verifies it where it can. Computed by the provider when absent and the body is a Buffer. */
  md5?: Buffer;
}

export interface ByteRange {
  offset: number;
  /** Bytes to read; absent means to the end. */
  length?: number;
}

/**
 * An object's bytes: whole, as parts written back to back (a store over local files writes them
 * with one vectored write, no copy; others join them first), or a stream.
 */
export type Body = Buffer | readonly Buffer[] | Readable;

/** Whether a body is a list of parts. */
export const isParts = (body: Body): body is readonly Buffer[] => Array.isArray(body);

/** A body's bytes in one Buffer, unless it is a stream. */
export function whole(body: Body): Buffer | Readable {
  if (!isParts(body)) return body;
  return body.length === 1 ? body[0]! : Buffer.concat(body);
}

export interface Storage {
  /** Target name, for logs and errors. */
  readonly name: string;
  /** Writes an object whole; a reader never sees a half-written object. */
  put(key: string, body: Body, opts?: PutOptions): Promise<void>;
  /** Reads an object or a range of it; NotFoundError when it does not exist. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /** NotFoundError when it does not exist. */
  stat(key: string): Promise<ObjectInfo>;
  /** Every object whose key starts with prefix, in pages, in no promised order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deleting what does not exist is not an error. */
  delete(key: string): Promise<void>;
  /** Used and free bytes where the store can tell. */
  usage?(): Promise<{ usedBytes?: number; freeBytes?: number }>;
  /**
   * Where the object is kept as a plain file on this machine, for readers that read it themselves
   * (a restore's threads read blobs from pack files). Only stores over a local directory have it.
   */
  localFile?(key: string): string;
  /**
   * A durability barrier: every put that resolved before it survives a power loss once it resolves.
   * Only a local disk has it (files are synced as they are put; this syncs their directories);
   * cloud stores are durable when put resolves. Called before an index or a snapshot is written.
   */
  sync?(): Promise<void>;
  /** Removes temp objects killed writers left, older than `maxAgeMs`; how many. Local disk only. */
  sweepTemp?(maxAgeMs?: number): Promise<number>;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream)
    parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

export async function getBuffer(storage: Storage, key: string, range?: ByteRange): Promise<Buffer> {
  return readAll(await storage.get(key, range));
}
