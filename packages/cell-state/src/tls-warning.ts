/**
 * grpc-js names the TLS server by the address it dials, and Node warns (DEP0123) on every such
 * connection to an IP address, such as `https://127.0.0.1:2379` or an API at `10.0.0.3:7070`:
 * how a cell's etcd and API are usually reached. The certificate is still checked against that
 * IP (its SANs), so the warning says nothing an operator can act on. Entry points call this once;
 * every other warning is printed as Node would.
 */
export function hideTlsIpServernameWarning(): void {
  const nodeListeners = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: string }) => {
    if (warning.code === 'DEP0123') return;
    for (const listener of nodeListeners) listener(warning);
  });
}
