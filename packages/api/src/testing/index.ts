/**
 * Test support for @omega/api: a client built from the .proto files and an in-memory harness.
 */
export { ApiTestClient, refusal, startTestApi, type ApiTestClientOptions, type TestApi, type TestApiOptions } from './api-client.js';
