/**
 * @omega/scheduler-batch: Omega's fast batch placement policy (randomized first fit, or
 * power-of-two choices), for the shared scheduling loop of @omega/scheduler-core. See README.md.
 */
export { BATCH_CHOICES, BatchOptionsError, batchPolicy, placeBatch, type BatchChoice, type BatchPolicyOptions } from './batch-policy.js';
