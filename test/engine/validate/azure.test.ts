// The validator's corruption matrix on Azure Blob (Azurite): every kind detected, named, and repaired or reported unrepairable.
import { startAzurite } from '../../helpers/emulators.js';
import { emulatorMatrix } from './suite.js';

emulatorMatrix('azure', () => startAzurite({ name: 'azure' }));
