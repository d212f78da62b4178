#!/usr/bin/env node
/**
 * `omega-scheduler-service`: one service scheduler instance. Takes the service policy's own
 * flags (see `parseServiceArgs`: --scoring, --preemption / --no-preemption,
 * --anti-affinity-penalty, --sample-size, --sample-above, --default-transaction-mode) and hands
 * everything else to the shared scheduler process of @omega/scheduler-core (store, cell name,
 * instance name, conflict mode, logging, signals).
 */
import { runSchedulerProcess } from '@omega/scheduler-core';
import { parseServiceArgs, ServiceOptionsError } from './options.js';
import { servicePolicy } from './policy.js';

let parsed: ReturnType<typeof parseServiceArgs>;
try {
  parsed = parseServiceArgs(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof ServiceOptionsError)) throw error;
  process.stderr.write(`omega-scheduler-service: ${error.message}\n`);
  process.exit(2);
}
await runSchedulerProcess(servicePolicy(parsed.options), parsed.rest);
