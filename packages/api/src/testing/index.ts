/**
 * Test support for @omega/api: a client built from the .proto files and an in-memory harness.
 */
export { ApiTestClient, refusal, startTestApi, type TestApi } from './api-client.js';
