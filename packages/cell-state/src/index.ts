/**
 * @omega/cell-state: the cell's state in etcd, replicated into every scheduler, and committed to
 * with optimistic transactions. The only package that talks to etcd. See README.md.
 */
export * from './types.js';
export {
  DEFAULT_STARTING_DEADLINE_MS,
  MAX_CATCH_UP_RUNS,
  MAX_STARTING_DEADLINE_MS,
  cronRunId,
  cronRunRequestId,
  cronRunSpec,
  cronScheduleProblems,
  dueTimes,
  nextScheduledAt,
  type DueTimes,
} from './cron-schedule.js';
export {
  ETCD_DEFAULT_LIMITS,
  KvCompactedError,
  KvError,
  KvInvalidRequestError,
  KvLeaseNotFoundError,
  KvPermissionDeniedError,
  KvUnavailableError,
  prefixEnd,
  type Compare,
  type CompareOp,
  type CompareTarget,
  type KeyValue,
  type KvCounters,
  type KvLease,
  type KvLimits,
  type KvStore,
  type Op,
  type OpResult,
  type RangeRequest,
  type RangeResult,
  type TxnRequest,
  type TxnResult,
  type WatchBatch,
  type WatchEvent,
  type WatchHandle,
  type WatchListener,
} from './kv.js';
export { MEMORY_KV_DEFAULT_HISTORY_LIMIT, MEMORY_KV_DEFAULT_LIMITS, MemoryKv, type MemoryKvOptions } from './memory-kv.js';
export { EtcdKv, type EtcdKvOptions } from './etcd-kv.js';
export { ETCD_INSTALL_HINT, EtcdNotFoundError, EtcdStartError, findEtcd, freePort, startEtcd, type RunningEtcd, type StartEtcdOptions } from './etcd-launcher.js';
export { dieWithParent, startEtcdCluster, type EtcdClusterMember, type EtcdMemberSignal, type EtcdMemberStatus, type RunningEtcdCluster, type StartEtcdClusterOptions } from './etcd-launcher.js';
export { InvalidRecordError, MAX_RECORD_BYTES, PROTOS_DIR } from './codec.js';
export { CellKeys, checkId, type KeyKind, type ParsedKey } from './keys.js';
export {
  addResources,
  checkResources,
  claimsShortage,
  fitsWithin,
  freeResources,
  isClaimLive,
  liveClaims,
  resourceShortage,
  subtractResources,
  usedResources,
  type Shortage,
  type TaskLookup,
} from './resources.js';
export { CellStateMaps, type CellSnapshot, type MirrorFilter } from './cell-snapshot.js';
export { RecallCache, type RecallLimits } from './recall-cache.js';
export { CellMirror, MirrorStoppedError, type MirrorChange, type MirrorCounters, type MirrorOptions } from './mirror.js';
export { PrivateCell, claimIdFactory, type ClaimOutcome, type ClaimRefusal, type PlacementRequest } from './private-cell.js';
export {
  Committer,
  InvalidTransactionError,
  TransactionTooLargeError,
  type ClaimDelta,
  type CommitCounters,
  type CommitResult,
  type CommitterOptions,
  type Conflict,
  type ConflictReason,
  type Eviction,
  type Transaction,
} from './commit.js';
export { HEALTH_CHECK_DEFAULTS, HEALTH_CHECK_FAILED, HEALTH_CHECK_LIMITS, healthCheckProblems, resolveHealthCheck, type HealthCheckKind, type ResolvedHealthCheck } from './health-check.js';
export { JOB_LIMITS, jobSpecProblems, secretEnvNames, secretEnvProblems, specRequirements, taskUserProblem, userAttribute, type SpecProblem, type SpecRequirement } from './job-spec.js';
export { SECRET_DIGEST_KEY_BYTES, readSecretEnv, requestSpecHash, secretDigestKey, secretEnvDigest } from './secrets.js';
export {
  LOG_GRANT_ISSUER_CN,
  LOG_GRANT_MAX_TTL_MS,
  LOG_GRANT_TTL_MS,
  checkLogGrant,
  mintLogGrant,
  type LogGrantRefusal,
  type LogGrantScope,
  type LogGrantStream,
} from './log-grant.js';
export type { DeleteJobOutcome, DeleteJobRequest, DeleteJobResult } from './job-deletion.js';
export {
  Cell,
  ContentionError,
  type Heartbeat,
  type MachineRegistration,
  type NewJob,
  type TaskPatch,
  type TaskUpdateOutcome,
} from './cell.js';
export { JobIdTakenError } from './cell.js';
export {
  UPDATE_ATTEMPTS,
  currentVersion,
  describeSpecChange,
  readJobHistory,
  samePlacementSpec,
  type JobChange,
  type UpdateJobRequest,
  type UpdateJobResult,
} from './job-versions.js';
export { MAX_HEALTHY_DEADLINE_MS, MAX_MIN_HEALTHY_TIME_MS, resolveUpdateStrategy, updateStrategyProblems } from './update-strategy.js';
export { SUBMIT_ADMISSION_ATTEMPTS, type SubmitJobOptions, type SubmitJobResult } from './cell.js';
export {
  SET_QUOTA_ATTEMPTS,
  checkNamespaceName,
  checkQuota,
  createNamespace,
  implicitDefault,
  isNamespaceName,
  readNamespace,
  setQuota,
  snapshotNamespace,
  type SetQuotaOptions,
  type SetQuotaResult,
} from './namespace-records.js';
export {
  NO_USAGE,
  QUOTA_RESOURCES,
  addUsage,
  amountOf,
  countedTasks,
  describeExcess,
  formatAmount,
  isUnlimited,
  jobDemand,
  jobUsage,
  namespaceUsage,
  quotaExcess,
  usageByNamespace,
  type QuotaExcess,
  type QuotaResource,
  type Usage,
} from './quota.js';
export { DEFAULT_REQUEST_RETENTION_MS, RequestIdReusedError, RequestJobGoneError, specSha256 } from './request-records.js';
export { formatBytes, formatCpu, parseBytes, parseCpuMillis } from './quantity.js';
export {
  backoffDelayMs,
  checkBackoffPolicy,
  isPermanentStoreError,
  RetryState,
  retryUntilDone,
  STORE_RETRY_BACKOFF,
  STORE_RETRY_MESSAGES,
  timerSleep,
  type BackoffPolicy,
  type RetryMessages,
  type RetryOptions,
  type Sleep,
} from './store-retry.js';
export {
  DEFAULT_ETCD_ENDPOINT,
  DEFAULT_SECURE_ETCD_ENDPOINT,
  FlagError,
  INSECURE_WARNING,
  LOG_LEVELS,
  METRICS_LISTEN_USAGE,
  SECURITY_FLAG_OPTIONS,
  logProcessSecurity,
  parseEtcdConnection,
  parseEtcdEndpoints,
  parseLogLevel,
  parseMetricsListen,
  securityUsage,
  type ConnectionFlagValues,
  type EtcdConnection,
  type LogLevel,
  type ProcessSecurity,
} from './process-flags.js';
export { TlsFileError, loadTlsIdentity, type LoadedTlsIdentity, type TlsFileFlag, type TlsFiles, type TlsIdentity } from './tls-identity.js';
export {
  API_USER,
  CellAccessError,
  HOLLOW_USER,
  ROOT_USER,
  SCHEDULER_USER,
  agentUser,
  cellAccessRoles,
  setupCellAccess,
  type CellAccessOptions,
  type CellAccessResult,
  type CellAccessTarget,
  type EtcdGrant,
  type EtcdRole,
} from './etcd-access.js';
export { hideTlsIpServernameWarning } from './tls-warning.js';
export { PARENT_PID_ENV, exitWithParent, type ParentPipe, type ParentWatch, type ParentWatchOptions } from './parent-watch.js';
export {
  ALL_NAMESPACES,
  MAX_TOKEN_TTL_MS,
  ROLES,
  TOKEN_PREFIX,
  TOKEN_SECRET_BYTES,
  checkTokenName,
  createToken,
  formatToken,
  getToken,
  listTokens,
  parseToken,
  revokeToken,
  tokenExpired,
  tokenMatches,
  type CreateTokenResult,
  type NewToken,
  type ParsedToken,
  type RevokeTokenResult,
  type Role,
  type TokenRecord,
} from './token-records.js';
export { exposeMirrorMetrics } from './mirror-metrics.js';
export { Progress, formatDuration } from './progress.js';
