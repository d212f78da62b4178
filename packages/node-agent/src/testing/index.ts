/**
 * Test support for @omega/node-agent and its users: fake cgroup roots, placing tasks without a
 * scheduler, polling (a store that can be taken down is cell-state's `outageKv`).
 */
export { fakeCgroupV1, fakeCgroupV2, type FakeCgroupRoot } from './fake-cgroups.js';
export { eventually, placeTasks, type Placement } from './place.js';
export { FakeTimerClock } from './fake-timer-clock.js';
