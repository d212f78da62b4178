/**
 * @omega/cli: the `omega` command. Exported for tests and for tools that want the same job file
 * format or output: the program itself, the job file parser and the formatters.
 */
export { createProgram, runCli, type CliIo } from './program.js';
export { ApiClient, DEFAULT_API_ADDRESS, resolveApiAddress } from './api-client.js';
export { CliError, errorLine } from './errors.js';
export { JobFileError, fileField, parseDuration, parseJobFile } from './job-file.js';
export { age, formatJob, formatJobs, formatMachines, formatStats, formatTable, formatWatchEvent, taskSummary } from './output.js';
export { jobOutput, jobSpecToWire, machineOutput, schedulerOutput, type JobOutput, type MachineOutput, type SchedulerOutput, type TaskOutput } from './wire.js';
export { DEMO_JOBS } from './dev/demo.js';
export { devOptionsFrom, hostShare, type DevOptions } from './dev/dev-options.js';
