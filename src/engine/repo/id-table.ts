/**
 * A set of blob ids (32-byte HMACs) in flat typed arrays: a repository holds one entry per blob,
 * hundreds of thousands of them, and one JavaScript string and object per id would cost several
 * times the bytes and make every garbage collection walk them all.
 */
const ID_BYTES = 32;

export class IdTable {
  /** Ids in insertion order, 32 bytes each. */
  private ids = Buffer.allocUnsafeSlow(0);
  /** Open addressing: entry number + 1, or 0 for an empty slot. */
  private slots = new Int32Array(16);
  /** The first four bytes of each slot's id: most probes are settled without comparing ids. */
  private tags = new Uint32Array(16);
  count = 0;

  /** The entry number of an id (hex or bytes), or -1. */
  find(id: string | Buffer): number {
    const key = typeof id === 'string' ? Buffer.from(id, 'hex') : id;
    if (key.length !== ID_BYTES) return -1;
    const mask = this.slots.length - 1;
    // ids are HMAC outputs, uniformly distributed: their first bytes are a good hash
    const tag = key.readUInt32LE(0);
    for (let slot = tag & mask; ; slot = (slot + 1) & mask) {
      const at = this.slots[slot]!;
      if (at === 0) return -1;
      if (this.tags[slot] !== tag) continue;
      const start = (at - 1) * ID_BYTES;
      if (key.compare(this.ids, start, start + ID_BYTES) === 0) return at - 1;
    }
  }

  /** Adds an id not yet in the table; its entry number (the count before). */
  add(id: string | Buffer): number {
    const key = typeof id === 'string' ? Buffer.from(id, 'hex') : id;
    if (key.length !== ID_BYTES) throw new RangeError(`a blob id is ${ID_BYTES} bytes, got ${key.length}`);
    if ((this.count + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    if ((this.count + 1) * ID_BYTES > this.ids.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(1024, this.ids.length * 2));
      this.ids.copy(grown);
      this.ids = grown;
    }
    const n = this.count++;
    key.copy(this.ids, n * ID_BYTES);
    this.place(key.readUInt32LE(0), n);
    return n;
  }

  /** The id of entry `n`, as hex. */
  idAt(n: number): string {
    return this.ids.toString('hex', n * ID_BYTES, (n + 1) * ID_BYTES);
  }

  private place(tag: number, n: number): void {
    const mask = this.slots.length - 1;
    let slot = tag & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = n + 1;
    this.tags[slot] = tag;
  }

  private rehash(size: number): void {
    this.slots = new Int32Array(size);
    this.tags = new Uint32Array(size);
    for (let n = 0; n < this.count; n++) this.place(this.ids.readUInt32LE(n * ID_BYTES), n);
  }
}
