// Groups and assignments: list, create, edit (images with tags, digests, platforms; signature
// policy), delete; assign to sites and satellites; the satellites each change reaches.
// Validation is the API's: its error message is shown as it comes (no second rule set here).
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import { CommandBar } from './commands.js';
import { ApiErrorLine, html, ReachLine, words } from './kit.js';

const list = (a) => (a ?? []).join(', ');

export function GroupsPage() {
  const [doc, setDoc] = useState(null);
  const [error, setError] = useState(null);
  const [site, setSite] = useState('');
  useEffect(() => {
    api('GET', '/api/v1/groups').then(setDoc, setError);
  }, []);
  return html`<section class="groups">
    <div class="toolbar"><h2>Groups</h2><a class="button" href="#/groups/new">New group</a></div>
    <${ApiErrorLine} error=${error} />
    ${doc && doc.groups.length === 0 ? html`<p class="empty">No groups yet.</p>` : null}
    ${doc && doc.groups.length > 0
      ? html`<table class="groups-table">
          <thead><tr><th>Group</th><th>Images</th><th>Sites</th><th>Satellites</th><th>Updated</th></tr></thead>
          <tbody>${doc.groups.map(
            (g) => html`<tr data-group=${g.name}>
              <td><a href=${'#/groups/' + g.name}>${g.name}</a></td>
              <td>${g.images.map((i) => i.repository + (i.tags?.length ? ':' + i.tags.join(',') : '')).join('; ')}</td>
              <td>${list(g.sites) || '-'}</td><td>${list(g.satellites) || '-'}</td><td>${g.updatedAt}</td>
            </tr>`,
          )}</tbody>
        </table>`
      : null}
    <h3>Commands to a site</h3>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label>Site <input name="command-site" value=${site} onInput=${(e) => setSite(e.target.value.trim())} placeholder="site" /></label>
    </form>
    ${site ? html`<${CommandBar} target=${{ site }} label=${'To every satellite at ' + site} />` : null}
  </section>`;
}

/** Form rows <-> the API's DesiredImage items. */
function toRows(images) {
  return images.map((i) => ({ repository: i.repository, tags: list(i.tags), digests: list(i.digests), platforms: list(i.platforms) }));
}
function fromRows(rows) {
  return rows
    .filter((r) => r.repository.trim() || r.tags.trim() || r.digests.trim())
    .map((r) => {
      const img = { repository: r.repository.trim() };
      for (const k of ['tags', 'digests', 'platforms']) if (words(r[k]).length) img[k] = words(r[k]);
      return img;
    });
}
const EMPTY_ROW = { repository: '', tags: '', digests: '', platforms: '' };

export function GroupEditor({ name }) {
  const isNew = name === undefined;
  const [group, setGroup] = useState(null);
  const [form, setForm] = useState({ name: '', rows: [{ ...EMPTY_ROW }], platforms: '', trust: '' });
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(null);
  const [reach, setReach] = useState(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const load = async () => {
    const g = (await api('GET', '/api/v1/groups/' + encodeURIComponent(name))).group;
    setGroup(g);
    setForm({ name: g.name, rows: g.images.length ? toRows(g.images) : [{ ...EMPTY_ROW }], platforms: list(g.platforms), trust: g.trust ? JSON.stringify(g.trust, null, 2) : '' });
    setReach(await api('GET', `/api/v1/groups/${encodeURIComponent(name)}/reach`));
  };
  useEffect(() => {
    if (!isNew) load().catch(setError);
  }, [name]);
  const setRow = (i, k) => (e) => setForm({ ...form, rows: form.rows.map((r, j) => (j === i ? { ...r, [k]: e.target.value } : r)) });
  const save = async (e) => {
    e.preventDefault();
    setError(null);
    setSaved(null);
    let trust;
    if (form.trust.trim()) {
      try {
        trust = JSON.parse(form.trust);
      } catch (err) {
        setError({ code: 'BODY_INVALID', message: 'signature policy is not valid JSON: ' + err.message });
        return;
      }
    }
    const target = isNew ? form.name.trim() : name;
    const body = { images: fromRows(form.rows), ...(words(form.platforms).length ? { platforms: words(form.platforms) } : {}), ...(trust ? { trust } : {}) };
    try {
      const out = await api('PUT', '/api/v1/groups/' + encodeURIComponent(target), body);
      setSaved(out);
      if (isNew) location.hash = '#/groups/' + target;
      else await load();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async () => {
    if (!confirmDelete) return setConfirmDelete(true);
    try {
      await api('DELETE', '/api/v1/groups/' + encodeURIComponent(name));
      location.hash = '#/groups';
    } catch (err) {
      setError(err);
    }
  };
  return html`<section class="group-editor">
    <p><a href="#/groups">← Groups</a></p>
    <h2>${isNew ? 'New group' : 'Group ' + name}</h2>
    <form class="group-form" onSubmit=${save}>
      ${isNew ? html`<label>Name <input name="name" value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} placeholder="edge" required /></label>` : null}
      <table class="image-rows">
        <thead><tr><th>Repository</th><th>Tags</th><th>Digests</th><th>Platforms (this image)</th><th></th></tr></thead>
        <tbody>${form.rows.map(
          (r, i) => html`<tr>
            <td><input name=${'repository-' + i} value=${r.repository} onInput=${setRow(i, 'repository')} placeholder="library/nginx" /></td>
            <td><input name=${'tags-' + i} value=${r.tags} onInput=${setRow(i, 'tags')} placeholder="1.27, latest" /></td>
            <td><input name=${'digests-' + i} value=${r.digests} onInput=${setRow(i, 'digests')} placeholder="sha256:…" /></td>
            <td><input name=${'platforms-' + i} value=${r.platforms} onInput=${setRow(i, 'platforms')} placeholder="linux/arm64" /></td>
            <td><button type="button" title="Remove this image" onClick=${() => setForm({ ...form, rows: form.rows.filter((_, j) => j !== i) })}>✕</button></td>
          </tr>`,
        )}</tbody>
      </table>
      <p><button type="button" class="add-image" onClick=${() => setForm({ ...form, rows: [...form.rows, { ...EMPTY_ROW }] })}>+ Image</button></p>
      <label>Platforms (every image) <input name="platforms" value=${form.platforms} onInput=${(e) => setForm({ ...form, platforms: e.target.value })} placeholder="linux/amd64, linux/arm64" /></label>
      <label class="block">Signature policy (JSON, optional)
        <textarea name="trust" rows="3" value=${form.trust} onInput=${(e) => setForm({ ...form, trust: e.target.value })} placeholder='{"mode": "enforce", "keys": ["-----BEGIN PUBLIC KEY-----…"]}'></textarea>
      </label>
      ${isNew ? html`<p class="sub">A new group reaches no satellite until it is assigned.</p>` : html`<${ReachLine} reach=${reach} verb="reaches" />`}
      <p class="actions">
        <button type="submit" class="primary">Save</button>
        ${isNew ? null : html`<button type="button" class="danger" onClick=${remove}>${confirmDelete ? 'Really delete ' + name + '?' : 'Delete'}</button>`}
      </p>
      <${ApiErrorLine} error=${error} />
      ${saved ? html`<p class="saved">Saved: ${saved.changed ? `new desired state for ${saved.published.length} satellite(s)` : 'unchanged'}${saved.notPublished ? ' — ' + saved.notPublished : ''}</p>` : null}
    </form>
    ${group ? html`<${Assignments} group=${group} onChange=${() => load().catch(setError)} />` : null}
    ${group ? html`<h3>Commands</h3><${CommandBar} target=${{ group: group.name }} label=${'To every satellite of ' + group.name} />` : null}
  </section>`;
}

function Assignments({ group, onChange }) {
  const [kind, setKind] = useState('site');
  const [value, setValue] = useState('');
  const [reach, setReach] = useState(null);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  // The preview follows the input: the satellites this assignment would give the group.
  useEffect(() => {
    setReach(null);
    if (!value) return undefined;
    const timer = setTimeout(() => {
      api('GET', `/api/v1/groups/${encodeURIComponent(group.name)}/reach` + query({ [kind]: value })).then(setReach, setError);
    }, 250);
    return () => clearTimeout(timer);
  }, [kind, value, group.name]);
  const act = async (method, target) => {
    setError(null);
    try {
      const out =
        method === 'POST'
          ? await api('POST', '/api/v1/assignments', { group: group.name, ...target })
          : await api('DELETE', '/api/v1/assignments' + query({ group: group.name, ...target }));
      setDone(`${method === 'POST' ? 'Assigned' : 'Unassigned'}: new desired state for ${out.published.length} satellite(s)`);
      setValue('');
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  const row = (k, v) => html`<tr data-assignment=${k + ':' + v}><td>${k}</td><td>${k === 'satellite' ? html`<a href=${'#/satellite/' + v}>${v}</a>` : v}</td>
    <td><button type="button" onClick=${() => act('DELETE', { [k]: v })}>Unassign</button></td></tr>`;
  return html`<div class="assignments">
    <h3>Assignments</h3>
    ${group.sites.length + group.satellites.length === 0
      ? html`<p class="empty">Not assigned: no satellite gets this group.</p>`
      : html`<table><thead><tr><th>To</th><th>Name</th><th></th></tr></thead>
          <tbody>${group.sites.map((s) => row('site', s))}${group.satellites.map((s) => row('satellite', s))}</tbody></table>`}
    <form class="filters assign-form" onSubmit=${(e) => {
      e.preventDefault();
      if (value) act('POST', { [kind]: value });
    }}>
      <label>Assign to
        <select name="assign-kind" value=${kind} onChange=${(e) => setKind(e.target.value)}><option value="site">site</option><option value="satellite">satellite</option></select>
      </label>
      <input name="assign-value" value=${value} onInput=${(e) => setValue(e.target.value.trim())} placeholder=${kind === 'site' ? 'site name' : 'satellite id'} />
      <button type="submit" disabled=${!value}>Assign</button>
    </form>
    ${value ? html`<${ReachLine} reach=${reach} verb="would give the group to" />` : null}
    <${ApiErrorLine} error=${error} />
    ${done ? html`<p class="saved">${done}</p>` : null}
  </div>`;
}
