/**
 * Is an address free to listen on? `omega dev` asks before it starts anything, so that a port
 * another process serves is refused up front, instead of the API child failing to bind while the
 * other process answers `omega dev`'s readiness check (and the cell looks up when it is not).
 */
import { createServer } from 'node:net';

/** Why an address cannot be listened on, or undefined when it can. */
export interface ListenProblem {
  /** `EADDRINUSE`, `EADDRNOTAVAIL`, `EACCES`, ... */
  readonly code: string;
  readonly message: string;
}

/** The host part of `host:port` as `listen()` wants it (`[::1]` becomes `::1`). */
export function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(at + 1)) };
}

/**
 * Binds `host:port` exclusively for a moment and lets go. Resolves undefined when that worked,
 * else the error code: `EADDRINUSE` when something listens there (on that address or on the
 * wildcard address).
 */
export function probeListen(host: string, port: number): Promise<ListenProblem | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve({ code: error.code ?? 'unknown', message: error.message }));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}
