import { status } from '@grpc/grpc-js';
import { PrometheusMetrics } from '@omega/metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { refusal, startTestApi, type TestApi } from './testing/index.js';

let api: TestApi | undefined;
afterEach(async () => {
  await api?.close();
});

describe('the API on the metrics seam', () => {
  it('counts every call by method and status code, times unary calls, and shows its mirror', async () => {
    const metrics = new PrometheusMetrics({ processMetrics: false });
    api = await startTestApi({ server: { metrics } });
    await api.client.unary('cells', 'ListMachines', {});
    await api.client.unary('cells', 'ListMachines', {});
    const bad = await refusal(api.client.unary('jobs', 'GetJob', { job_id: '../x' }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    const text = await metrics.text();
    expect(text).toContain('omega_api_requests_total{method="ListMachines",code="OK"} 2');
    expect(text).toContain('omega_api_requests_total{method="GetJob",code="INVALID_ARGUMENT"} 1');
    expect(text).toMatch(/omega_api_request_duration_seconds_count\{method="ListMachines"\} 2/);
    expect(text).toMatch(/omega_mirror_revision \d+/);
  });
});
