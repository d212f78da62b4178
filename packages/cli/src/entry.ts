/**
 * What running `omega` does, as one function: the unbundled entry (main.ts) and the bundled one
 * (packages/cli/scripts/bundle.mjs builds dist/bundle/omega.cjs from this module) both call it.
 */
import { hideTlsIpServernameWarning } from '@omega/cell-state/vocabulary';
import { runCli } from './program.js';

export { runCli };

/** Runs the command line in `argv` (process.argv's shape) and sets the process's exit code. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  hideTlsIpServernameWarning();
  process.exitCode = await runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, now: Date.now });
}
