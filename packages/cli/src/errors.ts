/**
 * The CLI's one error type: a message meant for the user, printed as one line on stderr, and the
 * exit status that goes with it.
 */

/** Exit status for a usage mistake (bad flag, bad value). */
export const EXIT_USAGE = 2;
/** Exit status for anything that failed while doing the work. */
export const EXIT_FAILURE = 1;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** The one line printed for any error (`omega: <message>`); unexpected errors keep their stack in `OMEGA_DEBUG`. */
export function errorLine(error: unknown): string {
  if (error instanceof CliError) return `omega: ${error.message}`;
  const message = error instanceof Error ? error.message : String(error);
  const stack = process.env.OMEGA_DEBUG !== undefined && error instanceof Error ? `\n${error.stack ?? ''}` : '';
  return `omega: ${message.split('\n')[0] ?? message}${stack}`;
}
