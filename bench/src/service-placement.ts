/**
 * Service placement at paper scale: how long one `servicePolicy().place()` call takes on
 * 10,000 machines (8 CPU, 32 GiB, 40 racks, 3 zones), each already holding three claims of
 * other jobs, for jobs of 300 tasks. Prints one line per case.
 *
 *   node bench/dist/service-placement.js [--machines 10000] [--tasks 300] [--repeat 5]
 */
import { parseArgs } from 'node:util';
import { jobSpec, machine } from '@omega/cell-state/testing';
import { servicePolicy, type ServicePolicyOptions } from '@omega/scheduler-service';
import { ServiceHarness } from '@omega/scheduler-service/testing';

const { values } = parseArgs({ options: { machines: { type: 'string', default: '10000' }, tasks: { type: 'string', default: '300' }, repeat: { type: 'string', default: '5' } } });
const MACHINES = Number(values.machines);
const TASKS = Number(values.tasks);
const REPEAT = Number(values.repeat);

const h = await ServiceHarness.start(
  Array.from({ length: MACHINES }, (_, i) => machine(`m${i}`).cpu(8000).memory('32Gi').attr('rack', `r${i % 40}`).attr('zone', `z${i % 3}`)),
);
const claims = [];
for (let i = 0; i < MACHINES; i++) {
  for (let k = 0; k < 3; k++) claims.push({ task: `bg${k}/${i}`, machine: `m${i}`, cpu: 1000 + ((i * 7 + k * 13) % 20) * 100, memory: '2Gi', priority: k });
}
await h.occupy(claims);
const machines = h.machines();

const cases: [string, ReturnType<ReturnType<typeof jobSpec>['build']>, ServicePolicyOptions][] = [
  ['plain spread scoring', jobSpec('web').service().instances(TASKS).cpu(500).memory('1Gi').priority(5).build(), {}],
  ['bin-pack scoring', jobSpec('web').service().instances(TASKS).cpu(500).memory('1Gi').priority(5).build(), { scoring: 'bin-pack' }],
  [
    'spread rack + zone in + max-per-machine 1',
    jobSpec('web').service().instances(TASKS).cpu(500).memory('1Gi').priority(5).constraint({ operator: 'spread', attribute: 'rack' }).constraint({ operator: 'in', attribute: 'zone', values: ['z0', 'z1'] }).constraint({ operator: 'max-per-machine', limit: 1 }).build(),
    {},
  ],
  ['same, sampling 16 machines', jobSpec('web').service().instances(TASKS).cpu(500).memory('1Gi').priority(5).constraint({ operator: 'spread', attribute: 'rack' }).build(), { sampleSize: 16 }],
  ['every task needs preemption', jobSpec('big').service().instances(TASKS).cpu(7000).memory('1Gi').priority(9).build(), {}],
  ['fits nowhere', jobSpec('huge').service().instances(TASKS).cpu(9000).memory('1Gi').priority(9).build(), {}],
];

console.log(`service placement: ${MACHINES} machines x 3 claims, jobs of ${TASKS} tasks, best of ${REPEAT}`);
for (const [name, spec, options] of cases) {
  let best = Infinity;
  let placed = 0;
  for (let r = 0; r < REPEAT; r++) {
    const start = performance.now();
    const { outcome } = h.place(servicePolicy(options), h.job(`${name.replace(/[^a-z0-9]+/g, '-')}-${r}`, spec), { machines });
    best = Math.min(best, performance.now() - start);
    placed = outcome.placed;
  }
  console.log(`${name.padEnd(44)} placed=${String(placed).padStart(4)}  ms/call=${best.toFixed(1)}`);
}
await h.close();
