/**
 * @omega/cli: the `omega` command. Exported for tests and for tools that want the same job file
 * format or output: the program itself, the job file parser and the formatters.
 */
export { createProgram, runCli, type CliIo } from './program.js';
export { ApiClient, DEFAULT_API_ADDRESS, resolveApiAddress } from './api-client.js';
export {
  ClientConfigError,
  DEFAULT_CONFIG_PATH,
  parseClientConfig,
  resolveConnection,
  writeClientConfig,
  type ApiConnection,
  type ApiSecurity,
  type ClientConfigFile,
  type ConnectionFlags,
} from './client-config.js';
export {
  CliError,
  EXIT_FAILED_PRECONDITION,
  EXIT_FAILURE,
  EXIT_PERMISSION_DENIED,
  EXIT_QUOTA_EXCEEDED,
  EXIT_UNAUTHENTICATED,
  EXIT_USAGE,
  errorLine,
} from './errors.js';
export { JobFileError, fileField, parseDuration, parseJobDocument, parseJobFile, type ParsedJobFile, type SecretEnvSource } from './job-file.js';
export { resolveSecretEnv } from './secret-env.js';
export { age, formatJob, formatJobs, formatMachines, formatNamespaces, formatQuota, formatStats, formatTable, formatTokens, formatWatchEvent, formatWhoami, taskSummary } from './output.js';
export {
  jobOutput,
  jobSpecToWire,
  machineOutput,
  namespaceOutput,
  schedulerOutput,
  submitSpecToWire,
  tokenOutput,
  type JobOutput,
  type MachineOutput,
  type NamespaceOutput,
  type QuotaOutput,
  type SchedulerOutput,
  type TaskOutput,
  type TokenOutput,
} from './wire.js';
export { DEMO_JOBS } from './dev/demo.js';
export { devOptionsFrom, hostShare, type DevOptions } from './dev/dev-options.js';
