// The validator's corruption matrix on GCS (firebase emulator): every kind detected, named, and repaired or reported unrepairable.
import { startGcs } from '../../helpers/emulators.js';
import { emulatorMatrix } from './suite.js';

emulatorMatrix('gcs', () => startGcs({ name: 'gcs' }));
