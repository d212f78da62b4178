// The login page: takes an API token (omg1.<name>.<secret>) and posts it once to /login, which
// keeps it in an HttpOnly cookie (this script never sees it again). A link of the form
// /login#token=<token> (what `omega dev` prints) logs in at once: the fragment never reaches
// any server, and is removed from the address bar and history before anything else.
import { h } from './app.js';

function nextPath() {
  const next = new URLSearchParams(location.search).get('next') ?? '/';
  // Only a path of this UI: never an absolute or protocol-relative URL.
  return /^\/(?!\/)[A-Za-z0-9._~\/-]*$/.test(next) ? next : '/';
}

async function post(token) {
  const response = await fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }), credentials: 'same-origin' });
  if (response.ok) return undefined;
  const body = await response.json().catch(() => ({}));
  return body.error ?? `login failed (${response.status})`;
}

export async function loginPage(app) {
  const fragment = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fragment !== null) history.replaceState(null, '', location.pathname + location.search);
  const message = h('p', { class: 'error', id: 'login-error', hidden: true });
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', placeholder: 'omg1.<name>.<secret>' });
  const form = h('form', { class: 'card login', id: 'login-form' },
    h('h1', {}, 'Log in to Omega'),
    h('p', { class: 'muted' }, 'Paste an API token (from `omega token create NAME --role read`, or the admin token in the client config `omega dev` writes). It is kept in an HttpOnly cookie of this browser session and checked against the cell on every request.'),
    input, message, h('button', { type: 'submit' }, 'Log in'));
  const fail = (text) => {
    message.textContent = text;
    message.hidden = false;
  };
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const problem = await post(input.value.trim());
    if (problem === undefined) location.assign(nextPath());
    else fail(problem);
  });
  app.replaceChildren(form);
  if (fragment !== null) {
    const problem = await post(fragment);
    if (problem === undefined) location.replace(nextPath());
    else fail(problem);
  } else {
    // Already logged in (or an insecure cell, which asks for no token): nothing to do here.
    const session = await fetch('/api/session', { credentials: 'same-origin' });
    if (session.ok) location.replace(nextPath());
  }
}
