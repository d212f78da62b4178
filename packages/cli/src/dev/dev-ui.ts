/**
 * `omega dev`'s web UI: the API serves it (`omega-api --ui-listen`) on a loopback port that
 * `omega dev` picks once and remembers in its data directory, so a bookmark keeps working
 * across restarts; when that port has been taken meanwhile, another free one is picked.
 *
 * On a secure cell the UI is HTTPS with the API's certificate (issued by the cell's own CA in
 * `<data dir>/pki/ca.crt`, valid for 127.0.0.1), and needs a token: `omega dev` prints a login
 * link carrying the admin token in the URL fragment, which never leaves the browser except as
 * the one POST the login page makes (the page then drops it from the address bar and history).
 */
import { freePort } from '@omega/cell-state';
import { probeListen } from './port-probe.js';

/** The host the UI listens on: loopback only. */
export const DEV_UI_HOST = '127.0.0.1';

/** The remembered port when it is still free, else a new free one. */
export async function chooseUiPort(remembered: number | undefined): Promise<number> {
  if (remembered !== undefined && Number.isInteger(remembered) && remembered > 0 && remembered < 65536) {
    if ((await probeListen(DEV_UI_HOST, remembered)) === undefined) return remembered;
  }
  return freePort();
}

/** The UI's address as `omega dev` prints it. */
export function uiUrl(port: number, secure: boolean): string {
  return `${secure ? 'https' : 'http'}://${DEV_UI_HOST}:${port}/`;
}

/** A link that logs the browser in with `token` (the login page posts it once, then forgets it). */
export function uiLoginLink(url: string, token: string): string {
  return `${url}login#token=${token}`;
}
