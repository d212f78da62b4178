/**
 * The placement core's properties (scheduler-core/testing) for the batch policy, with each
 * choice: no constraint violated, filters and commit agree on fit, spread balances. Replay a
 * failure with `FC_SEED` / `FC_PATH`.
 */
import { describePlacementProperties } from '@omega/scheduler-core/testing';
import { batchPolicy } from './batch-policy.js';

describePlacementProperties('batch policy (pack)', () => batchPolicy({ choice: 'pack' }), { numRuns: 60 });
describePlacementProperties('batch policy (first-fit)', () => batchPolicy({ choice: 'first-fit' }), { numRuns: 30 });
describePlacementProperties('batch policy (power-of-two)', () => batchPolicy({ choice: 'power-of-two' }), { numRuns: 30 });
