/**
 * The placement core's properties (scheduler-core/testing) for the service policy: no constraint
 * violated, filters and commit agree on fit, spread balances. Without preemption here, so that
 * "left unplaced means no machine could take it" holds as stated; `policy.prop.test.ts` covers
 * preemption. Replay a failure with `FC_SEED` / `FC_PATH`.
 */
import { describePlacementProperties } from '@omega/scheduler-core/testing';
import { servicePolicy } from './policy.js';

describePlacementProperties('service policy', () => servicePolicy({ preemption: false }), { numRuns: 60 });
describePlacementProperties('service policy (bin-pack, preempting)', () => servicePolicy({ scoring: 'bin-pack' }), { numRuns: 30, preempts: true });
