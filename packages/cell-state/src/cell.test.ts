import { describeCellContract } from './testing/cell-contract.js';
import { MemoryKv } from './memory-kv.js';

describeCellContract('memory store', async () => {
  const kv = new MemoryKv();
  return { kv, close: () => kv.close() };
});
