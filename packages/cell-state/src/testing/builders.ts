/**
 * Builders for tests: `machine('m1').cpu(4000).memory('8Gi').attr('rack', 'r1').build()`,
 * `jobSpec('web').service().instances(3).cpu(500).memory('64Mi').build()`.
 */
import { parseBytes } from '../quantity.js';
import {
  DEFAULT_NAMESPACE,
  machineId,
  type Constraint,
  type JobSpec,
  type MachineId,
  type Resources,
  type RestartPolicy,
  type TaskSpec,
} from '../types.js';
import type { MachineRegistration } from '../cell.js';

export class MachineBuilder {
  private capacity: { cpuMillis: number; memoryBytes: number } = { cpuMillis: 4000, memoryBytes: 16 * 1024 ** 3 };
  private readonly attributes: Record<string, string> = {};
  private hollowFlag = false;

  constructor(private readonly id: MachineId) {}

  cpu(millis: number): this {
    this.capacity.cpuMillis = millis;
    return this;
  }
  memory(quantity: string | number): this {
    this.capacity.memoryBytes = parseBytes(quantity);
    return this;
  }
  attr(name: string, value: string): this {
    this.attributes[name] = value;
    return this;
  }
  hollow(): this {
    this.hollowFlag = true;
    return this;
  }
  build(): MachineRegistration {
    return { id: this.id, capacity: { ...this.capacity }, attributes: { ...this.attributes }, hollow: this.hollowFlag };
  }
}

export function machine(id: string): MachineBuilder {
  return new MachineBuilder(machineId(id));
}

export class JobSpecBuilder {
  private spec: {
    -readonly [K in keyof JobSpec]: JobSpec[K];
  };
  private task: { -readonly [K in keyof TaskSpec]: TaskSpec[K] };
  private resources: { -readonly [K in keyof Resources]: number } = { cpuMillis: 100, memoryBytes: 64 * 1024 ** 2 };
  private readonly constraintList: Constraint[] = [];

  constructor(name: string) {
    this.task = { command: ['true'], env: {}, resources: this.resources, runDurationMs: 1000, hollowFail: false, pidsLimit: 0 };
    this.spec = {
      name,
      namespace: DEFAULT_NAMESPACE,
      kind: 'batch',
      priority: 0,
      instances: 1,
      commitMode: 'default',
      task: this.task,
      constraints: this.constraintList,
      restartPolicy: { kind: 'default', maxRestarts: 0, initialBackoffMs: 0, maxBackoffMs: 0 },
    };
  }
  batch(): this {
    this.spec.kind = 'batch';
    return this;
  }
  service(): this {
    this.spec.kind = 'service';
    return this;
  }
  instances(n: number): this {
    this.spec.instances = n;
    return this;
  }
  priority(p: number): this {
    this.spec.priority = p;
    return this;
  }
  namespace(name: string): this {
    this.spec.namespace = name;
    return this;
  }
  gang(): this {
    this.spec.commitMode = 'all-or-nothing';
    return this;
  }
  cpu(millis: number): this {
    this.resources.cpuMillis = millis;
    return this;
  }
  memory(quantity: string | number): this {
    this.resources.memoryBytes = parseBytes(quantity);
    return this;
  }
  command(...argv: string[]): this {
    this.task.command = argv;
    return this;
  }
  env(name: string, value: string): this {
    this.task.env = { ...this.task.env, [name]: value };
    return this;
  }
  duration(ms: number): this {
    this.task.runDurationMs = ms;
    return this;
  }
  failing(): this {
    this.task.hollowFail = true;
    return this;
  }
  constraint(c: Partial<Constraint> & Pick<Constraint, 'operator'>): this {
    this.constraintList.push({ attribute: '', values: [], limit: 0, ...c });
    return this;
  }
  /** A health check for the task (see health-check.ts); timings left out take the defaults. */
  healthCheck(check: TaskSpec['healthCheck']): this {
    this.task.healthCheck = check;
    return this;
  }
  restart(policy: Partial<RestartPolicy>): this {
    this.spec.restartPolicy = { ...this.spec.restartPolicy, ...policy };
    return this;
  }
  build(): JobSpec {
    return { ...this.spec, task: { ...this.task, resources: { ...this.resources } }, constraints: [...this.constraintList] };
  }
}

export function jobSpec(name: string): JobSpecBuilder {
  return new JobSpecBuilder(name);
}
