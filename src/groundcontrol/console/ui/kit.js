// Shared pieces of the management pages (groups, tokens, commands, stray pulls).
import { h } from 'preact';
import htm from 'htm';
import './manage.css';

export const html = htm.bind(h);

/** The API's own error (code and message), as the CLI prints it. */
export function ApiErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.code ? error.code + ': ' : ''}${error.message}</p>`;
}

/** "3 satellites: a, b, c, …" from a reach answer {count, first}. */
export function ReachLine({ reach, verb = 'reaches' }) {
  if (!reach) return null;
  const names = reach.first.map((s) => s.name).join(', ');
  const more = reach.count > reach.first.length ? ', …' : '';
  return html`<p class="reach" data-count=${reach.count}>This change ${verb} <strong>${reach.count}</strong> satellite${reach.count === 1 ? '' : 's'}${reach.count ? ': ' + names + more : ''}</p>`;
}

/** Splits "a, b  c" into ["a","b","c"]. */
export function words(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}
