/** Typed errors: each says what went wrong, whether a retry can help, and how HTTP should show it. */

export interface ErrorOptions {
  details?: unknown;
  cause?: unknown;
}

export class WedvaultError extends Error {
  readonly code: string = 'internal';
  readonly retryable: boolean = false;
  readonly httpStatus: number = 500;
  readonly details: unknown;

  constructor(message: string, opts: ErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.details = opts.details;
  }
}

/** Input that does not match its schema; details name the fields. */
export class ValidationError extends WedvaultError {
  override readonly code = 'invalid_request';
  override readonly httpStatus = 400;
}

export class UnauthorizedError extends WedvaultError {
  override readonly code = 'unauthorized';
  override readonly httpStatus = 401;
}

export class ForbiddenError extends WedvaultError {
  override readonly code = 'forbidden';
  override readonly httpStatus = 403;
}

export class NotFoundError extends WedvaultError {
  override readonly code = 'not_found';
  override readonly httpStatus = 404;
}

/** The request names something the recovery point does not hold: every copy of it would say the same. */
export class NotInPointError extends NotFoundError {}

export class ConflictError extends WedvaultError {
  override readonly code = 'conflict';
  override readonly httpStatus = 409;
}

/** A wrong or missing configuration value; start-up stops on it. */
export class ConfigError extends WedvaultError {
  override readonly code = 'config';
}

/** A network blip, a throttled store, a lost connection: trying again may succeed. */
export class TransientError extends WedvaultError {
  override readonly code: string = 'transient';
  override readonly retryable = true;
  override readonly httpStatus = 503;
}

/** A dependency (Redis, the catalog) did not answer in time: the request may be sent again later. */
export class ServiceUnavailableError extends TransientError {
  override readonly code: string = 'unavailable';
}

/** Too many requests for one API key; `retryAfterSeconds` becomes the `Retry-After` header. */
export class RateLimitedError extends WedvaultError {
  override readonly code = 'rate_limited';
  override readonly httpStatus = 429;
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number, opts: ErrorOptions = {}) {
    super(message, opts);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A well-formed request that contradicts an earlier one (an `Idempotency-Key` reused with another body). */
export class UnprocessableError extends WedvaultError {
  override readonly code = 'unprocessable';
  override readonly httpStatus = 422;
}

/** Data that fails its checksum, MAC or structure check. Never retried: the bytes will not change. */
export class CorruptionError extends WedvaultError {
  override readonly code = 'corruption';
  readonly object: string | undefined;
  constructor(message: string, opts: ErrorOptions & { object?: string } = {}) {
    super(message, opts);
    this.object = opts.object;
  }
}

/** A key that cannot open what it is asked to open (wrong master key, wrong scope key). */
export class WrongKeyError extends WedvaultError {
  override readonly code = 'wrong_key';
}

/** Credentials refused by a store. */
export class StorageAuthError extends WedvaultError {
  override readonly code = 'storage_unauthorized';
  override readonly httpStatus = 502;
}

/** Anything that will fail the same way again. */
export class FatalError extends WedvaultError {
  override readonly code = 'fatal';
}

export function isRetryable(err: unknown): boolean {
  return err instanceof WedvaultError ? err.retryable : false;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
