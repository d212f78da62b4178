/**
 * The resource-fit filter: the task's request must fit in what the candidate has free now (the
 * PrivateCell's numbers, this attempt's claims included). The comparison is cell-state's
 * `resourceShortage`, the same function the PrivateCell's `claim` and the commit's resource-fit
 * check call, so a placement the filters accept is one the commit accepts on the same state, and
 * plans cannot livelock between the two. Reasons: `cpu`, `memory` (the first resource short).
 */
import { resourceShortage } from '@omega/cell-state';
import { PASS, type DynamicFilter } from './filter.js';

/** Names of the resource filter's reasons. */
export const CPU = 'cpu';
export const MEMORY = 'memory';

const CPU_SHORT = 0;
const MEMORY_SHORT = 1;

/** Every job's last dynamic filter. */
export const resourceFilter: DynamicFilter = {
  reasons: [CPU, MEMORY],
  resources: true,
  check(view, position, cpuMillis, memoryBytes) {
    const short = resourceShortage(cpuMillis, memoryBytes, view.freeCpu(position), view.freeMemory(position));
    return short === undefined ? PASS : short === 'cpu' ? CPU_SHORT : MEMORY_SHORT;
  },
};
