#!/usr/bin/env node
/**
 * `omega`: the command line's entry point. See README.md for the commands.
 */
import { runCli } from './program.js';

// grpc-js names the TLS server by the address it dials, and Node warns (DEP0123) on every
// connection to an IP address such as 127.0.0.1, which is how a cell's API is usually reached; the
// certificate is still checked against that IP (its SANs). Every other warning is printed as Node
// would.
const nodeWarning = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning: Error & { code?: string }) => {
  if (warning.code === 'DEP0123') return;
  for (const listener of nodeWarning) listener(warning);
});

const code = await runCli(process.argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, now: Date.now });
process.exitCode = code;
