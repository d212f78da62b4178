#!/usr/bin/env node
/**
 * `omega-scheduler-batch`: one batch scheduler instance. Its own flag is `--choice pack |
 * first-fit | power-of-two`; everything else (store, cell, instance name, conflict mode, think time,
 * logging, signals) is the shared scheduler process of @omega/scheduler-core.
 */
import { FlagError } from '@omega/cell-state';
import { runSchedulerProcess, takeFlags } from '@omega/scheduler-core';
import { BATCH_CHOICES, BatchOptionsError, batchPolicy, type BatchChoice } from './batch-policy.js';

const PROGRAM = 'omega-scheduler-batch';
const USAGE = `  --choice CHOICE                ${BATCH_CHOICES.join(' | ')}: randomized first fit per task, the freer
                                 (CPU) of two feasible machines, or first fit from one random start
                                 per job, filling machines in turn (default pack)
`;

let policy: ReturnType<typeof batchPolicy>;
let rest: string[];
try {
  const taken = takeFlags(process.argv.slice(2), ['--choice']);
  rest = taken.rest;
  const choice = taken.values.get('--choice');
  policy = batchPolicy(choice === undefined ? {} : { choice: choice as BatchChoice });
} catch (error) {
  if (!(error instanceof FlagError) && !(error instanceof BatchOptionsError)) throw error;
  const message = error instanceof BatchOptionsError ? `--${error.option}: ${error.message.slice(error.option.length + 2)}` : error.message;
  process.stderr.write(`${PROGRAM}: ${message}\n`);
  process.exit(2);
}
await runSchedulerProcess(policy, rest, { program: PROGRAM, usage: USAGE });
