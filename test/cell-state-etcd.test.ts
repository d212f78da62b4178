/**
 * The cell contract and the commit properties against a real etcd: the same suites the memory
 * store passes (packages/cell-state/src/cell.test.ts, commit.prop.test.ts).
 */
import { afterAll, beforeAll } from 'vitest';
import { EtcdKv, startEtcd, type RunningEtcd } from '@omega/cell-state';
import { describeCellContract, describeCommitProperties } from '@omega/cell-state/testing';

let etcd: RunningEtcd;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

async function open() {
  const kv = new EtcdKv({ endpoints: etcd.endpoints, limits: etcd.limits });
  return { kv, close: () => kv.close() };
}

describeCellContract('etcd', open);
describeCommitProperties('etcd', open, { numRuns: 12 });
