import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MethodDefinition } from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { API_PROTO_FILE, PROTO_LOADER_OPTIONS, loadApiDefinition } from '../proto.js';
import { API_SERVICES, grpcServiceDefinition, methodCodec } from './index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** proto-loader's own reading of the .proto files: what the generated code must agree with. */
const parsed = protoLoader.loadSync(API_PROTO_FILE, PROTO_LOADER_OPTIONS);

const JOB_VIEW = {
  id: 'j-1',
  state: 'JOB_VIEW_STATE_RUNNING',
  submitted_at_ms: 2 ** 40 + 3,
  spec: { name: 'web', kind: 'JOB_KIND_SERVICE', task: { command: ['sh', '-c', 'x'], env: { A: 'b' }, resources: { cpu_millis: 500, memory_bytes: 2 ** 33 }, health_check: { http: { port: 80, path: '/' } } }, constraints: [{ attribute: 'zone', operator: 'CONSTRAINT_OPERATOR_IN', values: ['a', 'b'] }] },
  tasks: [{ index: 0, state: 'TASK_VIEW_STATE_RUNNING', machine: 'm0', cpu_seconds: 1.5 }, { index: 1, state: 99 }],
  ruled_out: [{ filter: 'fit', machines: 3 }],
  task_counts: { running: 1, pending: 1 },
};

/** One sample per message shape the CLI sends or reads, by method. */
const SAMPLES: Record<string, { request: object; response: object }> = {
  SubmitJob: { request: { job: JOB_VIEW.spec, request_id: 'r-1' }, response: { job_id: 'j-1', created: true } },
  ListJobs: { request: { states: ['JOB_VIEW_STATE_PENDING'], limit: 5, include_tasks: true }, response: { jobs: [JOB_VIEW], truncated: true } },
  GetJob: { request: { job_id: 'j-1' }, response: JOB_VIEW },
  WatchJob: { request: { job_id: 'j-1' }, response: { revision: 7, job: JOB_VIEW } },
  GetTaskLogs: { request: { job_id: 'j-1', index: 1, stream: 'STREAM_STDERR', follow: true }, response: { data: Buffer.from('hello\n'), truncated: false } },
  PlanJob: { request: { job: JOB_VIEW.spec }, response: { create: [{ index: 0, machine: 'm0' }], unplaced: [1, 2, 300], reason: 'r', version: 2 } },
  ListMachines: { request: {}, response: { machines: [{ id: 'm0', capacity: { cpu_millis: 4000, memory_bytes: 2 ** 34 }, attributes: { zone: 'a' }, alive: true, drain_deadline_ms: 5 }] } },
  CreateToken: { request: { name: 't', role: 'ROLE_SUBMIT', namespaces: ['a'], ttl_ms: 1000 }, response: { token: { name: 't', role: 'ROLE_SUBMIT', expires_at_ms: 2 ** 41 }, secret: 's' } },
  SetQuota: { request: { namespace: 'a', quota: { cpu_millis: 500, tasks: 4 } }, response: { name: 'a', has_quota: true, quota: { cpu_millis: 500 } } },
};

describe('the generated wire code', () => {
  it('is what scripts/gen-wire.mjs makes of protos/ now (run node scripts/gen-wire.mjs after changing a .proto)', () => {
    // --check writes nothing: it compares what it would write with the files, naming every stale one.
    const check = spawnSync(process.execPath, [path.join(REPO, 'scripts/gen-wire.mjs'), '--check'], { encoding: 'utf8' });
    expect({ status: check.status, stderr: check.stderr }).toEqual({ status: 0, stderr: '' });
  });

  it('lists every method of every service that the .proto files define, with its path and streaming', () => {
    for (const service of Object.values(API_SERVICES)) {
      const fromProto = parsed[service.name] as Record<string, MethodDefinition<unknown, unknown>>;
      expect(service.methods.map((m) => m.name)).toEqual(Object.keys(fromProto));
      const definition = grpcServiceDefinition(service);
      for (const [name, method] of Object.entries(fromProto)) {
        expect({ name, path: definition[name]?.path, requestStream: definition[name]?.requestStream, responseStream: definition[name]?.responseStream }).toEqual({ name, path: method.path, requestStream: method.requestStream, responseStream: method.responseStream });
      }
    }
  });

  it("encodes and decodes exactly as proto-loader's reading of the .proto files and the server's definitions do", () => {
    const server = loadApiDefinition().packageDefinition;
    const checked: string[] = [];
    for (const service of Object.values(API_SERVICES)) {
      const ours = grpcServiceDefinition(service);
      for (const [name, sample] of Object.entries(SAMPLES)) {
        const theirs = (parsed[service.name] as Record<string, MethodDefinition<object, object>>)[name];
        const served = (server[service.name] as Record<string, MethodDefinition<object, object>>)[name];
        const mine = ours[name] as MethodDefinition<object, object> | undefined;
        if (theirs === undefined || served === undefined || mine === undefined) continue;
        checked.push(name);
        const request = theirs.requestSerialize(sample.request);
        const response = theirs.responseSerialize(sample.response);
        expect(Buffer.from(mine.requestSerialize(sample.request))).toEqual(Buffer.from(request));
        expect(Buffer.from(mine.responseSerialize(sample.response))).toEqual(Buffer.from(response));
        expect(Buffer.from(served.responseSerialize(sample.response))).toEqual(Buffer.from(response));
        // Same fields, same defaults, same key order (JSON text compares all three).
        expect(JSON.stringify(mine.requestDeserialize(request))).toBe(JSON.stringify(theirs.requestDeserialize(request)));
        expect(JSON.stringify(mine.responseDeserialize(response))).toBe(JSON.stringify(theirs.responseDeserialize(response)));
        expect(JSON.stringify(served.requestDeserialize(request))).toBe(JSON.stringify(theirs.requestDeserialize(request)));
        expect(JSON.stringify(mine.responseDeserialize(Buffer.alloc(0)))).toBe(JSON.stringify(theirs.responseDeserialize(Buffer.alloc(0))));
      }
    }
    expect(checked.sort()).toEqual(Object.keys(SAMPLES).sort());
  });

  it("encodes and decodes each method with the generated static code as the reflected definitions do", () => {
    const checked: string[] = [];
    for (const service of Object.values(API_SERVICES)) {
      const full = grpcServiceDefinition(service);
      for (const method of service.methods) {
        // Every method has its codec (the generated module has each message); those with a sample are compared.
        const own = methodCodec(method);
        const sample = SAMPLES[method.name];
        const whole = full[method.name] as MethodDefinition<object, object>;
        if (sample === undefined) continue;
        checked.push(method.name);
        expect(own.path).toBe(whole.path);
        expect(Buffer.from(own.serialize(sample.request))).toEqual(Buffer.from(whole.requestSerialize(sample.request)));
        const response = whole.responseSerialize(sample.response);
        expect(JSON.stringify(own.deserialize(response))).toBe(JSON.stringify(whole.responseDeserialize(response)));
        expect(JSON.stringify(own.deserialize(Buffer.alloc(0)))).toBe(JSON.stringify(whole.responseDeserialize(Buffer.alloc(0))));
      }
    }
    expect(checked.sort()).toEqual(Object.keys(SAMPLES).sort());
  });
});
