#!/usr/bin/env node
/**
 * `omega`: the command line's entry point. See README.md for the commands.
 */
import { hideTlsIpServernameWarning } from '@omega/cell-state/vocabulary';
import { runCli } from './program.js';

hideTlsIpServernameWarning();

const code = await runCli(process.argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, now: Date.now });
process.exitCode = code;
