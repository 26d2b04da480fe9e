// Commands (sync now, gc, report) to one satellite, a site or a group, and their results as the
// satellites answer them (read from GET /api/v1/satellites/:id/commands/:cid).
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ApiErrorLine, html } from './kit.js';

/** The commands a satellite runs (COMMAND_NAMES in src/protocol/messages.ts). */
export const COMMANDS = [
  ['sync-now', 'Sync now'],
  ['gc', 'Garbage-collect'],
  ['report', 'Report now'],
];
/** Results followed per send; a bigger fan-out shows the count and these first ones. */
const FOLLOW = 10;
const FOLLOW_MS = 1500;

/** What a command's state reads as: queued while its satellite is offline (the broker keeps it). */
export function commandState(c) {
  if (c.status === 'ok' || c.status === 'failed') return c.status;
  return c.online === true ? 'sent' : 'queued';
}

function resultText(c) {
  if (c.error) return `${c.error.code}: ${c.error.message}`;
  if (c.result) {
    const shown = Object.entries(c.result).filter(([k, v]) => typeof v !== 'object' && !k.endsWith('At'));
    return shown.map(([k, v]) => `${k} ${v}`).join(', ').slice(0, 300);
  }
  return c.status === 'ok' || c.status === 'failed' ? '' : c.online === true ? 'waiting for the answer' : 'queued until the satellite connects';
}

/** Follows the given commands until each is answered (or the component goes away). */
function useFollow(initial) {
  const [cmds, setCmds] = useState(initial);
  useEffect(() => {
    setCmds(initial);
    if (!initial || initial.length === 0) return undefined;
    let stop = false;
    let timer;
    let current = initial;
    const tick = async () => {
      const open = current.filter((c) => c.status !== 'ok' && c.status !== 'failed');
      if (open.length === 0 || stop) return;
      const fresh = await Promise.all(
        open.map((c) =>
          api('GET', `/api/v1/satellites/${encodeURIComponent(c.satelliteId)}/commands/${encodeURIComponent(c.id)}`).then(
            (d) => ({ ...d.command, online: c.online }),
            () => c,
          ),
        ),
      );
      const byId = new Map(fresh.map((c) => [c.id, c]));
      current = current.map((c) => byId.get(c.id) ?? c);
      if (!stop) setCmds(current);
      if (!stop) timer = setTimeout(tick, FOLLOW_MS);
    };
    timer = setTimeout(tick, FOLLOW_MS);
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [initial]);
  return cmds;
}

/** Buttons for each command to `target` ({satellite} | {site} | {group}) and the results. */
export function CommandBar({ target, label }) {
  const [sent, setSent] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const cmds = useFollow(sent?.commands ?? null);
  const send = async (name) => {
    setBusy(true);
    setError(null);
    try {
      const out = await api('POST', '/api/v1/commands', { name, ...target });
      setSent({ name, count: out.count, commands: out.commands.slice(0, FOLLOW) });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="commands">
    <span class="label">${label}</span>
    ${COMMANDS.map(([name, text]) => html`<button type="button" data-command=${name} disabled=${busy} onClick=${() => send(name)}>${text}</button>`)}
    <${ApiErrorLine} error=${error} />
    ${sent
      ? html`<div class="command-results">
          <p class="sub">${sent.name} sent to ${sent.count} satellite${sent.count === 1 ? '' : 's'}${sent.count > FOLLOW ? ` (first ${FOLLOW} shown)` : ''}</p>
          ${sent.count === 0 ? null : html`<table class="commands-table">
            <thead><tr><th>Satellite</th><th>Command</th><th>State</th><th>Result</th></tr></thead>
            <tbody>${(cmds ?? []).map(
              (c) => html`<tr data-command-id=${c.id} class=${'cmd-' + commandState(c)}>
                <td><a href=${'#/satellite/' + c.satelliteId}>${c.satelliteId}</a></td><td>${c.name}</td>
                <td><span class=${'pill ' + commandState(c)}>${commandState(c)}</span></td><td class="mono">${resultText(c)}</td>
              </tr>`,
            )}</tbody>
          </table>`}
        </div>`
      : null}
  </div>`;
}
