/**
 * Live updates of a UI page: a server-sent events stream (EventSource in the browser) fed by
 * the API's mirror.
 *
 * ```
 *   mirror.onChange ─► dirty ─► at most one send every coalesceMs ─► authenticate (etcd) ─► view ─► "data: <json>"
 *   every recheckMs with nothing sent ─► authenticate ─► ": ping"
 * ```
 *
 * Changes are coalesced (a burst of commits is one event), a view equal to the last one sent is
 * not sent again, and the token is checked again before every send and every `recheckMs` while
 * idle: once it is revoked or expired the stream says `event: session-ended` and ends, so a
 * revocation holds on open pages too. The first event is the view at etcd's current revision;
 * later ones are at the mirror's.
 */
import type { ServerResponse } from 'node:http';
import { status } from '@grpc/grpc-js';
import type { CellMirror, CellSnapshot } from '@omega/cell-state';
import type { Logger } from 'pino';
import { toServiceError } from '../errors.js';
import { SECURITY_HEADERS } from './ui-http.js';

export interface LiveStreamOptions {
  readonly response: ServerResponse;
  readonly mirror: CellMirror;
  /** The first snapshot (fresh: at etcd's current revision). */
  readonly first: CellSnapshot;
  /** The view sent, from a snapshot; throwing ends the stream with an `error` event. */
  readonly view: (snapshot: CellSnapshot) => unknown;
  /** Whether a mirror change may change the view (default: every change). */
  readonly concerns?: (change: { readonly kind: string; readonly id: string }) => boolean;
  /** Checks the caller's token again; rejects when it is no longer valid. */
  readonly reauthenticate: () => Promise<unknown>;
  /** Extra events pushed by the server (e.g. the stats history): register and return the unsubscriber. */
  readonly extra?: (send: (event: string, data: unknown) => void) => () => void;
  readonly coalesceMs: number;
  readonly recheckMs: number;
  readonly logger: Logger;
}

/** Serves one stream until the client goes, the token stops being valid, or `stop` is called; returns the stopper. */
export function serveLiveStream(options: LiveStreamOptions): () => void {
  const { response, mirror } = options;
  let dirty = false;
  let ended = false;
  let lastText = '';
  let lastSentAt = 0;
  let sendTimer: NodeJS.Timeout | undefined;
  let sending = false;

  response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  // Tells EventSource how long to wait before reconnecting after a dropped connection.
  response.write('retry: 2000\n\n');

  const write = (event: string | undefined, data: unknown): void => {
    if (ended) return;
    response.write(`${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`);
  };

  const end = (): void => {
    if (ended) return;
    ended = true;
    clearTimeout(sendTimer);
    clearInterval(recheck);
    unsubscribe();
    unsubscribeExtra();
    response.end();
  };

  const sendView = (snapshot: CellSnapshot): void => {
    let view: unknown;
    try {
      view = options.view(snapshot);
    } catch (error) {
      write('error', { error: toServiceError(error).serviceError.details ?? 'internal error' });
      end();
      return;
    }
    const text = JSON.stringify(view);
    if (text === lastText) return;
    lastText = text;
    lastSentAt = Date.now();
    write(undefined, view);
  };

  /** Authenticates, then runs `then`; a refused token ends the stream saying why. */
  const checked = (then: () => void): void => {
    sending = true;
    options.reauthenticate().then(
      () => {
        sending = false;
        if (!ended) then();
      },
      (error: unknown) => {
        sending = false;
        const { serviceError } = toServiceError(error);
        // A store that does not answer is not a verdict on the token: keep the stream, try later.
        if (serviceError.code === status.UNAVAILABLE) return;
        write('session-ended', { error: serviceError.details ?? 'the session ended' });
        end();
      },
    );
  };

  const flush = (): void => {
    sendTimer = undefined;
    if (ended || !dirty) return;
    if (sending) {
      sendTimer = setTimeout(flush, options.coalesceMs);
      return;
    }
    dirty = false;
    checked(() => sendView(mirror.snapshot()));
  };

  const schedule = (): void => {
    dirty = true;
    if (sendTimer !== undefined || ended) return;
    sendTimer = setTimeout(flush, Math.max(0, lastSentAt + options.coalesceMs - Date.now()));
  };

  const unsubscribe = mirror.onChange((change) => {
    const concerns = options.concerns;
    if (change.full || concerns === undefined || change.changes.some((c) => concerns(c))) schedule();
  });
  const unsubscribeExtra = options.extra?.((event, data) => write(event, data)) ?? (() => undefined);
  const recheck = setInterval(() => {
    if (sending || ended) return;
    checked(() => response.write(': ping\n\n'));
  }, options.recheckMs);
  recheck.unref();
  response.on('close', end);
  sendView(options.first);
  return end;
}
