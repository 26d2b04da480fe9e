// Traffic charts of the satellite page (uPlot, bundled; no CDN): the series Ground Control keeps
// from the satellite's reports (GET /api/v1/satellites/:id/series), as rates per bucket.
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './charts.css';
import { api, query } from './api.js';
import { bytes } from './format.js';
import { useLive } from './live.js';

const html = htm.bind(h);

const RANGES = ['6h', '24h', '48h', '7d', '30d'];
/** metric of the series API, title, stroke, fill */
const CHARTS = [
  ['bytesFromUpstream', 'WAN (from upstream)', '#2b59c3', 'rgba(43,89,195,0.12)'],
  ['bytesServed', 'Served to devices', '#12805c', 'rgba(18,128,92,0.12)'],
  ['bytesSavedByCache', 'WAN saved (served from cache)', '#b54708', 'rgba(181,71,8,0.12)'],
];

const rate = (v) => (v === null || v === undefined ? '-' : bytes(Math.round(v)) + '/s');

/** One uPlot line chart of bytes/s; redrawn when its data changes. */
function Chart({ metric, title, stroke, fill, doc }) {
  const box = useRef(null);
  const plot = useRef(null);
  const values = doc.values[metric] ?? [];
  const points = values.filter((v) => v > 0).length;
  const total = values.reduce((a, b) => a + b, 0);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const data = [doc.t, values.map((v) => v / doc.bucketSeconds)];
    const width = Math.max(280, Math.min(el.clientWidth || 420, 640));
    const opts = {
      width,
      height: 160,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [{ stroke: '#667085' }, { stroke: '#667085', size: 86, values: (_u, ticks) => ticks.map(rate) }],
      series: [{}, { label: title, stroke, fill, width: 1.5, points: { show: false } }],
    };
    plot.current?.destroy();
    plot.current = new uPlot(opts, data, el);
    return undefined;
  }, [doc]);
  useEffect(() => () => plot.current?.destroy(), []);
  return html`<figure class="chart" data-metric=${metric} data-points=${points}>
    <figcaption>${title} <span class="sub">${bytes(total)} in ${doc.range}</span></figcaption>
    <div ref=${box} class="plot"></div>
  </figure>`;
}

/** The satellite page's traffic section: a range picker and one chart per metric. */
export function TrafficCharts({ id }) {
  const [range, setRange] = useState('24h');
  const [doc, error] = useLive(
    () => api('GET', '/api/v1/satellites/' + encodeURIComponent(id) + '/series' + query({ range })),
    [id, range],
    (msg) => (msg.ids ?? []).includes(id),
  );
  return html`<section class="traffic">
    <h3>Traffic
      <span class="ranges">${RANGES.map(
        (r) => html`<button class=${r === range ? 'here' : ''} data-range=${r} onClick=${() => setRange(r)}>${r}</button>`,
      )}</span>
    </h3>
    ${error ? html`<p class="error" role="alert">${error.code}: ${error.message}</p>` : null}
    ${doc
      ? html`<div class="charts">${CHARTS.map(([metric, title, stroke, fill]) => html`<${Chart} key=${metric} metric=${metric} title=${title} stroke=${stroke} fill=${fill} doc=${doc} />`)}</div>
          <p class="sub">Rates per ${doc.bucketSeconds === 300 ? 'five minutes' : 'hour'}, from the counters in the satellite's reports (reset when it restarts).</p>`
      : html`<p>loading…</p>`}
  </section>`;
}
