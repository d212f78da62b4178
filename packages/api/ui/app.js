// The Omega web UI: the cell overview (/), a job's page (/jobs/<id>) and the login (/login).
// Plain ES modules and DOM calls, no framework; every text is set with textContent (never as
// HTML). Pages fetch their JSON once and then follow /api/events (server-sent events), so the
// page changes as the cell does without a reload.
import { lineChart } from './chart.js';

/** Creates an element: h('td', { class: 'num' }, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child !== undefined && child !== null && child !== false) node.append(child instanceof Node ? child : String(child));
  return node;
}

const app = document.getElementById('app');

/** Replaces a node's children, leaving out the absent ones (null, undefined, false). */
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}
const live = document.getElementById('live');

/** A state name of the wire (JOB_VIEW_STATE_RUNNING) in plain words (running). */
export function plain(value) {
  return String(value ?? '').replace(/^(JOB_VIEW_STATE|TASK_VIEW_STATE|JOB_KIND|RESTART_POLICY_KIND|COMMIT_MODE|CONSTRAINT_OPERATOR)_/, '').toLowerCase().replaceAll('_', '-');
}

const badge = (state, extra = {}) => h('span', { class: `badge ${state}`, ...extra }, state);

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 10 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}
const cpu = (m) => (Number(m) >= 1000 ? `${(Number(m) / 1000).toFixed(Number(m) % 1000 === 0 ? 0 : 2)} cores` : `${m}m`);
const when = (ms) => (Number(ms) > 0 ? new Date(Number(ms)).toLocaleString() : '–');
const ago = (ms) => {
  const s = Math.max(0, Math.round((Date.now() - Number(ms)) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)}m ago` : s < 86400 ? `${Math.round(s / 3600)}h ago` : `${Math.round(s / 86400)}d ago`;
};

function bar(used, total, label) {
  const share = total > 0 ? Math.min(1, used / total) : 0;
  const fill = h('span', {});
  // Through the CSSOM: the page's CSP allows no inline style attributes.
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  return h('span', {},
    h('span', { class: `bar${share >= 0.95 ? ' full' : share >= 0.75 ? ' hot' : ''}`, title: `${Math.round(share * 100)}%` }, fill),
    h('span', { class: 'barlabel' }, label));
}

async function getJson(url) {
  const response = await fetch(url, { credentials: 'same-origin' });
  if (response.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    throw new Error('not logged in');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? `${url} answered ${response.status}`);
  return body;
}

function showError(error) {
  app.replaceChildren(h('p', { class: 'error', id: 'page-error' }, error.message ?? String(error)));
}

/** Follows a server-sent events stream: onView(view) per update, onEvent(name, data) for named events. */
function follow(url, onView, onEvent = () => {}) {
  const source = new EventSource(url);
  source.onopen = () => {
    live.textContent = '● live';
    live.classList.add('on');
  };
  source.onerror = () => {
    live.textContent = '○ reconnecting';
    live.classList.remove('on');
  };
  source.onmessage = (event) => onView(JSON.parse(event.data));
  source.addEventListener('history', (event) => onEvent('history', JSON.parse(event.data)));
  source.addEventListener('error', (event) => {
    if (event.data) {
      source.close();
      showError(new Error(JSON.parse(event.data).error));
    }
  });
  source.addEventListener('session-ended', () => {
    source.close();
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
  });
  return source;
}

// ---- the overview --------------------------------------------------------------------------

function machineState(m) {
  const states = [m.alive ? badge('alive') : badge('down')];
  if (m.drain_deadline_ms > 0) states.push(' ', badge('draining', { title: m.cordon_reason || 'draining' }));
  else if (m.cordoned) states.push(' ', badge('cordoned', { title: m.cordon_reason || 'cordoned' }));
  if (!m.schedulable && m.unschedulable_reason) states.push(' ', h('span', { class: 'muted' }, m.unschedulable_reason));
  if (m.hollow) states.push(' ', h('span', { class: 'chip' }, 'hollow'));
  return states;
}

function machinesTable(machines) {
  if (machines.length === 0) return h('p', { class: 'muted', id: 'machines' }, 'No machine has registered yet.');
  return h('table', { id: 'machines' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Machine'), h('th', {}, 'State'), h('th', {}, 'CPU'), h('th', {}, 'Memory'), h('th', {}, 'Tasks'), h('th', {}, 'Attributes'))),
    h('tbody', {}, machines.map((m) => h('tr', { 'data-machine': m.id },
      h('td', { class: 'mono' }, m.id),
      h('td', {}, machineState(m)),
      h('td', {}, bar(m.allocated.cpu_millis, m.capacity.cpu_millis, `${cpu(m.allocated.cpu_millis)} / ${cpu(m.capacity.cpu_millis)}`)),
      h('td', {}, bar(m.allocated.memory_bytes, m.capacity.memory_bytes, `${bytes(m.allocated.memory_bytes)} / ${bytes(m.capacity.memory_bytes)}`)),
      h('td', { class: 'num' }, m.tasks),
      h('td', {}, Object.entries(m.attributes).sort().map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`)))))));
}

function counts(c) {
  return h('span', { class: 'counts' }, Object.entries(c).filter(([, n]) => n > 0).map(([state, n]) => h('span', {}, `${n} ${state}`)));
}

function jobsTable(jobs, truncated) {
  if (jobs.length === 0) return h('p', { class: 'muted', id: 'jobs' }, 'No jobs (in the namespaces this token may read).');
  return h('div', {},
    h('table', { id: 'jobs' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'Namespace'), h('th', {}, 'Kind'), h('th', {}, 'State'), h('th', {}, 'Tasks'), h('th', {}, 'Version'), h('th', {}, 'Submitted'))),
      h('tbody', {}, jobs.map((j) => h('tr', { 'data-job': j.id },
        h('td', {}, h('a', { href: `/jobs/${encodeURIComponent(j.id)}`, class: 'mono' }, j.id)),
        h('td', {}, j.spec.namespace || 'default'),
        h('td', {}, plain(j.spec.kind)),
        h('td', {}, badge(plain(j.state), { 'data-state': plain(j.state), title: j.reason })),
        h('td', {}, counts(j.task_counts)),
        h('td', { class: 'num' }, j.version),
        h('td', { title: when(j.submitted_at_ms) }, ago(j.submitted_at_ms)))))),
    truncated ? h('p', { class: 'muted' }, 'Only the newest 500 jobs are listed; `omega jobs` lists them all.') : null);
}

function schedulersTable(schedulers) {
  if (schedulers.length === 0) return h('p', { class: 'muted' }, 'No scheduler has published its statistics yet.');
  return h('table', { id: 'schedulers' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Scheduler'), h('th', {}, 'Kind'), h('th', {}, 'Transactions'), h('th', {}, 'Failed'), h('th', {}, 'Conflict fraction'), h('th', {}, 'Busyness'), h('th', {}, 'Claims'), h('th', {}, 'Updated'))),
    h('tbody', {}, schedulers.map((s) => h('tr', {},
      h('td', { class: 'mono' }, s.name), h('td', {}, s.kind),
      h('td', { class: 'num' }, s.transactions), h('td', { class: 'num' }, s.transactions_failed),
      h('td', { class: 'num' }, s.conflict_fraction.toFixed(3)), h('td', { class: 'num' }, `${(s.busyness * 100).toFixed(1)}%`),
      h('td', { class: 'num' }, `${s.claims_committed} committed, ${s.claims_conflicted} conflicted`),
      h('td', {}, ago(s.updated_at_ms))))));
}

function charts(history) {
  const series = (key) => history.map((s) => ({ name: s.name, points: s.points.map((p) => ({ atMs: p.atMs, value: p[key] })) }));
  return h('div', { class: 'charts', id: 'charts' },
    lineChart({ id: 'chart-conflicts', title: 'Conflict fraction (failed / successful transactions, per sample)', series: series('conflictFraction'), yMax: 0.1, format: (v) => v.toFixed(2) }),
    lineChart({ id: 'chart-busyness', title: 'Busyness (share of time spent scheduling)', series: series('busyness'), yMax: 1, format: (v) => `${Math.round(v * 100)}%` }));
}

async function overviewPage() {
  let view;
  let history = [];
  const render = () => {
    if (view === undefined) return;
    document.getElementById('cell').textContent = `cell ${view.cell} · revision ${view.revision}`;
    const totals = view.machineTotals;
    fill(app,
      h('h1', {}, 'Cell overview'),
      h('div', { class: 'grid' },
        h('div', { class: 'card' }, h('div', {}, 'Machines alive'), h('div', { id: 'alive-count' }, `${totals.alive} of ${totals.machines}`)),
        h('div', { class: 'card' }, h('div', {}, 'Jobs'), h('div', {}, String(view.jobs.length))),
        h('div', { class: 'card' }, h('div', {}, 'Running tasks'), h('div', {}, String(view.jobs.reduce((n, j) => n + j.task_counts.running, 0)))),
        h('div', { class: 'card' }, h('div', {}, 'Schedulers'), h('div', {}, String(view.schedulers.length)))),
      h('h2', {}, 'Machines'), machinesTable(view.machines),
      totals.machines > view.machines.length ? h('p', { class: 'muted' }, `The first ${view.machines.length} of ${totals.machines} machines (by id); \`omega machines\` lists them all.`) : null,
      h('h2', {}, 'Jobs'), jobsTable(view.jobs, view.jobsTruncated),
      h('h2', {}, 'Schedulers'), schedulersTable(view.schedulers), h('div', { class: 'gap' }), charts(history));
  };
  try {
    history = (await getJson('/api/stats-history')).schedulers;
  } catch (error) {
    return showError(error);
  }
  follow('/api/events', (next) => {
    view = next;
    render();
  }, (name, data) => {
    if (name !== 'history') return;
    history = data;
    const old = document.getElementById('charts');
    if (old) old.replaceWith(charts(history));
  });
}

// ---- a job's page --------------------------------------------------------------------------

function field(name, value) {
  return h('div', { class: 'card' }, h('div', {}, name), h('div', {}, value));
}

function specSummary(job) {
  const spec = job.spec;
  const task = spec.task ?? {};
  const res = task.resources ?? { cpu_millis: 0, memory_bytes: 0 };
  const restart = spec.restart_policy ?? {};
  return h('div', { class: 'grid', id: 'spec' },
    field('Namespace', spec.namespace || 'default'),
    field('Kind', plain(spec.kind)),
    field('Instances', String(spec.instances)),
    field('Priority', String(spec.priority)),
    field('Per task', `${cpu(res.cpu_millis)}, ${bytes(res.memory_bytes)}`),
    field('Command', h('code', {}, (task.command ?? []).join(' '))),
    field('Restart policy', plain(restart.kind) === 'unspecified' ? 'default' : plain(restart.kind)),
    field('Scheduler', job.scheduler || '–'),
    field('Submitted', when(job.submitted_at_ms)),
    field('Constraints', spec.constraints.length === 0 ? '–' : spec.constraints.map((c) => `${c.attribute} ${plain(c.operator)} ${c.values.join(',')}`).join('; ')),
    (task.secret_env_names ?? []).length > 0 ? field('Secret env (names only)', task.secret_env_names.join(', ')) : null);
}

function whyPending(job) {
  const pending = job.task_counts.pending;
  if (pending === 0 && job.ruled_out.length === 0) return null;
  return h('div', { class: 'card', id: 'why-pending' },
    h('strong', {}, `Why ${pending} task(s) pending: `), job.reason || (job.ruled_out.length === 0 ? 'waiting for a scheduler' : ''),
    job.ruled_out.length > 0 ? h('ul', { class: 'ruled' }, job.ruled_out.map((r) => h('li', {}, `${r.filter}: ruled out ${r.machines} machine(s)`))) : null);
}

function logPanel(jobId) {
  const pre = h('pre', { class: 'log', id: 'log' }, '');
  const title = h('div', { class: 'muted', id: 'log-title' }, 'Pick a task\'s stdout or stderr above to follow its log.');
  let controller;
  const MAX_CHARS = 1_000_000;
  async function open(index, stream, attempt) {
    controller?.abort();
    controller = new AbortController();
    const mine = controller;
    pre.textContent = '';
    title.textContent = `Task ${index} attempt ${attempt}, ${stream} (following)`;
    try {
      const response = await fetch(`/api/logs/${encodeURIComponent(jobId)}/${index}?stream=${stream}&attempt=${attempt}&follow=1`, { signal: mine.signal, credentials: 'same-origin' });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        title.textContent = `Task ${index} ${stream}: ${body.error ?? response.status}`;
        return;
      }
      if (response.headers.get('x-omega-log-truncated') === 'true') pre.append('[the oldest output was dropped by the log cap]\n');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(value);
        if (pre.textContent.length > MAX_CHARS) pre.textContent = pre.textContent.slice(-MAX_CHARS / 2);
        if (atBottom) pre.scrollTop = pre.scrollHeight;
      }
      if (mine === controller) title.textContent = `Task ${index} attempt ${attempt}, ${stream} (ended)`;
    } catch (error) {
      if (error.name !== 'AbortError') title.textContent = `Task ${index} ${stream}: ${error.message}`;
    }
  }
  return { node: h('div', {}, title, pre), open };
}

function tasksTable(job, logs) {
  return h('table', { id: 'tasks' },
    h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'State'), h('th', {}, 'Machine'), h('th', {}, 'Attempt'), h('th', {}, 'Restarts'), h('th', {}, 'Reason / exit'), h('th', {}, 'Health'), h('th', {}, 'Version'), h('th', {}, 'Started'), h('th', {}, 'Logs'))),
    h('tbody', {}, job.tasks.map((t) => {
      const state = plain(t.state);
      const exit = t.has_exit_code ? `exit ${t.exit_code}` : t.signal ? `signal ${t.signal}` : '';
      return h('tr', { 'data-task': t.index },
        h('td', { class: 'num' }, t.index),
        h('td', {}, badge(state, { 'data-state': state })),
        h('td', { class: 'mono' }, t.machine || '–'),
        h('td', { class: 'num' }, t.attempt),
        h('td', { class: 'num' }, t.restarts),
        h('td', {}, [t.reason, exit].filter(Boolean).join(', ') || '–'),
        h('td', {}, t.health ? badge(t.health) : '–'),
        h('td', { class: 'num' }, t.version || '–'),
        h('td', {}, t.started_at_ms > 0 ? ago(t.started_at_ms) : '–'),
        h('td', {}, t.machine
          ? [h('button', { class: 'small', type: 'button', onclick: () => logs.open(t.index, 'stdout', t.attempt) }, 'stdout'), ' ',
             h('button', { class: 'small', type: 'button', onclick: () => logs.open(t.index, 'stderr', t.attempt) }, 'stderr')]
          : '–'));
    })));
}

function versionsTable(versions) {
  if (versions.length === 0) return null;
  return h('table', { id: 'versions' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Version'), h('th', {}, 'Change'), h('th', {}, 'By'), h('th', {}, 'Instances'), h('th', {}, 'When'))),
    h('tbody', {}, versions.map((v) => h('tr', {},
      h('td', { class: 'num' }, `${v.version}${v.current ? ' (current)' : ''}`), h('td', {}, v.change || '–'), h('td', {}, v.by || '–'),
      h('td', { class: 'num' }, v.instances), h('td', {}, when(v.atMs))))));
}

async function jobPage(id) {
  let versions = [];
  let versionShown = -1;
  const logs = logPanel(id);
  const head = h('div', {});
  const body = h('div', {});
  app.replaceChildren(head, body, h('h2', {}, 'Logs'), logs.node);
  const render = (page) => {
    const job = page.job;
    document.getElementById('cell').textContent = `revision ${page.revision}`;
    const state = plain(job.state);
    fill(head,
      h('p', {}, h('a', { href: '/' }, '← Cell overview')),
      h('h1', {}, h('span', { class: 'mono' }, job.id), ' ', badge(state, { id: 'job-state', 'data-state': state })),
      job.reason ? h('p', { id: 'job-reason' }, job.reason) : null,
      job.kill_requested ? h('p', { class: 'muted' }, 'A kill was requested.') : null);
    const deployment = job.deployment;
    fill(body,
      h('h2', {}, 'Spec'), specSummary(job),
      h('h2', {}, `Version ${job.version}`),
      deployment ? h('p', {}, `Rolling update to version ${deployment.version}: ${deployment.state}, ${deployment.healthy} healthy, ${deployment.updated} of ${deployment.total} updated${deployment.reason ? ` (${deployment.reason})` : ''}`) : null,
      versionsTable(versions),
      h('h2', {}, 'Tasks'), whyPending(job), tasksTable(job, logs));
  };
  let initial;
  try {
    initial = await getJson(`/api/jobs/${encodeURIComponent(id)}`);
  } catch (error) {
    return showError(error);
  }
  versions = initial.versions;
  versionShown = initial.job.version;
  render(initial);
  follow(`/api/events?job=${encodeURIComponent(id)}`, (page) => {
    render(page);
    if (page.job.version !== versionShown) {
      versionShown = page.job.version;
      getJson(`/api/jobs/${encodeURIComponent(id)}`).then((fresh) => {
        versions = fresh.versions;
        render(fresh);
      }, () => {});
    }
  });
}

// ---- the frame -----------------------------------------------------------------------------

async function session() {
  const response = await fetch('/api/session', { credentials: 'same-origin' });
  if (!response.ok) return undefined;
  return response.json();
}

async function main() {
  const path = location.pathname;
  if (path === '/login') {
    const { loginPage } = await import('./login.js');
    return loginPage(app);
  }
  const who = await session();
  if (who === undefined) {
    location.assign(`/login?next=${encodeURIComponent(path)}`);
    return;
  }
  document.getElementById('who').textContent = who.insecure ? 'INSECURE cell: no login' : `${who.name} (${who.role}${who.role === 'admin' ? '' : `: ${who.namespaces.join(', ')}`})`;
  const logout = document.getElementById('logout');
  if (!who.insecure) {
    logout.hidden = false;
    logout.addEventListener('click', async () => {
      await fetch('/logout', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', credentials: 'same-origin' });
      location.assign('/login');
    });
  }
  const job = /^\/jobs\/([^/]+)$/.exec(path);
  if (job) return jobPage(decodeURIComponent(job[1]));
  return overviewPage();
}

main().catch(showError);
