/**
 * What every command of the program shares: where it prints, how it gets a client of the API, and
 * the global options. Built once by `createProgram`; the command files (`access-commands.ts`,
 * `namespace-commands.ts`) register their commands through it, so they stay small and testable
 * without knowing how the connection is resolved.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { ApiClient } from './api-client.js';

/** Where the program writes, and what it reads of its environment. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => number;
  /** Resolves relative paths (config, CA, job files' secrets) and finds ./.omega/client.yaml; default `process.cwd()`. */
  readonly cwd?: string;
}

export interface CommandContext {
  readonly io: CliIo;
  /** Runs `work` with a client of the API (connection resolved from flags, env and config), closing it afterwards. */
  withClient<T>(command: Command, work: (client: ApiClient) => Promise<T>): Promise<T>;
  /** Whether `--json` was given. */
  asJson(command: Command): boolean;
}

/** Writes text and waits until the stream took it (so large output is not lost on exit). */
export function write(stream: NodeJS.WritableStream, text: string | Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    if (stream.write(text)) resolve();
    else stream.once('drain', () => resolve());
  });
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A commander argument parser for a DNS label (token and namespace names). */
export function dnsLabel(name: string): (value: string) => string {
  return (value) => {
    if (!DNS_LABEL.test(value)) throw new InvalidArgumentError(`${name} must be a DNS label (1-63 lowercase letters, digits and '-', not starting or ending with '-')`);
    return value;
  };
}

/** A commander argument parser for a whole number >= 0. */
export function nonNegativeInt(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number >= 0`);
    return Number(value);
  };
}
