// The Ground Control console: login, fleet overview, satellite page, event and audit log.
// preact + htm, bundled by esbuild (build-options.ts); no CDN, no inline script (strict CSP).
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';
import { api, currentSession, login, logout, query } from './api.js';
import { ago, bytes, convergence, presence, remaining } from './format.js';
import { countsDiffer, mentions, useLive, useTick } from './live.js';
import { TrafficCharts } from './charts.js';
import './app.css';
import { CommandBar } from './commands.js';
import { GroupEditor, GroupsPage } from './groups.js';
import { StrayPulls } from './strays.js';
import { TokensPage } from './tokens.js';

const html = htm.bind(h);
/** Views load once and refetch when the live feed says what they show changed (live.js): no polling. */
const usePoll = useLive;

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.code ? error.code + ': ' : ''}${error.message}</p>`;
}

function Login({ onLogin }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      onLogin(await login(token.trim()));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login">
    <h1>Ground Control</h1>
    <form onSubmit=${submit}>
      <label for="token">Admin token</label>
      <input id="token" name="token" type="password" autocomplete="off" value=${token} onInput=${(e) => setToken(e.target.value)} required />
      <button type="submit" disabled=${busy}>Log in</button>
      <${ErrorLine} error=${error} />
    </form>
    <p class="hint">Use an admin token (<code>groundcontrol admin-token create</code>). It is exchanged for a session cookie and not kept by the page.</p>
  </main>`;
}

const COUNT_CARDS = [
  ['satellites', 'satellites', ''],
  ['online', 'online', 'online'],
  ['offline', 'offline', 'offline'],
  ['inSync', 'converged', 'in-sync'],
  ['outOfSync', 'syncing', 'out-of-sync'],
  ['failed', 'failed', 'failed'],
  ['unknown', 'never seen', 'unknown'],
];

const COLUMNS = [
  ['id', 'Satellite', (s) => s.id],
  ['site', 'Site', (s) => s.site ?? ''],
  ['groups', 'Groups', (s) => (s.groups ?? []).join(',')],
  ['presence', 'Presence', (s) => presence(s)],
  ['since', 'Since', (s) => s.presenceAt ?? ''],
  ['desired', 'Desired', (s) => s.desiredGeneration ?? -1],
  ['applied', 'Applied', (s) => s.appliedGeneration ?? -1],
  ['images', 'Images ok/pend/fail', (s) => (s.state ? s.state.images.failed * 1e6 + s.state.images.pending * 1e3 + s.state.images.ok : -1)],
  ['remaining', 'To download', (s) => remaining(s.state) ?? -1],
  ['disk', 'Disk used', (s) => s.state?.disk.bytes ?? -1],
  ['free', 'Disk free', (s) => s.state?.disk.freeBytes ?? -1],
  ['hits', 'Cache hits', (s) => s.state?.cacheHitRatio ?? -1],
  ['version', 'Version', (s) => s.state?.version ?? ''],
];

function Overview() {
  useTick(15_000);
  const [filter, setFilter] = useState({ site: '', group: '', state: '' });
  const [limit, setLimit] = useState(100);
  // Cursors of the pages before this one (the API pages by id: after=<last id>).
  const [cursors, setCursors] = useState([]);
  const after = cursors.at(-1);
  const [sort, setSort] = useState({ key: 'id', dir: 1 });
  const [groups] = usePoll(() => api('GET', '/api/v1/groups'), []);
  // Sorted by a column other than id: the server sorts every matching satellite and pages by offset.
  const sorted = sort.key !== 'id' || sort.dir < 0;
  const [doc, error] = usePoll(
    () => api('GET', '/api/v1/status' + query({ ...filter, limit, ...(sorted ? { sort: sort.key, dir: sort.dir < 0 ? 'desc' : 'asc', offset: after } : { after }) })),
    [filter.site, filter.group, filter.state, limit, after, sort.key, sort.dir],
    // Refetch this page when one of its rows or the fleet counts changed.
    (msg, d) => !d || mentions(msg, d.satellites.map((s) => s.id)) || countsDiffer(msg, d.counts),
  );
  const setF = (k) => (e) => {
    setFilter({ ...filter, [k]: e.target.value.trim() });
    setCursors([]);
  };
  const rows = doc ? doc.satellites : [];
  const next = sorted ? doc?.page.nextOffset : doc?.page.next;
  const th = ([key, label]) =>
    html`<th class=${sort.key === key ? 'sorted' : ''} data-sort=${key} onClick=${() => {
      setSort({ key, dir: sort.key === key ? -sort.dir : 1 });
      setCursors([]);
    }}>${label}${sort.key === key ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''}</th>`;
  return html`<section>
    <div class="cards">
      ${COUNT_CARDS.map(
        ([k, label, state]) => html`<button class=${'card ' + (state && filter.state === state ? 'active ' : '') + 'card-' + k} data-count=${k}
          onClick=${() => {
            setFilter({ ...filter, state: filter.state === state ? '' : state });
            setCursors([]);
          }}>
          <span class="n">${doc ? (doc.counts[k] ?? 0) : '…'}</span><span class="l">${label}</span>
        </button>`,
      )}
    </div>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label>Site <input name="site" value=${filter.site} onChange=${setF('site')} placeholder="any" /></label>
      <label>Group
        <select name="group" value=${filter.group} onChange=${setF('group')}>
          <option value="">any</option>
          ${(groups?.groups ?? []).map((g) => html`<option value=${g.name}>${g.name}</option>`)}
        </select>
      </label>
      <label>State
        <select name="state" value=${filter.state} onChange=${setF('state')}>
          <option value="">any</option>
          ${['online', 'offline', 'unknown', 'in-sync', 'out-of-sync', 'failed'].map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
      <label>Per page
        <select value=${limit} onChange=${(e) => { setLimit(Number(e.target.value)); setCursors([]); }}>
          ${[50, 100, 500, 1000].map((n) => html`<option value=${n}>${n}</option>`)}
        </select>
      </label>
      <span class="live">${doc ? 'live · updated ' + new Date(doc.at).toLocaleTimeString() : 'loading…'}</span>
    </form>
    <${ErrorLine} error=${error} />
    <table class="fleet">
      <thead><tr>${COLUMNS.map(th)}</tr></thead>
      <tbody>
        ${rows.map(
          (s) => html`<tr data-id=${s.id} class=${'row-' + convergence(s)}>
            <td><a href=${'#/satellite/' + s.id}>${s.id}</a><div class="sub">${s.name}</div></td>
            <td>${s.site ?? '-'}</td>
            <td>${(s.groups ?? []).join(', ') || '-'}</td>
            <td><span class=${'pill ' + presence(s).replace(' ', '-')}>${presence(s)}</span></td>
            <td>${ago(s.presenceAt)}</td>
            <td>${s.desiredGeneration ?? '-'}</td>
            <td>${s.appliedGeneration ?? '-'}</td>
            <td class="images">${s.state
              ? html`<span class="ok">${s.state.images.ok}</span>/<span class="pending">${s.state.images.pending}</span>/<span class=${s.state.images.failed > 0 ? 'failed' : ''}>${s.state.images.failed}</span>${s.failures?.[0]
                    ? html`<div class="sub failure" title=${s.failures[0].reason ?? ''}>${s.failures[0].image}: ${s.failures[0].code ?? s.failures[0].reason ?? 'failed'}</div>`
                    : null}`
              : '-'}</td>
            <td>${remaining(s.state) === null ? '-' : bytes(remaining(s.state))}</td>
            <td>${bytes(s.state?.disk.bytes)}</td>
            <td>${bytes(s.state?.disk.freeBytes)}</td>
            <td class="hits">${typeof s.state?.cacheHitRatio === 'number' ? Math.round(s.state.cacheHitRatio * 100) + '%' : '-'}</td>
            <td>${s.state?.version ?? '-'}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${doc && rows.length === 0 ? html`<p class="empty">No satellite matches.</p>` : null}
    <div class="pager">
      <button disabled=${cursors.length === 0} onClick=${() => setCursors(cursors.slice(0, -1))}>← Previous</button>
      <span>page ${cursors.length + 1}${doc?.page.total != null ? ' of ' + Math.max(1, Math.ceil(doc.page.total / limit)) : ''}</span>
      <button disabled=${next == null} onClick=${() => setCursors([...cursors, next])}>Next →</button>
    </div>
  </section>`;
}

function Progress({ img }) {
  const done = img.bytesDone ?? img.progress?.bytesDone;
  const total = img.bytesTotal ?? img.progress?.bytesTotal;
  if (img.status !== 'pending' || typeof done !== 'number' || typeof total !== 'number' || total <= 0) return null;
  return html`<progress max=${total} value=${done}>${Math.round((done / total) * 100)}%</progress>`;
}

function SatellitePage({ id }) {
  useTick(15_000);
  const mine = (msg) => mentions(msg, [id]);
  const [doc, error] = usePoll(() => api('GET', '/api/v1/satellites/' + encodeURIComponent(id)), [id], mine);
  const [log] = usePoll(() => api('GET', '/api/v1/events' + query({ satellite: id, limit: 50 })), [id], mine);
  if (error && !doc) return html`<section><${ErrorLine} error=${error} /></section>`;
  if (!doc) return html`<section>loading…</section>`;
  const s = doc.satellite;
  const st = s.status;
  const state = st?.state;
  const disk = state?.disk;
  const used = disk?.bytes ?? 0;
  const free = disk?.freeBytes;
  return html`<section class="satellite">
    <p><a href="#/">← Fleet</a></p>
    <h2>${s.name} <small>${s.id}</small></h2>
    <dl class="facts">
      <dt>Site</dt><dd>${s.site ?? '-'}</dd>
      <dt>Groups</dt><dd>${s.groups.join(', ') || '-'}</dd>
      <dt>Presence</dt><dd>${st?.presence ? (st.presence.online ? 'online' : 'offline') + ' since ' + ago(st.presence.receivedAt) : 'never seen'}</dd>
      <dt>Generation</dt><dd>desired ${s.desired?.generation ?? '-'}, applied ${state?.appliedGeneration ?? '-'}</dd>
      <dt>Version</dt><dd>${state?.version ?? s.version ?? '-'}</dd>
      <dt>Disk</dt><dd>${bytes(used)} in ${disk?.blobs ?? 0} blobs${typeof free === 'number' ? html` <meter min="0" max=${used + free} value=${used}></meter> ${bytes(free)} free` : ''}</dd>
      <dt>Upstream</dt><dd>${state ? (state.upstream.reachable === null ? 'not tried' : state.upstream.reachable ? 'reachable' : 'unreachable: ' + (state.upstream.lastError ?? '')) : '-'}</dd>
      <dt>Peers</dt><dd class="peers">${state?.peerUrl ? 'shares blobs with its site at ' + state.peerUrl : 'not sharing'}${state?.traffic ? html`; since start ${bytes(state.traffic.bytesFromPeers)} from peers, ${bytes(state.traffic.bytesToPeers)} to peers` : ''}</dd>
      <dt>Process</dt><dd class="process">${state?.process ? `${bytes(state.process.rssBytes)} RSS, up ${Math.round(state.process.uptimeSeconds / 60)} min, ${state.process.arch}${state.process.board ? ', ' + state.process.board : ''}` : '-'}</dd>
    </dl>
    <h3>Images</h3>
    ${state
      ? html`<table class="images-table">
          <thead><tr><th>Image</th><th>State</th><th>Digest</th><th>Last failure</th></tr></thead>
          <tbody>${state.images.map(
            (i) => html`<tr class=${'img-' + i.status}>
              <td>${i.repository}:${i.reference}</td>
              <td><span class=${'pill ' + i.status}>${i.status}</span> <${Progress} img=${i} /></td>
              <td class="mono">${i.digest ? i.digest.slice(0, 19) + '…' : '-'}</td>
              <td class="reason">${i.status === 'failed' ? [i.code, i.reason].filter(Boolean).join(': ') : ''}</td>
            </tr>`,
          )}</tbody>
        </table>`
      : html`<p>No state report yet.</p>`}
    <${TrafficCharts} id=${id} />
    <h3>Commands</h3>
    <${CommandBar} target=${{ satellite: s.id }} label="To this satellite" />
    <h3>Pulls outside the desired state</h3>
    <${StrayPulls} satellite=${s} />
    <h3>Recent events</h3>
    <${EventTable} events=${mergeEvents(log?.events ?? [], st?.events.last ?? [])} showSatellite=${false} />
  </section>`;
}

/** Ground Control's log lines for a satellite and the events it reported itself, newest first. */
function mergeEvents(logged, reported) {
  const mine = reported.map((e) => ({ at: e.at, kind: 'reported', action: e.code, actor: null, message: e.message, level: e.level }));
  return [...logged, ...mine].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, 50);
}

function EventTable({ events, showSatellite = true }) {
  if (events.length === 0) return html`<p class="empty">No events.</p>`;
  return html`<table class="events">
    <thead><tr><th>When</th><th>Kind</th><th>What</th>${showSatellite ? html`<th>Satellite</th>` : null}<th>Who</th><th>Details</th></tr></thead>
    <tbody>${events.map(
      (e) => html`<tr class=${'ev-' + e.kind + ' ' + (e.action ?? '').replace(/[^a-z.-]/gi, '')}>
        <td title=${e.at}>${ago(e.at)}</td><td>${e.kind}</td><td>${e.action}</td>
        ${showSatellite ? html`<td>${e.satelliteId ? html`<a href=${'#/satellite/' + e.satelliteId}>${e.satelliteId}</a>` : '-'}</td>` : null}
        <td>${e.actor ?? '-'}</td><td>${e.message}</td>
      </tr>`,
    )}</tbody>
  </table>`;
}

function EventsPage() {
  const [kind, setKind] = useState('');
  const [cursors, setCursors] = useState([]);
  const before = cursors.at(-1);
  const [doc, error] = usePoll(() => api('GET', '/api/v1/events' + query({ kind, before, limit: 100 })), [kind, before], (msg) => !before && msg.ids.length > 0);
  return html`<section>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label>Kind
        <select name="kind" value=${kind} onChange=${(e) => { setKind(e.target.value); setCursors([]); }}>
          <option value="">all</option><option value="audit">audit (changes)</option><option value="satellite">satellite transitions</option>
        </select>
      </label>
    </form>
    <${ErrorLine} error=${error} />
    <${EventTable} events=${doc?.events ?? []} />
    <div class="pager">
      <button disabled=${cursors.length === 0} onClick=${() => setCursors(cursors.slice(0, -1))}>← Newer</button>
      <button disabled=${!doc?.page.next} onClick=${() => setCursors([...cursors, doc.page.next])}>Older →</button>
    </div>
  </section>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  const [error, setError] = useState(null);
  const hash = useHash();
  useEffect(() => {
    const out = () => setSession(null);
    addEventListener('gc-unauthorized', out);
    return () => removeEventListener('gc-unauthorized', out);
  }, []);
  useEffect(() => {
    currentSession().then(setSession, (err) => {
      setError(err);
      setSession(null);
    });
  }, []);
  if (session === undefined) return html`<main>loading…</main>`;
  if (session === null) return html`<${Login} onLogin=${setSession} />`;
  const sat = /^#\/satellite\/([a-z0-9-]+)$/.exec(hash);
  const grp = /^#\/groups\/([a-z0-9][a-z0-9._-]{0,62})$/.exec(hash);
  const manage = hash === '#/groups' ? html`<${GroupsPage} />` : hash === '#/groups/new' ? html`<${GroupEditor} key="new" />` : grp ? html`<${GroupEditor} key=${grp[1]} name=${grp[1]} />` : hash === '#/tokens' ? html`<${TokensPage} />` : null;
  const view = sat ? html`<${SatellitePage} key=${sat[1]} id=${sat[1]} />` : manage ?? (hash === '#/events' ? html`<${EventsPage} />` : html`<${Overview} />`);
  const doLogout = async () => {
    try {
      await logout();
    } catch (err) {
      setError(err);
    }
    setSession(null);
  };
  return html`<div class="shell">
    <header>
      <h1>Ground Control</h1>
      <nav><a href="#/" class=${!sat && !manage && hash !== '#/events' ? 'here' : ''}>Fleet</a><a href="#/groups" class=${hash.startsWith('#/groups') ? 'here' : ''}>Groups</a><a href="#/tokens" class=${hash === '#/tokens' ? 'here' : ''}>Tokens</a><a href="#/events" class=${hash === '#/events' ? 'here' : ''}>Events</a></nav>
      <span class="who" title=${session.actor}>${session.actor}</span>
      <button class="logout" onClick=${doLogout}>Log out</button>
    </header>
    <${ErrorLine} error=${error} />
    <main>${view}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
