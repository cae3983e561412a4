/** The one pino logger factory; secrets and payment data are redacted by configuration. */
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.masterKey',
  '*.adminKey',
  '*.password',
  '*.secret',
  '*.secretAccessKey',
  '*.accessKeyId',
  '*.connectionString',
  '*.token',
  '*.key',
  '*.card_number',
  '*.cardNumber',
  '*.iban',
  'masterKey',
  'adminKey',
  'password',
  'connectionString',
];

export function createLogger(level = 'info', bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service: 'wedvault', ...bindings },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  });
}

export type { Logger };
