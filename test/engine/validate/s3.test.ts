// The validator's corruption matrix on S3 (s3rver): every kind detected, named, and repaired or reported unrepairable.
import { afterAll, beforeAll } from 'vitest';
import { createStorage } from '../../../src/storage/factory.js';
import { startS3, type Emulator } from '../../helpers/emulators.js';
import { buildFixture, validationMatrix, type Fixture } from './suite.js';

let emulator: Emulator;
let fx: Fixture;
let n = 0;

beforeAll(async () => {
  [emulator, fx] = await Promise.all([startS3({ name: 's3' }), buildFixture()]);
}, 120_000);

afterAll(async () => {
  await emulator?.stop();
});

validationMatrix(
  's3',
  () => fx,
  () => createStorage({ ...emulator.target, prefix: `v${n++}/` }, emulator.env),
);
