// The validator's corruption matrix on Azure Blob (Azurite): every kind detected, named, and repaired or reported unrepairable.
import { afterAll, beforeAll } from 'vitest';
import { createStorage } from '../../../src/storage/factory.js';
import { startAzurite, type Emulator } from '../../helpers/emulators.js';
import { buildFixture, validationMatrix, type Fixture } from './suite.js';

let emulator: Emulator;
let fx: Fixture;
let n = 0;

beforeAll(async () => {
  [emulator, fx] = await Promise.all([startAzurite({ name: 'azure' }), buildFixture()]);
}, 120_000);

afterAll(async () => {
  await emulator?.stop();
});

validationMatrix(
  'azure',
  () => fx,
  () => createStorage({ ...emulator.target, prefix: `v${n++}/` }, emulator.env),
);
