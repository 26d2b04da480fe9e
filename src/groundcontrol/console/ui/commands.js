// Commands (sync now, gc, verify, report) to one satellite, a site or a group, and their results
// as the satellites answer them (read from GET /api/v1/satellites/:id/commands/:cid when the live
// feed names the satellite: an answer marks it changed).
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { ApiErrorLine, html } from './kit.js';
import { liveStatus, mentions, recentMessages, subscribe } from './live.js';

/**
 * The command buttons: [key, label, command name, args, confirmation] (COMMAND_NAMES in
 * src/protocol/messages.ts). Verify and repair moves bad blobs to quarantine: asked first.
 */
export const COMMANDS = [
  ['sync-now', 'Sync now', 'sync-now'],
  ['gc', 'Garbage-collect', 'gc'],
  ['verify', 'Verify', 'verify'],
  ['verify-repair', 'Verify and repair', 'verify', { repair: true }, 'Re-hash every stored blob and quarantine the corrupt or missing ones? The images they break are downloaded again.'],
  ['report', 'Report now', 'report'],
];
/** Results followed per send; a bigger fan-out shows the count and these first ones. */
const FOLLOW = 10;
/** Only while the live stream is down: a slow poll so answers still show. */
const FALLBACK_MS = 10_000;

/** What a command's state reads as: queued while its satellite is offline (the broker keeps it). */
export function commandState(c) {
  if (c.status === 'ok' || c.status === 'failed') return c.status;
  return c.online === true ? 'sent' : 'queued';
}

function resultText(c) {
  if (c.error) return `${c.error.code}: ${c.error.message}`;
  if (c.name === 'verify' && c.result && typeof c.result.blobsChecked === 'number') {
    const r = c.result;
    const images = r.images && r.images.length > 0 ? ` (${r.images.join(', ')})` : '';
    return `${r.blobsChecked} blobs checked, ${r.corrupt} corrupt, ${r.missing} missing, ${r.imagesAffected} images affected${images}, ${r.repaired} repaired`.slice(0, 400);
  }
  if (c.result) {
    const shown = Object.entries(c.result).filter(([k, v]) => typeof v !== 'object' && !k.endsWith('At'));
    return shown.map(([k, v]) => `${k} ${v}`).join(', ').slice(0, 300);
  }
  return c.status === 'ok' || c.status === 'failed' ? '' : c.online === true ? 'waiting for the answer' : 'queued until the satellite connects';
}

/**
 * Follows the given commands until each is answered (or the component goes away): refetches them
 * when the live feed names one of their satellites (a result marks its satellite changed), and
 * polls slowly only while the stream is down.
 */
function useFollow(initial, since) {
  const [cmds, setCmds] = useState(initial);
  useEffect(() => {
    setCmds(initial);
    if (!initial || initial.length === 0) return undefined;
    let stop = false;
    let timer;
    let current = initial;
    let busy = false;
    let again = false;
    const open = () => current.filter((c) => c.status !== 'ok' && c.status !== 'failed');
    const refresh = async () => {
      if (busy) {
        again = true;
        return;
      }
      const pending = open();
      if (pending.length === 0 || stop) return;
      busy = true;
      const fresh = await Promise.all(
        pending.map((c) =>
          api('GET', `/api/v1/satellites/${encodeURIComponent(c.satelliteId)}/commands/${encodeURIComponent(c.id)}`).then(
            (d) => ({ ...d.command, online: c.online }),
            () => c,
          ),
        ),
      );
      busy = false;
      const byId = new Map(fresh.map((c) => [c.id, c]));
      current = current.map((c) => byId.get(c.id) ?? c);
      if (stop) return;
      setCmds(current);
      if (again) {
        again = false;
        refresh();
      }
    };
    const relevant = (msg) => msg.more || mentions(msg, open().map((c) => c.satelliteId));
    const off = subscribe((msg) => {
      if (relevant(msg)) refresh();
    });
    // A quick answer may have been announced between the send and this subscription.
    if (recentMessages().some((m) => m.at >= since && relevant(m.msg))) refresh();
    const fallback = () => {
      timer = setTimeout(() => {
        if (!liveStatus.connected) refresh();
        if (!stop && open().length > 0) fallback();
      }, FALLBACK_MS);
    };
    fallback();
    return () => {
      stop = true;
      off();
      clearTimeout(timer);
    };
  }, [initial, since]);
  return cmds;
}

/** Buttons for each command to `target` ({satellite} | {site} | {group}) and the results. */
export function CommandBar({ target, label }) {
  const [sent, setSent] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const cmds = useFollow(sent?.commands ?? null, sent?.since ?? 0);
  const send = async (key, label, name, args, confirmText) => {
    if (confirmText && !window.confirm(confirmText)) return;
    setBusy(true);
    setError(null);
    const startedAt = performance.now();
    try {
      const out = await api('POST', '/api/v1/commands', { name, ...(args ? { args } : {}), ...target });
      setSent({ name: args && args.repair ? `${name} (repair)` : name, count: out.count, commands: out.commands.slice(0, FOLLOW), since: startedAt });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="commands">
    <span class="label">${label}</span>
    ${COMMANDS.map(
      ([key, text, name, args, confirmText]) =>
        html`<button type="button" data-command=${key} disabled=${busy} onClick=${() => send(key, text, name, args, confirmText)}>${text}</button>`,
    )}
    <${ApiErrorLine} error=${error} />
    ${sent
      ? html`<div class="command-results">
          <p class="sub">${sent.name} sent to ${sent.count} satellite${sent.count === 1 ? '' : 's'}${sent.count > FOLLOW ? ` (first ${FOLLOW} shown)` : ''}</p>
          ${sent.count === 0 ? null : html`<table class="commands-table">
            <thead><tr><th>Satellite</th><th>Command</th><th>State</th><th>Result</th></tr></thead>
            <tbody>${(cmds ?? []).map(
              (c) => html`<tr data-command-id=${c.id} class=${'cmd-' + commandState(c)}>
                <td><a href=${'#/satellite/' + c.satelliteId}>${c.satelliteId}</a></td><td>${c.name}${c.args && c.args.repair ? ' (repair)' : ''}</td>
                <td><span class=${'pill ' + commandState(c)}>${commandState(c)}</span></td><td class="mono">${resultText(c)}</td>
              </tr>`,
            )}</tbody>
          </table>`}
        </div>`
      : null}
  </div>`;
}
