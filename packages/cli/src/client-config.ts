/**
 * Where the API is and how to prove who we are: the client config file and its overrides,
 * resolved once per command into an {@link ApiConnection}.
 *
 * ```
 *   --config FILE ─┐
 *   $OMEGA_CONFIG ─┼─ the first that is given (or ./.omega/client.yaml if it exists) ─► file
 *   ./.omega/... ──┘
 *   api:   --api   > $OMEGA_API   > file's api   > 127.0.0.1:7070
 *   token: --token > $OMEGA_TOKEN > file's token
 *   ca:    --ca    > $OMEGA_CA    > file's ca (relative to the file's directory)
 *   --insecure (or the file's insecure: true): plaintext, no CA, no token sent
 * ```
 *
 * The file (`omega dev` writes one at `<data-dir>/client.yaml`):
 *
 * ```yaml
 * api: 127.0.0.1:7070
 * ca: ca.pem            # the cell's CA certificate (PEM), relative to this file's directory
 * token: omg1.admin.…   # a bearer token (keep the file private: mode 0600)
 * insecure: false       # true: the API is plaintext (started with --insecure)
 * ```
 *
 * Every problem is a {@link ClientConfigError} naming where the bad value came from and which
 * field (`$OMEGA_CONFIG (/x/client.yaml): ca: file not found (/x/ca.pem)`); a token is never
 * part of a message. Reads only small local files, synchronously: a command resolves this once,
 * before its first call.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { parseToken } from '@omega/cell-state/vocabulary';
import { yaml } from './lazy-require.js';
import { CliError, EXIT_USAGE } from './errors.js';

/** Where the API is when nothing says. */
export const DEFAULT_API_ADDRESS = '127.0.0.1:7070';

/** The config file looked for in the working directory when neither --config nor $OMEGA_CONFIG names one. */
export const DEFAULT_CONFIG_PATH = '.omega/client.yaml';

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

const CONFIG_FIELDS = ['api', 'ca', 'token', 'insecure'] as const;

/** A client config, or an override of one, that cannot be used. Never retryable: the user must change it. */
export class ClientConfigError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT_USAGE, { ...options, retryable: false });
    this.name = 'ClientConfigError';
  }
}

/** How the channel is secured. A token is only ever sent over TLS. */
export type ApiSecurity =
  | { readonly kind: 'tls'; readonly ca: Buffer; readonly caPath: string; readonly token: string }
  | { readonly kind: 'insecure' };

/** Everything a command needs to call the API. */
export interface ApiConnection {
  readonly address: string;
  readonly security: ApiSecurity;
  /** The config file used, if any (absolute), for messages. */
  readonly configFile?: string;
}

/** The flags that bear on the connection (all optional; commander's global options). */
export interface ConnectionFlags {
  readonly config?: string;
  readonly api?: string;
  readonly token?: string;
  readonly ca?: string;
  readonly insecure?: boolean;
}

/** The file's fields as written (every one optional). */
export interface ClientConfigFile {
  readonly api?: string;
  readonly ca?: string;
  readonly token?: string;
  readonly insecure?: boolean;
}

interface LoadedFile {
  /** `--config (/abs)`, `$OMEGA_CONFIG (/abs)` or `./.omega/client.yaml (/abs)`. */
  readonly source: string;
  readonly path: string;
  readonly fields: ClientConfigFile;
}

const given = (value: string | undefined): value is string => value !== undefined && value !== '';

/** Checks `address` is host:port; `source` names where it came from. */
export function checkApiAddress(address: string, source: string): string {
  const match = HOST_PORT.exec(address);
  if (match === null || Number(match[2]) === 0 || Number(match[2]) > 65535) throw new ClientConfigError(`${source}: ${JSON.stringify(address)} is not HOST:PORT`);
  return address;
}

/** Checks a bearer token's shape (cell-state's parser, the server's) without ever printing it. */
export function checkToken(token: string, source: string): string {
  const parsed = parseToken(token);
  if ('problem' in parsed) throw new ClientConfigError(`${source}: ${parsed.problem} (as omega token create prints it)`);
  return token;
}

/** Reads and checks a CA certificate file. `source` names the setting (`--ca`, `<file>: ca`). */
function readCa(path: string, source: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    throw new ClientConfigError(`${source}: ${why} (${path})`, { cause: error });
  }
  try {
    // Parses the first certificate: refuses a key, a truncated file or random bytes here rather
    // than as an obscure TLS failure later.
    new X509Certificate(pem);
  } catch (error) {
    throw new ClientConfigError(`${source}: is not a PEM certificate (${path})`, { cause: error });
  }
  return pem;
}

/** Parses a config file's text; `source` prefixes every problem. */
export function parseClientConfig(text: string, source: string): ClientConfigFile {
  const doc = yaml().parseDocument(text, { uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const pos = syntax.linePos?.[0];
    throw new ClientConfigError(`${source}: ${pos === undefined ? '' : `line ${pos.line}, column ${pos.col}: `}${(syntax.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ClientConfigError(`${source}: must be a mapping of ${CONFIG_FIELDS.join(', ')}`);
  const record = raw as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(record)) {
    if (!(CONFIG_FIELDS as readonly string[]).includes(key)) problems.push(`${key}: is not a known field (known: ${CONFIG_FIELDS.join(', ')})`);
  }
  const text_ = (field: 'api' | 'ca' | 'token'): string | undefined => {
    const value = record[field];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' || value === '') {
      problems.push(`${field}: must be a non-empty string`);
      return undefined;
    }
    return value;
  };
  const api = text_('api');
  const ca = text_('ca');
  const token = text_('token');
  const insecure = record.insecure;
  if (insecure !== undefined && insecure !== null && typeof insecure !== 'boolean') problems.push('insecure: must be true or false');
  if (insecure === true && ca !== undefined) problems.push('insecure: true contradicts ca: (a plaintext API has no certificate); remove one');
  if (problems.length > 0) throw new ClientConfigError(`${source}: ${problems.join('; ')}`);
  return { ...(api === undefined ? {} : { api }), ...(ca === undefined ? {} : { ca }), ...(token === undefined ? {} : { token }), ...(insecure === true ? { insecure: true } : {}) };
}

/** Finds and reads the config file, if any: --config, else $OMEGA_CONFIG, else ./.omega/client.yaml when it exists. */
function loadConfigFile(flags: ConnectionFlags, env: NodeJS.ProcessEnv, cwd: string): LoadedFile | undefined {
  let path: string;
  let label: string;
  if (given(flags.config)) {
    path = resolve(cwd, flags.config);
    label = '--config';
  } else if (given(env.OMEGA_CONFIG)) {
    path = resolve(cwd, env.OMEGA_CONFIG);
    label = '$OMEGA_CONFIG';
  } else {
    path = resolve(cwd, DEFAULT_CONFIG_PATH);
    label = `./${DEFAULT_CONFIG_PATH}`;
    // The implicit file is optional; a named one must exist.
    if (!existsSync(path)) return undefined;
  }
  const source = `${label} (${path})`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    throw new ClientConfigError(`${source}: ${why}`, { cause: error });
  }
  return { source, path, fields: parseClientConfig(text, source) };
}

/**
 * Resolves the connection of one command from its flags, the environment and the config file
 * (precedence in the header). Throws {@link ClientConfigError}; reads files only under the
 * given names. `cwd` resolves relative paths of flags, env and the default file.
 */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): ApiConnection {
  const file = loadConfigFile(flags, env, cwd);
  const fields = file?.fields ?? {};
  const fileSource = (field: string): string => `${file?.source ?? 'config'}: ${field}`;

  const address = given(flags.api)
    ? checkApiAddress(flags.api, '--api')
    : given(env.OMEGA_API)
      ? checkApiAddress(env.OMEGA_API, '$OMEGA_API')
      : fields.api !== undefined
        ? checkApiAddress(fields.api, fileSource('api'))
        : DEFAULT_API_ADDRESS;
  const configFile = file === undefined ? {} : { configFile: file.path };

  // An explicit CA beats a file's `insecure: true`; an explicit --insecure beats everything.
  const caSetting = given(flags.ca)
    ? { path: resolve(cwd, flags.ca), source: '--ca' }
    : given(env.OMEGA_CA)
      ? { path: resolve(cwd, env.OMEGA_CA), source: '$OMEGA_CA' }
      : fields.ca !== undefined && file !== undefined
        ? { path: resolve(dirname(file.path), fields.ca), source: fileSource('ca') }
        : undefined;
  const insecure = flags.insecure === true || (fields.insecure === true && caSetting === undefined);
  if (insecure) return { address, security: { kind: 'insecure' }, ...configFile };

  if (caSetting === undefined) {
    if (file === undefined) {
      throw new ClientConfigError(
        'no API credentials: pass --config, set OMEGA_CONFIG, or run omega dev (it prints export OMEGA_CONFIG=...); --insecure for a plaintext API',
      );
    }
    throw new ClientConfigError(`${fileSource('ca')}: is required (the cell's CA certificate, PEM), unless insecure: true`);
  }
  const ca = readCa(caSetting.path, caSetting.source);

  const token = given(flags.token)
    ? checkToken(flags.token, '--token')
    : given(env.OMEGA_TOKEN)
      ? checkToken(env.OMEGA_TOKEN, '$OMEGA_TOKEN')
      : fields.token !== undefined
        ? checkToken(fields.token, fileSource('token'))
        : undefined;
  if (token === undefined) {
    throw new ClientConfigError(`no API token: set OMEGA_TOKEN, ${file === undefined ? 'use a client config with token:' : `add token: to ${file.source}`}, or pass --token`);
  }
  return { address, security: { kind: 'tls', ca, caPath: caSetting.path, token }, ...configFile };
}

/**
 * Writes a client config (for `omega dev` and setup tools): mode 0600 since it holds a token,
 * replaced atomically so a reader never sees half a file. `ca` is written relative to the file's
 * directory when it lies inside it, so the directory can be moved as a whole.
 */
export function writeClientConfig(path: string, config: { api: string; ca: string; token: string } | { api: string; insecure: true }): void {
  const dir = dirname(resolve(path));
  let body: ClientConfigFile;
  if ('insecure' in config) body = { api: config.api, insecure: true };
  else {
    const ca = resolve(config.ca);
    const inside = relative(dir, ca);
    body = { api: config.api, ca: inside.startsWith('..') || isAbsolute(inside) ? ca : inside, token: config.token };
  }
  const text = `# Omega client config: omega reads it with --config FILE or OMEGA_CONFIG=FILE.\n# It holds a bearer token: keep it private.\n${yaml().stringify(body)}`;
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, path);
}
