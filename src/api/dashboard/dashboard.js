// The live dashboard: polls the API every 2 s with the bearer token given in the URL fragment (#token=…), which
// never reaches the server's logs. Text from replies is inserted as text, never as HTML.
(() => {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get('token') || sessionStorage.getItem('ava-token') || prompt('API token (read scope)');
  if (token) sessionStorage.setItem('ava-token', token);
  const headers = { authorization: `Bearer ${token}` };
  const WINDOW = 150; // samples kept: 5 minutes at one every 2 s
  const series = { t: [], waiting: [], active: [], throughput: [], latency: [] };
  const history = [];

  const el = (id) => document.getElementById(id);
  const chart = (id, title, names) =>
    new uPlot(
      {
        title,
        width: el(id).clientWidth - 16,
        height: 180,
        series: [{}, ...names.map((n, i) => ({ label: n, stroke: ['#2563eb', '#f59e0b', '#10b981'][i], width: 2 }))],
        axes: [{}, {}],
      },
      [[], ...names.map(() => [])],
      el(id),
    );
  const charts = {
    queue: chart('chart-queue', 'Queue depth', ['waiting', 'active']),
    throughput: chart('chart-throughput', 'Replies per second', ['replies/s']),
    latency: chart('chart-latency', 'p50 latency (ms)', ['p50']),
  };

  const row = (cells) => {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c.text ?? '';
      if (c.cls) td.className = c.cls;
      tr.appendChild(td);
    }
    return tr;
  };

  async function get(path) {
    const res = await fetch(path, { headers });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${(await res.json().catch(() => ({}))).error?.message ?? ''}`);
    return res.json();
  }

  async function tick() {
    try {
      const [stats, latest] = await Promise.all([get('/v1/stats'), get('/v1/replies?order=desc&limit=15')]);
      const now = Date.now() / 1000;
      const done = stats.replies.replied + stats.replies.failed;
      history.push({ t: now, done });
      while (history.length > 1 && now - history[0].t > 10) history.shift();
      const rate = history.length > 1 ? (done - history[0].done) / (now - history[0].t) : 0;
      el('waiting').textContent = stats.queue.waiting + stats.queue.delayed;
      el('active').textContent = stats.queue.active;
      el('failed').textContent = stats.queue.failed;
      el('workers').textContent = stats.workers.length;
      el('throughput').textContent = rate.toFixed(1);
      el('latency').textContent = stats.latencyMs.p50 ?? '–';
      el('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
      for (const [k, v] of [
        ['t', now],
        ['waiting', stats.queue.waiting + stats.queue.delayed],
        ['active', stats.queue.active],
        ['throughput', rate],
        ['latency', stats.latencyMs.p50 ?? 0],
      ]) {
        series[k].push(v);
        if (series[k].length > WINDOW) series[k].shift();
      }
      charts.queue.setData([series.t, series.waiting, series.active]);
      charts.throughput.setData([series.t, series.throughput]);
      charts.latency.setData([series.t, series.latency]);
      el('worker-rows').replaceChildren(
        ...stats.workers.map((w) =>
          row([
            { text: w.id.slice(0, 8) },
            { text: `${w.host} / ${w.pid}` },
            { text: `${w.model.id}@${w.model.revision}` },
            { text: String(w.lastBatchSize) },
            { text: String(w.tokensPerSecond) },
            { text: `${Math.round((Date.now() - w.lastSeen) / 1000)} s ago` },
          ]),
        ),
      );
      el('reply-rows').replaceChildren(
        ...latest.items.map((r) =>
          row([
            { text: new Date(r.createdAt).toLocaleTimeString() },
            { text: r.messageId },
            { text: r.conversationId ?? '' },
            { text: r.intent ?? '' },
            { text: r.status, cls: r.status },
            { text: r.status === 'replied' ? r.text : `${r.error?.code}: ${r.error?.message}`, cls: 'text' },
          ]),
        ),
      );
      el('error').textContent = '';
    } catch (err) {
      el('error').textContent = String(err.message ?? err);
    }
  }
  tick();
  setInterval(tick, 2000);
})();
