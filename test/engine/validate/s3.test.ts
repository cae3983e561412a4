// The validator's corruption matrix on S3 (s3rver): every kind detected, named, and repaired or reported unrepairable.
import { startS3 } from '../../helpers/emulators.js';
import { emulatorMatrix } from './suite.js';

emulatorMatrix('s3', () => startS3({ name: 's3' }));
