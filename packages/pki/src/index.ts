/**
 * @omega/pki: a cell's private certificate authority (ECDSA P-256) and the certificates of its
 * components, in memory ({@link createCa}, {@link issueCertificate}) or kept in a directory
 * ({@link loadOrCreatePki}). See README.md.
 */
export {
  DEFAULT_CA_VALID_DAYS,
  DEFAULT_CERT_VALID_DAYS,
  commonNameProblem,
  createCa,
  hostProblem,
  issueCertificate,
  type CertificateAuthority,
  type CertifiedKey,
  type CreateCaRequest,
  type IssueRequest,
} from './certificates.js';
export {
  LOOPBACK_HOSTS,
  identityFiles,
  identityNameProblem,
  loadCa,
  loadOrCreatePki,
  writePki,
  type LoadOrCreateOptions,
  type PkiDirectory,
  type PkiIdentity,
  type IdentityFiles,
} from './pki-dir.js';
export { InconsistentPkiError, InvalidPkiRequestError, PkiError, PkiFileError } from './errors.js';
