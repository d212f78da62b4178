/**
 * `@omega/cell-state/vocabulary`: the cell's types and the pure functions over them (spec checks,
 * quantities, health check defaults, token syntax), without the store: no etcd3, no mirror, no
 * pino. For clients that must start fast, such as the `omega` command; everything here is also
 * exported by the package's main entry.
 */
export * from './types.js';
export { HEALTH_CHECK_DEFAULTS, HEALTH_CHECK_FAILED, HEALTH_CHECK_LIMITS, healthCheckProblems, resolveHealthCheck, type HealthCheckKind, type ResolvedHealthCheck } from './health-check.js';
export { JOB_LIMITS, jobSpecProblems, secretEnvNames, secretEnvProblems, specRequirements, taskUserProblem, userAttribute, type SpecProblem, type SpecRequirement } from './job-spec.js';
export { formatBytes, formatCpu, parseBytes, parseCpuMillis } from './quantity.js';
export { hideTlsIpServernameWarning } from './tls-warning.js';
export { ALL_NAMESPACES, TOKEN_PREFIX, parseToken, type ParsedToken } from './token-syntax.js';
