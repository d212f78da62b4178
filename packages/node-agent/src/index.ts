/**
 * @omega/node-agent: registers a machine, runs the tasks placed on it in cgroups, reports their
 * outcome; or serves many hollow machines in one process. See README.md.
 */
export { Agent, type AgentCounters, type AgentOptions } from './agent.js';
export type { Executor, TaskAttempt } from './executor.js';
export {
  CgroupUnavailableError,
  cgroupLimits,
  CPU_PERIOD_US,
  DEFAULT_PIDS_LIMIT,
  type CgroupDriver,
  type CgroupLimits,
  type CgroupUsage,
  type CgroupVersion,
  type TaskCgroup,
} from './cgroup-driver.js';
export { CgroupV1Driver, V1_CONTROLLERS } from './cgroup-v1.js';
export { CgroupV2Driver, V2_CONTROLLERS } from './cgroup-v2.js';
export { DEFAULT_CGROUP_PARENT, DEFAULT_CGROUP_ROOT, defaultCgroupParent, detectCgroupDriver, type CgroupDetection } from './cgroup-detect.js';
export { CGROUP_MARKERS_DIR, OwnedCgroupDriver, type CgroupMarker, type CgroupOwnerOptions } from './cgroup-owner.js';
export { DEFAULT_FENCE_AFTER_MS, FENCED_REASON, SCHEDULERS_DEFAULT_MACHINE_LOSS_GRACE_MS, LeaseFence, type LeaseFenceOptions, type LeaseRenewals } from './fence.js';
export { dataDisk, describeDataDisk, isJournalLessExt4, type DataDisk } from './data-disk.js';
export { DEFAULT_DISK_CHECK_MS, DEFAULT_DISK_LIMIT_BYTES, DEFAULT_DISK_MAX_ENTRIES, DISK_EXCEEDED, MIN_DISK_CHECK_MS, taskDiskBound, taskDiskLimit, type DiskBound } from './disk-limit.js';
export { parseAgentArgs, USAGE, type AgentConfig, type ConfigEnvironment } from './config.js';
export { HollowExecutor, hollowMachineIds, hollowMachines } from './hollow.js';
export { CheckSlots, DEFAULT_MAX_CONCURRENT_CHECKS, HealthWatch, type HealthProbe, type HealthWatchCounters, type HealthWatchOptions, type ProbeResult } from './health-checks.js';
export { commandProbe, commandProbeArgv, httpProbe, namespacesApart, tcpProbe, type CommandProbeTarget } from './health-probes.js';
export { defaultMachineId, detectCapacity, HeartbeatKeeper, markUnschedulable, memoryReserve, registerAll, type HeartbeatOptions } from './registration.js';
export { MAX_DEFER_MS, ReporterClosedError, StatusReporter, type StatusReporterCounters, type StatusReporterOptions } from './status-reporter.js';
export {
  BadEnvEntryError,
  DEFAULT_LOG_CAP_BYTES,
  defaultSupervisorPath,
  encodeSupervisorEnv,
  MIN_LOG_CAP_BYTES,
  SUPERVISOR_BINARY,
  SUPERVISOR_OVERHEAD_BYTES,
  supervisorArgs,
  SupervisorMissingError,
  taskLogCap,
  taskMemoryLimit,
  type SupervisorCommand,
} from './supervisor-command.js';
export {
  readJson,
  TASK_FILES,
  writeJsonAtomic,
  type ExitRecord,
  type ReportedRecord,
  type StartedRecord,
  type SupervisorEnv,
  type TaskMeta,
  type TruncatedRecord,
} from './task-files.js';
export { cgroupParentSegments, insideRoot, isTaskInstanceName, taskDir, taskInstanceName, taskLogPaths, tasksRoot, TASKS_DIR, UnsafePathError, type TaskLogPaths } from './task-paths.js';
export { DEFAULT_KILL_GRACE_MS, DEFAULT_TASK_PATH, ProcessExecutor, type ProcessExecutorOptions } from './task-runner.js';
export { supervisorAlive, supervisorsUnder } from './supervisor-processes.js';
export { DEFAULT_TASK_UIDS, parseUidRange, TaskUidPool, type UidRange } from './task-uids.js';
export { checkTraversable, resolveTaskUser, TaskUserError, type TaskUser } from './task-user.js';
export { allowedUserAttributes, namedTaskUser, parseAllowUsers, removeAsUser, TaskUserRefusedError, USER_NOT_ALLOWED, USER_UNKNOWN } from './named-users.js';
export { IsolationUnavailableError, ISOLATION_UNAVAILABLE, NO_ISOLATION, taskIsolation, type HostIsolation } from './isolation.js';
export { detectIsolation, ISOLATION_MODES, isolationAttributes, PID_ISOLATION_ATTRIBUTE, NETWORK_NONE_ATTRIBUTE, type IsolationDetection, type IsolationMode } from './isolation-detect.js';
export { LOG_TRUNCATED_HEADER, parseLogPath, startLogServer, type LogRequest, type LogServer, type LogServerOptions, type LogStreamName } from './log-server.js';
export { MONOTONIC_CLOCK, WALL_CLOCK, type TimerClock } from './timer-clock.js';
