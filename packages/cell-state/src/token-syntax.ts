/**
 * A bearer token's text, `omg1.<name>.<base64url secret>`: its parts and their syntax. Pure (no
 * store, no codec), so a client checks a token it was given without loading the cell's records;
 * token-records.ts stores and checks tokens against the cell.
 */
/** The version tag every token starts with: `omg1.<name>.<secret>`. */
export const TOKEN_PREFIX = 'omg1';

/** Random bytes in a token's secret. */
export const TOKEN_SECRET_BYTES = 32;
/** Every namespace: the one namespace entry of admin tokens, or of tokens given `"*"`. */
export const ALL_NAMESPACES = '*';
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** base64url of 32 bytes, unpadded: 43 characters, the last one carrying 4 bits. */
const SECRET_TEXT = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** A bearer token split into its parts. */
export interface ParsedToken {
  readonly name: string;
  readonly secret: Uint8Array;
}

/** The bearer token of a name and a secret: `omg1.<name>.<base64url secret>`. */
export function formatToken(name: string, secret: Uint8Array): string {
  return `${TOKEN_PREFIX}.${name}.${Buffer.from(secret).toString('base64url')}`;
}

/**
 * Splits `omg1.<name>.<secret>`; `{ problem }` says what is wrong, without quoting the text
 * (it may be a secret pasted in the wrong place). Pure.
 */
export function parseToken(text: string): ParsedToken | { readonly problem: string } {
  const parts = text.split('.');
  if (parts.length !== 3 || parts[0] !== TOKEN_PREFIX) return { problem: `not an Omega token (expected ${TOKEN_PREFIX}.<name>.<secret>)` };
  const [, name = '', secretText = ''] = parts;
  if (!DNS_LABEL.test(name)) return { problem: "the token's name is not a DNS label (lowercase letters, digits, '-')" };
  if (!SECRET_TEXT.test(secretText)) return { problem: `the token's secret is not ${TOKEN_SECRET_BYTES} bytes of unpadded base64url` };
  return { name, secret: new Uint8Array(Buffer.from(secretText, 'base64url')) };
}
