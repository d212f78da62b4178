import { describeCommitProperties } from './testing/commit-properties.js';
import { MemoryKv } from './memory-kv.js';

describeCommitProperties(
  'memory store',
  async () => {
    const kv = new MemoryKv();
    return { kv, close: () => kv.close() };
  },
  { numRuns: 150 },
);
