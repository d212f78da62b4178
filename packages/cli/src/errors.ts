/**
 * The CLI's one error type: a message meant for the user, printed as one line on stderr, and the
 * exit status that goes with it.
 *
 * Exit statuses (documented in the README; scripts may rely on them):
 *
 * | status | meaning                                                                 |
 * |--------|-------------------------------------------------------------------------|
 * | 0      | done                                                                    |
 * | 1      | the work failed (API unreachable, not found, refused as invalid, ...)   |
 * | 2      | usage or configuration mistake (bad flag, bad client config, no token)  |
 * | 3      | UNAUTHENTICATED: the API refused the token (unknown, revoked, expired)   |
 * | 4      | PERMISSION_DENIED: the token lacks the role or the namespace            |
 * | 5      | RESOURCE_EXHAUSTED: over the namespace's quota                          |
 * | 6      | FAILED_PRECONDITION: the cell's state does not allow it (yet)           |
 */

/** Exit status for anything that failed while doing the work. */
export const EXIT_FAILURE = 1;
/** Exit status for a usage mistake (bad flag, bad value, bad or missing client config). */
export const EXIT_USAGE = 2;
/** The API did not accept the credential (UNAUTHENTICATED). */
export const EXIT_UNAUTHENTICATED = 3;
/** The credential lacks the role or the namespace the call needs (PERMISSION_DENIED). */
export const EXIT_PERMISSION_DENIED = 4;
/** A namespace's quota refused the work (RESOURCE_EXHAUSTED). */
export const EXIT_QUOTA_EXCEEDED = 5;
/** The cell's state does not allow it, e.g. a quota below current use (FAILED_PRECONDITION). */
export const EXIT_FAILED_PRECONDITION = 6;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.retryable = options?.retryable ?? false;
  }

  /** Whether trying the same thing again may succeed without the user changing anything. */
  readonly retryable: boolean;
}

/** The one line printed for any error (`omega: <message>`); unexpected errors keep their stack in `OMEGA_DEBUG`. */
export function errorLine(error: unknown): string {
  if (error instanceof CliError) return `omega: ${error.message}`;
  const message = error instanceof Error ? error.message : String(error);
  const stack = process.env.OMEGA_DEBUG !== undefined && error instanceof Error ? `\n${error.stack ?? ''}` : '';
  return `omega: ${message.split('\n')[0] ?? message}${stack}`;
}
