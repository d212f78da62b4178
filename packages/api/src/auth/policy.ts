/**
 * Who may do what: the one place that decides, role × namespace, for every method of the API.
 *
 * ```
 *   role    read ─────────────► submit ──────────────► admin
 *           see jobs, logs,     also submit and        everything: tokens, namespaces,
 *           machines, stats,    kill jobs in them      quotas, every namespace
 *           quotas of its
 *           namespaces
 * ```
 *
 * A token holds one role and a list of namespaces (`"*"`: every one; admin tokens always hold
 * every one), as a Nomad ACL token holds policies or a Kubernetes user holds RoleBindings in
 * namespaces. Roles are ordered: a role may do everything a lesser one may.
 *
 * Every method has exactly one {@link Action} in {@link METHOD_ACTIONS}; the server refuses to
 * start a service with a method missing from it (see guarded-service.ts), so a new method is
 * closed until someone decides here who may call it. Cell-wide actions are decided before the
 * handler runs; namespaced ones need the namespace, which the handler learns (from the spec, the
 * job or the request) and passes to {@link authorize}: the method's least role is checked before
 * the handler runs too, so a handler that forgot still enforces the role.
 *
 * Pure: no I/O, no clock.
 */
import { status } from '@grpc/grpc-js';
import { ALL_NAMESPACES, ROLES, type Role } from '@omega/cell-state';
import { ApiError } from '../errors.js';

/** An authenticated caller: the token's name, role and namespaces. */
export interface Caller {
  /** The token's name; `insecure` on a server that asks for no token. */
  readonly name: string;
  readonly role: Role;
  /** `["*"]`: every namespace. */
  readonly namespaces: readonly string[];
  /** 0: never. */
  readonly expiresAtMs: number;
  readonly createdAtMs: number;
  /** `none`: the server runs without authentication (`--insecure`), and every caller is admin. */
  readonly via: 'token' | 'none';
}

export type Action =
  | 'read-jobs'
  | 'submit-jobs'
  | 'kill-jobs'
  | 'read-cell'
  | 'read-namespaces'
  | 'manage-namespaces'
  | 'manage-tokens'
  | 'manage-machines'
  | 'whoami';

export interface Rule {
  /** The least role that may. */
  readonly role: Role;
  /** `namespace`: decided per namespace (the handler names it); `cell`: one decision for the whole cell. */
  readonly scope: 'namespace' | 'cell';
  /** The action in a sentence: `token "ci" (role read) may not <says> ...`. */
  readonly says: string;
}

/** The policy table. */
export const RULES: Readonly<Record<Action, Rule>> = {
  'read-jobs': { role: 'read', scope: 'namespace', says: 'read jobs' },
  'submit-jobs': { role: 'submit', scope: 'namespace', says: 'submit jobs' },
  'kill-jobs': { role: 'submit', scope: 'namespace', says: 'kill jobs' },
  'read-cell': { role: 'read', scope: 'cell', says: 'read the cell' },
  'read-namespaces': { role: 'read', scope: 'namespace', says: 'read the quota' },
  'manage-namespaces': { role: 'admin', scope: 'cell', says: 'manage namespaces and quotas' },
  'manage-tokens': { role: 'admin', scope: 'cell', says: 'manage tokens' },
  'manage-machines': { role: 'admin', scope: 'cell', says: 'cordon or drain machines' },
  'whoami': { role: 'read', scope: 'cell', says: 'ask who it is' },
};

/** Every method of `api.proto` (`<service>/<method>`) and the action it is. */
export const METHOD_ACTIONS: Readonly<Record<string, Action>> = {
  'omega.v1.JobService/SubmitJob': 'submit-jobs',
  'omega.v1.JobService/GetJob': 'read-jobs',
  'omega.v1.JobService/ListJobs': 'read-jobs',
  'omega.v1.JobService/KillJob': 'kill-jobs',
  'omega.v1.JobService/UpdateJob': 'submit-jobs',
  'omega.v1.JobService/GetJobHistory': 'read-jobs',
  'omega.v1.JobService/PlanJob': 'submit-jobs',
  'omega.v1.JobService/WatchJob': 'read-jobs',
  'omega.v1.JobService/GetTaskLogs': 'read-jobs',
  'omega.v1.CellService/ListMachines': 'read-cell',
  'omega.v1.CellService/GetSchedulerStats': 'read-cell',
  'omega.v1.CellService/CordonMachine': 'manage-machines',
  'omega.v1.CellService/UncordonMachine': 'manage-machines',
  'omega.v1.CellService/DrainMachine': 'manage-machines',
  'omega.v1.AccessService/CreateToken': 'manage-tokens',
  'omega.v1.AccessService/ListTokens': 'manage-tokens',
  'omega.v1.AccessService/RevokeToken': 'manage-tokens',
  'omega.v1.AccessService/WhoAmI': 'whoami',
  'omega.v1.NamespaceService/CreateNamespace': 'manage-namespaces',
  'omega.v1.NamespaceService/ListNamespaces': 'read-namespaces',
  'omega.v1.NamespaceService/GetQuota': 'read-namespaces',
  'omega.v1.NamespaceService/SetQuota': 'manage-namespaces',
};

export type Decision = { readonly allowed: true } | { readonly allowed: false; readonly message: string };

const rank = (role: Role): number => ROLES.indexOf(role);

function who(caller: Caller): string {
  return `token ${JSON.stringify(caller.name)}`;
}

/** Whether the caller's namespaces include `namespace` (admin: every one). */
export function holdsNamespace(caller: Caller, namespace: string): boolean {
  return caller.role === 'admin' || caller.namespaces.includes(ALL_NAMESPACES) || caller.namespaces.includes(namespace);
}

/**
 * May `caller` do `action` (in `namespace`, which a namespaced action must name)? The refusal
 * names what was missing: the role, or the namespace.
 */
export function decide(caller: Caller, action: Action, namespace?: string): Decision {
  const rule = RULES[action];
  if (rule.scope === 'namespace' && namespace === undefined) throw new Error(`${action} is decided per namespace: name the namespace`);
  const where = rule.scope === 'namespace' ? ` in namespace ${JSON.stringify(namespace)}` : '';
  const role = roleDecision(caller, action, where);
  if (!role.allowed) return role;
  if (rule.scope === 'namespace' && namespace !== undefined && !holdsNamespace(caller, namespace)) {
    const held = caller.namespaces.map((ns) => JSON.stringify(ns)).join(', ');
    return { allowed: false, message: `${who(caller)} (namespaces ${held}) may not ${rule.says}${where}: it is not one of its namespaces` };
  }
  return { allowed: true };
}

/**
 * The decision on the role alone: what the server checks for every call before its handler runs
 * (for a cell-wide action that is the whole decision).
 */
export function decideRole(caller: Caller, action: Action): Decision {
  return roleDecision(caller, action, '');
}

function roleDecision(caller: Caller, action: Action, where: string): Decision {
  const rule = RULES[action];
  if (rank(caller.role) >= rank(rule.role)) return { allowed: true };
  return { allowed: false, message: `${who(caller)} (role ${caller.role}) may not ${rule.says}${where}: that needs role ${rule.role}` };
}

/** Whether {@link decide} allows it. */
export function allows(caller: Caller, action: Action, namespace?: string): boolean {
  return decide(caller, action, namespace).allowed;
}

/** Throws PERMISSION_DENIED with the decision's message when it refuses. */
export function enforce(decision: Decision): void {
  if (!decision.allowed) throw new ApiError(status.PERMISSION_DENIED, decision.message);
}

/** {@link decide}, refusing with PERMISSION_DENIED and its message. */
export function authorize(caller: Caller, action: Action, namespace?: string): void {
  enforce(decide(caller, action, namespace));
}
