import { jobSpec } from '@omega/cell-state/testing';
import { machineId, type JobSpec, type Machine } from '@omega/cell-state';
import { describe, expect, it } from 'vitest';
import { offeredForJob, type OfferedMachines } from './job-status.js';

const machine = (id: string, attributes: Record<string, string> = {}): Machine => ({
  id: machineId(id),
  capacity: { cpuMillis: 1000, memoryBytes: 1 << 30 },
  attributes,
  schedulable: true,
  unschedulableReason: '',
  enforcementDisabled: false,
  hollow: false,
  claims: [],
  seq: 0,
});

describe('the machines offered to a job', () => {
  const offered: OfferedMachines = {
    machines: [machine('iso', { 'omega.isolation.network-none': 'true' }), machine('plain', { 'omega.isolation.network-none': 'false' }), machine('old')],
    withheld: [{ filter: 'not alive', machines: 1 }],
  };
  const withNetwork = (network: 'host' | 'none'): JobSpec => {
    const spec = jobSpec('j').build();
    return { ...spec, task: { ...spec.task, network } };
  };

  it('are all the offered ones, the same object, when the task spec requires nothing of a machine', () => {
    expect(offeredForJob(offered, jobSpec('j').build())).toBe(offered);
    expect(offeredForJob(offered, withNetwork('host'))).toBe(offered);
  });

  it('for network: none are only the machines whose agent can give it, the others withheld under the attribute', () => {
    const forJob = offeredForJob(offered, withNetwork('none'));
    expect(forJob.machines.map((m) => m.id)).toEqual(['iso']);
    expect(forJob.withheld).toEqual([
      { filter: 'not alive', machines: 1 },
      { filter: 'attribute omega.isolation.network-none equals true', machines: 2 },
    ]);
  });
});
