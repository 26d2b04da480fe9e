// Registration tokens: create one (shown once, with the satellite's install command line), list
// and revoke the unused ones (the list has no secrets).
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ApiErrorLine, html } from './kit.js';

/** The installer's command line (README "Install on a device"), for this Ground Control. */
export function installCommand(token, version, arch) {
  return `sh install.sh --ground-control ${location.origin} --token ${token} harbor-satellite-${version}-linux-${arch}.tar.gz`;
}

function CopyButton({ text }) {
  const [done, setDone] = useState('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone('copied');
    } catch {
      setDone('select the line and copy it');
    }
  };
  return html`<button type="button" class="copy" onClick=${copy}>Copy</button> <span class="sub copied">${done}</span>`;
}

export function TokensPage() {
  const [site, setSite] = useState('');
  const [ttlHours, setTtlHours] = useState('24');
  const [arch, setArch] = useState('arm64');
  const [created, setCreated] = useState(null);
  const [tokens, setTokens] = useState(null);
  const [error, setError] = useState(null);
  const refresh = () => api('GET', '/api/v1/tokens').then((d) => setTokens(d.tokens), setError);
  useEffect(() => {
    refresh();
  }, []);
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const hours = Number(ttlHours);
      setCreated(await api('POST', '/api/v1/tokens', { ...(site ? { site } : {}), ...(ttlHours ? { ttlSeconds: Math.round(hours * 3600) } : {}) }));
      refresh();
    } catch (err) {
      setError(err);
    }
  };
  const revoke = async (id) => {
    try {
      await api('DELETE', '/api/v1/tokens/' + id);
      refresh();
    } catch (err) {
      setError(err);
    }
  };
  return html`<section class="tokens">
    <h2>Registration tokens</h2>
    <p class="sub">A token registers one new satellite, once. It is shown here once; Ground Control keeps only its hash.</p>
    <form class="filters token-form" onSubmit=${create}>
      <label>Site <input name="site" value=${site} onInput=${(e) => setSite(e.target.value.trim())} placeholder="none" /></label>
      <label>Valid for (hours) <input name="ttl" type="number" min="0.01" step="any" value=${ttlHours} onInput=${(e) => setTtlHours(e.target.value)} /></label>
      <button type="submit" class="primary">Create token</button>
    </form>
    <${ApiErrorLine} error=${error} />
    ${created
      ? html`<div class="new-token" role="status">
          <p>Token <code>${created.tokenId}</code>${created.site ? ' for site ' + created.site : ''}, valid until ${created.expiresAt}. <strong>Copy it now: it is not shown again.</strong></p>
          <p><code class="secret">${created.token}</code> <${CopyButton} text=${created.token} /></p>
          <p>On the device, as root, with the release tarball and install.sh beside it
            <select name="arch" value=${arch} onChange=${(e) => setArch(e.target.value)}><option value="arm64">arm64</option><option value="x64">x64</option></select>:</p>
          <pre class="install-command">${installCommand(created.token, created.version, arch)}</pre>
          <${CopyButton} text=${installCommand(created.token, created.version, arch)} />
          <p><button type="button" class="dismiss" onClick=${() => setCreated(null)}>Done</button></p>
        </div>`
      : null}
    <h3>Tokens</h3>
    ${tokens && tokens.length === 0 ? html`<p class="empty">No tokens.</p>` : null}
    ${tokens && tokens.length > 0
      ? html`<table class="tokens-table">
          <thead><tr><th>Id</th><th>Satellite</th><th>Site</th><th>Expires</th><th>Used</th><th></th></tr></thead>
          <tbody>${tokens.map(
            (t) => html`<tr data-token=${t.id}>
              <td class="mono">${t.id}</td><td>${t.satelliteId ?? '(new)'}</td><td>${t.site ?? '-'}</td><td>${t.expiresAt}</td><td>${t.usedAt ?? '-'}</td>
              <td>${t.usedAt ? null : html`<button type="button" onClick=${() => revoke(t.id)}>Revoke</button>`}</td>
            </tr>`,
          )}</tbody>
        </table>`
      : null}
  </section>`;
}
