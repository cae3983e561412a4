/** Types of chunker-core.mjs. */
export declare class Chunker {
  constructor(params: { minSize: number; avgSize: number; maxSize: number }, gear: Uint32Array);
  /** The chunks completed by this input; the rest waits for more input or finish(). */
  push(buf: Buffer): Buffer[];
  /** The tail, if any. */
  finish(): Buffer | undefined;
}
