#!/usr/bin/env node
/**
 * One raw etcd committer process for the live T1 ceiling: the same request shape as a
 * scheduler's incremental commit (one request of nested transactions, one per machine: `--claims`
 * tasks spread evenly over `--groups` distinct random machines of `--machines`, each
 * comparing the machine key's and its tasks' keys' mod_revisions and writing them all, with range
 * reads on failure), with values of the sizes the real commits wrote, and no scheduling logic at all:
 * no mirror, no placement, no decoding. Run as many of these as there were scheduler processes.
 *
 *   node bench/dist/raw-committer.js --etcd URL --seconds S --claims C --machines M
 *        --groups G --machine-bytes B --task-bytes T --prefix P --max-txn-ops N
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
    groups: { type: 'string' },
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
const groupCount = Math.min(machines, Math.round(num('groups')));
const machineValue = new Uint8Array(num('machine-bytes')).fill(7);
const taskValue = new Uint8Array(num('task-bytes')).fill(9);
const prefix = String(values.prefix ?? `/bench-raw/${process.pid}/`);
const kv = new EtcdKv({ endpoints: [String(values.etcd)], limits: { ...ETCD_DEFAULT_LIMITS, maxTxnOps: num('max-txn-ops'), maxRequestBytes: 8 * 1024 * 1024 } });

let commits = 0;
let taskSeq = 0;
const started = Date.now();
const deadline = started + seconds * 1000;
while (Date.now() < deadline) {
  // Distinct random machines, the tasks dealt over them, as the commit groups a job's claims:
  // one nested transaction per machine, all its tasks in it.
  const chosen = new Set<number>();
  while (chosen.size < groupCount) chosen.add(Math.floor(Math.random() * machines));
  const order = [...chosen];
  const groups = new Map<number, string[]>(order.map((m) => [m, []]));
  for (let i = 0; i < claims; i++) groups.get(order[i % groupCount] as number)?.push(`${prefix}tasks/${process.pid}/${taskSeq++}`);
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
