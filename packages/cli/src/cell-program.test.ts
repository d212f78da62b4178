import { DEFAULT_CA_VALID_DAYS, DEFAULT_CERT_VALID_DAYS, LOOPBACK_HOSTS } from '@omega/pki';
import { describe, expect, it } from 'vitest';
import { HELP_CA_VALID_DAYS, HELP_CERT_VALID_DAYS, HELP_LOOPBACK_HOSTS } from './cell-program.js';

describe('the pki commands’ help text', () => {
  it('names the defaults @omega/pki applies', () => {
    expect(HELP_CA_VALID_DAYS).toBe(DEFAULT_CA_VALID_DAYS);
    expect(HELP_CERT_VALID_DAYS).toBe(DEFAULT_CERT_VALID_DAYS);
    expect(HELP_LOOPBACK_HOSTS).toEqual(LOOPBACK_HOSTS);
  });
});
