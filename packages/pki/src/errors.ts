/**
 * The errors of the PKI: one class per condition, each with `cause` and `retryable` (none of
 * them goes away by trying again: a bad request, a CA directory in a state that needs a human,
 * a file that cannot be read or written).
 */

/** Base of every PKI error. */
export class PkiError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PkiError';
  }
}

/** A request was invalid; `field` names what (`commonName`, `hosts[2]`, `validDays`, ...). Nothing was created. */
export class InvalidPkiRequestError extends PkiError {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`, false);
    this.name = 'InvalidPkiRequestError';
  }
}

/**
 * The PKI directory holds something that must not be overwritten silently: half a CA (a
 * certificate without its key or the other way round), a CA key that does not match its
 * certificate, an expired CA, a file that is not PEM. The message says what to do.
 */
export class InconsistentPkiError extends PkiError {
  constructor(
    readonly path: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${problem}`, false, options);
    this.name = 'InconsistentPkiError';
  }
}

/** A PKI file or directory could not be read or written (permissions, full disk). */
export class PkiFileError extends PkiError {
  constructor(
    readonly path: string,
    options: { cause: unknown },
  ) {
    super(`${path}: ${(options.cause as Error).message ?? String(options.cause)}`, false, options);
    this.name = 'PkiFileError';
  }
}
