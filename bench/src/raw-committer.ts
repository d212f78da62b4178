#!/usr/bin/env node
/**
 * One raw etcd committer process for the live T1 ceiling: the same request shape as a
 * scheduler's incremental commit (one request of nested transactions, one per machine, each
 * comparing the machine key's and its tasks' keys' mod_revisions and writing them all, with range
 * reads on failure), with values of the sizes the real commits wrote, and no scheduling logic at all:
 * no mirror, no placement, no decoding. Run as many of these as there were scheduler processes.
 *
 *   node bench/dist/raw-committer.js --etcd URL --seconds S --claims C --machines M
 *        --machine-bytes B --task-bytes T --prefix P --max-txn-ops N
 *
 * Prints one JSON line: `{"commits": n, "claims": n, "seconds": s}`.
 */
import { parseArgs } from 'node:util';
import { EtcdKv, ETCD_DEFAULT_LIMITS, type Op } from '@omega/cell-state';

const { values } = parseArgs({
  options: {
    etcd: { type: 'string' },
    seconds: { type: 'string' },
    claims: { type: 'string' },
    machines: { type: 'string' },
    'machine-bytes': { type: 'string' },
    'task-bytes': { type: 'string' },
    prefix: { type: 'string' },
    'max-txn-ops': { type: 'string' },
  },
});
const num = (name: keyof typeof values): number => {
  const v = Number(values[name]);
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`raw-committer: --${name} must be a positive number\n`);
    process.exit(2);
  }
  return v;
};
const seconds = num('seconds');
const claims = num('claims');
const machines = num('machines');
const machineValue = new Uint8Array(num('machine-bytes')).fill(7);
const taskValue = new Uint8Array(num('task-bytes')).fill(9);
const prefix = String(values.prefix ?? `/bench-raw/${process.pid}/`);
const kv = new EtcdKv({ endpoints: [String(values.etcd)], limits: { ...ETCD_DEFAULT_LIMITS, maxTxnOps: num('max-txn-ops'), maxRequestBytes: 8 * 1024 * 1024 } });

let commits = 0;
let taskSeq = 0;
const started = Date.now();
const deadline = started + seconds * 1000;
while (Date.now() < deadline) {
  // Random machines with repeats, grouped per machine, as randomized first fit spreads a job's
  // tasks and the commit groups them: one nested transaction per machine, all its tasks in it.
  const groups = new Map<number, string[]>();
  for (let i = 0; i < claims; i++) {
    const m = Math.floor(Math.random() * machines);
    const tasks = groups.get(m) ?? [];
    tasks.push(`${prefix}tasks/${process.pid}/${taskSeq++}`);
    groups.set(m, tasks);
  }
  const success: Op[] = [...groups].map(([m, tasks]) => {
    const machineKey = `${prefix}machines/m${m}`;
    return {
      type: 'txn',
      txn: {
        compare: [{ key: machineKey, target: 'mod', op: '<', value: Number.MAX_SAFE_INTEGER }, ...tasks.map((key) => ({ key, target: 'mod' as const, op: '==' as const, value: 0 }))],
        success: [{ type: 'put', key: machineKey, value: machineValue }, ...tasks.map((key) => ({ type: 'put' as const, key, value: taskValue }))],
        failure: [{ type: 'range', key: machineKey }, ...tasks.map((key) => ({ type: 'range' as const, key }))],
      },
    };
  });
  await kv.txn({ compare: [], success, failure: [] });
  commits++;
}
const elapsed = (Date.now() - started) / 1000;
await kv.close();
process.stdout.write(`${JSON.stringify({ commits, claims: commits * claims, seconds: elapsed })}\n`);
