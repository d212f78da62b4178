/**
 * `max-per-machine N`: at most N live instances of the job on one machine, counting the job's
 * live claims in the snapshot (`snapshot.isLive`) plus this attempt's claims. Dynamic: the count
 * changes as the attempt claims.
 */
import { PASS, type ConstraintFilters } from './filter.js';

export const maxPerMachineFilters: ConstraintFilters = {
  name: (c) => `max-per-machine ${c.limit}`,
  compile: (c, name) => {
    // A limit that is not a positive integer (a foreign record) allows nothing rather than
    // everything.
    const limit = Number.isSafeInteger(c.limit) && c.limit > 0 ? c.limit : 0;
    return { dynamic: { reasons: [name], resources: false, check: (view, position) => (view.instances(position) < limit ? PASS : 0) } };
  },
};
