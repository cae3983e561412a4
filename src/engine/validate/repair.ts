/** Replaces one damaged object from a copy on another target, proving the donor's bytes sound first and the result after. */
import { createHash } from 'node:crypto';
import { CorruptionError, WedvaultError, errorMessage } from '../../errors.js';
import { getBuffer } from '../../storage/types.js';
import { verifyObjectBytes, type Trust } from '../repo/objects.js';
import type { Copy } from './types.js';

export interface RepairInput {
  object: string;
  /** The size the catalog recorded, when the object is one of the point's. */
  size?: number | undefined;
  victim: Copy;
  /** Copies that reported no problem with this object, tried in order. */
  donors: Copy[];
  trust: Trust;
}

export type RepairOutcome = { from: string } | { why: string };

export async function repairObject(input: RepairInput): Promise<RepairOutcome> {
  const { object, size, victim, trust } = input;
  if (input.donors.length === 0) return { why: 'no other copy holds it intact' };
  const rejected: string[] = [];
  for (const donor of input.donors) {
    let bytes: Buffer;
    try {
      bytes = await getBuffer(donor.storage, object);
      if (size !== undefined && bytes.length !== size) {
        throw new CorruptionError(`${object}: ${bytes.length} bytes, expected ${size}`, { object });
      }
      // Never copy what is not proven sound: a bad donor would spread the damage.
      verifyObjectBytes(trust, object, bytes);
    } catch (err) {
      if (!(err instanceof WedvaultError)) throw err;
      rejected.push(`${donor.target}: ${errorMessage(err)}`);
      continue;
    }
    try {
      await victim.storage.put(object, bytes, {
        size: bytes.length,
        md5: createHash('md5').update(bytes).digest(),
      });
      await victim.storage.sync?.();
      const back = await getBuffer(victim.storage, object);
      if (!back.equals(bytes)) return { why: `written from ${donor.target}, but reads back different` };
      verifyObjectBytes(trust, object, back);
      return { from: donor.target };
    } catch (err) {
      if (!(err instanceof WedvaultError)) throw err;
      return { why: `writing the copy from ${donor.target} failed: ${errorMessage(err)}` };
    }
  }
  return { why: `no sound copy elsewhere (${rejected.join('; ')})` };
}
