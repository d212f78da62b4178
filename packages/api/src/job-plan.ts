/**
 * `PlanJob` of `omega.v1.JobService`: what a submit, an update or a scale would do, without
 * changing anything (Nomad's `job plan`, Kubernetes' server-side dry run).
 *
 * ```
 *  request ──► submit (no job_id): the spec validated as SubmitJob does (INVALID_ARGUMENT naming
 *          │   the field), submit-jobs in its namespace; an unknown namespace or a quota the job
 *          │   would exceed is said in `refused` (what SubmitJob would answer), not as an error
 *          └─► update / scale (job_id): the job must exist and not have ended; submit-jobs in its
 *              namespace; its kind, name and namespace cannot change (INVALID_ARGUMENT)
 *  ──► scheduler-core planJob on a fresh snapshot, with the policy of the job's kind as the
 *      schedulers run it by default (scheduler-batch, scheduler-service)
 * ```
 *
 * The API server runs the policies' code itself, so the plan is computed with the default
 * policy options; schedulers started with other placement flags may choose other machines
 * among those that fit (what fits, what does not and why are the same rules).
 */
import { status, type ServerUnaryCall } from '@grpc/grpc-js';
import {
  DEFAULT_NAMESPACE,
  describeExcess,
  describeSpecChange,
  isUnlimited,
  jobDemand,
  jobId,
  jobVersion,
  namespaceUsage,
  quotaExcess,
  type CellSnapshot,
  type Job,
  type JobKind,
  type JobSpec,
} from '@omega/cell-state';
import { DEFAULT_SETTINGS, hash32, planJob, seededRandom, type JobPlan, type PlacementPolicy } from '@omega/scheduler-core';
import { batchPolicy } from '@omega/scheduler-batch';
import { servicePolicy } from '@omega/scheduler-service';
import { callerOf } from './auth/guarded-server.js';
import { authorize } from './auth/policy.js';
import { requestJobId, type CellReader } from './cell-reader.js';
import { ApiError, failedPrecondition, invalidArgument, notFound } from './errors.js';
import { jobSpecFromWire, problemsMessage } from './job-spec-wire.js';
import { deriveJob, jobFacts } from './job-view.js';
import type { WireJobSpec, WirePlanJobReply } from './wire.js';

export interface PlanJobRequest {
  job?: WireJobSpec | null;
  job_id?: string;
  instances?: number;
}


/** The policies a plan runs: each kind's, with the options its scheduler defaults to. */
export function defaultPolicies(): Readonly<Record<JobKind, PlacementPolicy>> {
  return { batch: batchPolicy(), service: servicePolicy() };
}

function specOf(wire: WireJobSpec | null | undefined): JobSpec {
  const result = jobSpecFromWire(wire);
  if (result.problems !== undefined) throw new ApiError(status.INVALID_ARGUMENT, problemsMessage(result.problems));
  return result.spec;
}

/** Why SubmitJob would refuse `spec` (an unknown namespace, the quota), or '' when it would admit it. */
function admissionRefusal(snapshot: CellSnapshot, spec: JobSpec): string {
  const namespace = snapshot.namespace(spec.namespace);
  if (namespace === undefined && spec.namespace !== DEFAULT_NAMESPACE) return `job.namespace: namespace ${JSON.stringify(spec.namespace)} does not exist (an admin creates it with CreateNamespace)`;
  if (namespace?.quota === undefined || isUnlimited(namespace.quota)) return '';
  const excess = quotaExcess(spec.namespace, namespace.quota, namespaceUsage(snapshot, spec.namespace), jobDemand(spec));
  return excess === undefined ? '' : describeExcess(excess);
}

function toWire(plan: JobPlan): Omit<WirePlanJobReply, 'change' | 'refused' | 'version'> {
  return {
    create: plan.create.map((t) => ({ index: t.index, machine: t.machineId ?? '' })),
    replace: plan.replace.map((t) => ({ index: t.index, machine: t.machineId ?? '' })),
    stop: plan.stop.map((s) => ({ index: s.index, machine: s.machineId, reason: s.reason })),
    unplaced: [...plan.unplaced],
    ruled_out: plan.ruledOut.map((r) => ({ filter: r.filter, machines: r.machines })),
    reason: plan.reason,
    preempt: plan.preempt.map((p) => ({ task_id: p.taskId, job_id: p.jobId, machine: p.machineId, priority: p.priority })),
    replace_step: plan.replaceStep,
  };
}

/** The handler; `policies` default to {@link defaultPolicies}. */
export function jobPlanHandler(reader: CellReader, options: { readonly policies?: Readonly<Record<JobKind, PlacementPolicy>>; readonly now?: () => number } = {}) {
  const policies = options.policies ?? defaultPolicies();
  const now = options.now ?? Date.now;
  return async (request: PlanJobRequest, call: ServerUnaryCall<unknown, unknown>): Promise<WirePlanJobReply> => {
    const hasSpec = request.job !== null && request.job !== undefined;
    const id = request.job_id ?? '';
    let job: Job;
    let current: Job | undefined;
    let refused = '';
    const snapshot = await (async () => {
      if (id === '') {
        const spec = specOf(request.job);
        authorize(callerOf(call), 'submit-jobs', spec.namespace);
        const fresh = await reader.fresh();
        job = { id: jobId(`${spec.name}-planned`), spec, desired: 'running', submittedAtMs: now(), requestId: '', revision: 0, version: 1 };
        refused = admissionRefusal(fresh, spec);
        return fresh;
      }
      const target = requestJobId('job_id', id);
      if (!hasSpec && (request.instances ?? 0) < 1) throw invalidArgument('instances', 'give a new spec (job) or an instance count >= 1 to plan a scale');
      const fresh = await reader.fresh();
      const facts = jobFacts(fresh, target);
      if (facts === undefined) throw notFound(`job ${target} not found`);
      authorize(callerOf(call), 'submit-jobs', facts.job.spec.namespace);
      const derived = deriveJob(facts);
      if (derived.ended) throw failedPrecondition(`job ${target} has ended (${derived.state}): it takes no new versions; plan a new job instead`);
      current = facts.job;
      const spec = hasSpec ? specOf(request.job) : { ...current.spec, instances: request.instances ?? current.spec.instances };
      for (const field of ['kind', 'name', 'namespace'] as const) {
        if (spec[field] !== current.spec[field]) throw invalidArgument(`job.${field}`, `cannot change (${JSON.stringify(current.spec[field])} -> ${JSON.stringify(spec[field])}): submit a new job instead`);
      }
      job = { ...current, spec };
      return fresh;
    })();
    const plan = planJob({
      job: job!,
      current,
      snapshot,
      policy: policies[job!.spec.kind],
      random: seededRandom(hash32(job!.id)),
      nowMs: now(),
      defaults: DEFAULT_SETTINGS,
    });
    const change = current === undefined ? '' : describeSpecChange(current.spec, job!.spec);
    const version = current === undefined ? 1 : jobVersion(current) + (change === 'nothing changed' ? 0 : 1);
    return { ...toWire(plan), change, refused, version };
  };
}
