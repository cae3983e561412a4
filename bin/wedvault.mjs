#!/usr/bin/env node
// The wedvault CLI: runs the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/index.ts');
