/**
 * The error a bad command-line flag is, shared by every Omega process (see process-flags.ts) and
 * by the loaders the parsers call (tls-identity.ts). Its own module so that both can import it
 * without importing each other.
 */

/** A command-line flag was unknown, missing its value, or invalid; `flag` names it. */
export class FlagError extends Error {
  constructor(
    readonly flag: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${flag}: ${problem}`, options);
    this.name = 'FlagError';
  }
}
