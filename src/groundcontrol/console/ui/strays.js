// Stray pulls: images a satellite's clients pulled that are not in its desired state (its state
// report's strayPulls, busiest first), each with a one-click "add to group".
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ApiErrorLine, html } from './kit.js';

/** The group's images with repository:reference added (a tag, or a digest when it is one). */
export function withImage(images, repository, reference) {
  const key = reference.startsWith('sha256:') ? 'digests' : 'tags';
  const found = images.find((i) => i.repository === repository);
  if (!found) return [...images, { repository, [key]: [reference] }];
  if ((found[key] ?? []).includes(reference)) return images;
  return images.map((i) => (i === found ? { ...i, [key]: [...(i[key] ?? []), reference] } : i));
}

export function StrayPulls({ satellite }) {
  const strays = satellite.status?.state?.strayPulls ?? [];
  const [groups, setGroups] = useState([]);
  const [choice, setChoice] = useState('');
  const [error, setError] = useState(null);
  const [done, setDone] = useState({});
  useEffect(() => {
    api('GET', '/api/v1/groups').then((d) => {
      setGroups(d.groups.map((g) => g.name));
      setChoice((c) => c || satellite.groups[0] || d.groups[0]?.name || '');
    }, setError);
  }, [satellite.id]);
  if (strays.length === 0) return html`<p class="empty">No pulls of images outside the desired state.</p>`;
  const add = async (s) => {
    setError(null);
    try {
      const { group } = await api('GET', '/api/v1/groups/' + encodeURIComponent(choice));
      const images = withImage(group.images, s.repository, s.reference);
      const body = { images, ...(group.platforms ? { platforms: group.platforms } : {}), ...(group.trust ? { trust: group.trust } : {}) };
      const out = await api('PUT', '/api/v1/groups/' + encodeURIComponent(choice), body);
      setDone({ ...done, [s.repository + ':' + s.reference]: `added to ${choice} (${out.published.length} satellite(s))` });
    } catch (err) {
      setError(err);
    }
  };
  return html`<div class="strays">
    <label class="sub">Add to group
      <select name="stray-group" value=${choice} onChange=${(e) => setChoice(e.target.value)}>${groups.map((g) => html`<option value=${g}>${g}</option>`)}</select>
    </label>
    <table class="strays-table">
      <thead><tr><th>Image</th><th>Pulls</th><th>Not found upstream</th><th></th></tr></thead>
      <tbody>${strays.map((s) => {
        const k = s.repository + ':' + s.reference;
        return html`<tr data-stray=${k}><td>${s.repository}${s.reference.startsWith('sha256:') ? '@' : ':'}${s.reference}</td><td>${s.pulls}</td><td>${s.notFound}</td>
          <td>${done[k] ? html`<span class="saved">${done[k]}</span>` : html`<button type="button" class="add-to-group" disabled=${!choice} onClick=${() => add(s)}>Add to group</button>`}</td></tr>`;
      })}</tbody>
    </table>
    <${ApiErrorLine} error=${error} />
  </div>`;
}
