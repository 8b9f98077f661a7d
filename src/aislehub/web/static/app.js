// aislehub operator UI: live device charts and the metrics explorer (uPlot), no framework.
"use strict";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
  "#ca8a04", "#db2777", "#4b5563", "#65a30d"];

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

function chartWidth(el) {
  return Math.max(320, Math.floor(el.getBoundingClientRect().width || 800));
}

// -- live telemetry on a device page (server-sent events) ----------------------------------
function startLive(root) {
  const charts = {};
  const source = new EventSource(root.dataset.url);
  source.onmessage = (event) => {
    const points = JSON.parse(event.data);
    for (const p of points) {
      let c = charts[p.name];
      if (!c) c = charts[p.name] = newLiveChart(root, p.name);
      c.t.push(p.t / 1000);
      c.v.push(p.v);
      if (c.t.length > 2000) { c.t.shift(); c.v.shift(); }
      c.latest.textContent = String(p.v);
      c.dirty = true;
    }
    for (const c of Object.values(charts)) {
      if (c.dirty) { c.plot.setData([c.t, c.v]); c.dirty = false; }
    }
    root.dataset.received = String(Number(root.dataset.received || 0) + points.length);
  };
}

function newLiveChart(root, name) {
  const box = document.createElement("div");
  box.className = "live-chart";
  box.dataset.field = name;
  const head = document.createElement("h3");
  head.textContent = name + " ";
  const latest = document.createElement("span");
  latest.className = "latest";
  latest.dataset.testid = "latest-" + name;
  head.appendChild(latest);
  box.appendChild(head);
  root.querySelector(".live-empty")?.remove();
  root.appendChild(box);
  const opts = {
    width: chartWidth(root) - 16, height: 180,
    series: [{}, { label: name, stroke: PALETTE[0], width: 1.5 }],
    axes: [{}, { size: 60 }],
  };
  return { t: [], v: [], latest, dirty: false, plot: new uPlot(opts, [[], []], box) };
}

// -- metrics explorer -----------------------------------------------------------------------
const Explorer = {
  plot: null,
  last: null,

  init(root) {
    this.root = root;
    this.form = root.querySelector("#explorer-form");
    const params = new URLSearchParams(location.search);
    if (params.get("q")) {
      try { this.fill(JSON.parse(params.get("q"))); } catch (e) { /* a broken link: defaults */ }
      this.run(false);
    }
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.run(false); });
    root.querySelector("#load-anyway").addEventListener("click", () => this.run(true));
    root.querySelectorAll("[data-export]").forEach((b) =>
      b.addEventListener("click", () => this.exportAs(b.dataset.export)));
  },

  query(loadAnyway) {
    const f = new FormData(this.form);
    const q = {
      metric: f.get("metric"), aggregation: f.get("aggregation"), grain: f.get("grain") || "auto",
      sort: f.get("sort"), limit: Number(f.get("limit") || 10), mode: f.get("mode"),
      points: Math.min(10000, chartWidth(this.root.querySelector("#chart"))),
    };
    if (f.get("from")) { q.from = f.get("from"); q.to = f.get("to") || undefined; }
    else q.range = f.get("range") || "PT1H";
    const split = f.get("splitBy");
    if (split === "property" || split === "tag") q.splitBy = { [split]: f.get("splitName") };
    else if (split) q.splitBy = split;
    const scope = (f.get("scopeValue") || "").trim();
    if (scope && f.get("scopeKind") === "devices") q.scope = { devices: scope.split(/[\s,]+/) };
    else if (scope) q.scope = { [f.get("scopeKind")]: scope };
    if (loadAnyway) q.loadAnyway = true;
    return q;
  },

  fill(q) {
    const set = (name, value) => { const el = this.form.elements[name]; if (el && value != null) el.value = value; };
    set("metric", q.metric); set("aggregation", q.aggregation); set("grain", q.grain);
    set("sort", q.sort); set("limit", q.limit); set("mode", q.mode); set("range", q.range);
    set("from", q.from); set("to", q.to);
    if (typeof q.splitBy === "string") set("splitBy", q.splitBy);
    else if (q.splitBy) { const [k, v] = Object.entries(q.splitBy)[0]; set("splitBy", k); set("splitName", v); }
    if (q.scope) {
      const [k, v] = Object.entries(q.scope)[0] || [];
      if (k) { set("scopeKind", k); set("scopeValue", Array.isArray(v) ? v.join(",") : v); }
    }
  },

  async run(loadAnyway, override) {
    const q = Object.assign(this.query(loadAnyway), override || {});
    if (override && override.from) delete q.range;
    const share = new URL(location.href);
    share.search = "?q=" + encodeURIComponent(JSON.stringify(q));
    history.replaceState(null, "", share);
    this.root.querySelector("#share-url").value = share.href;
    this.setStatus("Running…");
    const started = performance.now();
    const response = await fetch("/explorer/query", {
      method: "POST", body: JSON.stringify(q),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
    });
    const responded = performance.now();
    const body = await response.json();
    const parsed = performance.now();
    if (!response.ok) { this.setStatus(body.error ? body.error.message : "Query failed"); return; }
    this.last = q;
    const warning = this.root.querySelector("#warning");
    if (body.warning) {
      warning.hidden = false;
      warning.querySelector(".message").textContent = body.warning.message;
      this.setStatus("");
      return;
    }
    warning.hidden = true;
    this.draw(body);
    // Where the time to a chart goes (ms, the page's clock): the query's request and
    // response (server: to the first byte; transfer: the rest of the body), JSON parsing
    // and uPlot's set-up and first draw.
    const entry = performance.getEntriesByType("resource").filter((e) =>
      e.name.endsWith("/explorer/query")).pop();
    window.__explorerTimings = {
      started, fetched: responded - started, parsed: parsed - responded,
      drawn: performance.now() - parsed, points: body.points,
      server: entry ? entry.responseStart - entry.requestStart : null,
      transfer: entry ? entry.responseEnd - entry.responseStart : null,
      bytes: entry ? entry.encodedBodySize : null,
    };
    this.setStatus(`${body.points.toLocaleString()} points · ${body.series.length} series · ${body.source}`);
  },

  draw(body) {
    const el = this.root.querySelector("#chart");
    const data = [body.time.map((t) => t / 1000), ...body.values];
    const series = [{}, ...body.series.map((s, i) => ({
      label: s.name, stroke: s.other ? "#9ca3af" : PALETTE[i % PALETTE.length], width: 1.25,
      spanGaps: body.query.mode === "raw", points: { show: body.time.length < 200 },
    }))];
    if (this.plot) this.plot.destroy();
    el.innerHTML = "";
    const opts = {
      width: chartWidth(el), height: 380, series, legend: { show: false },
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          const from = new Date(u.posToVal(u.select.left, "x") * 1000).toISOString();
          const to = new Date(u.posToVal(u.select.left + u.select.width, "x") * 1000).toISOString();
          this.form.elements.from.value = from; this.form.elements.to.value = to;
          this.run(false, { from, to });  // zooming refetches the detail
        }],
        draw: [() => {
          if (window.__explorerFirstPaint == null) window.__explorerFirstPaint = performance.now();
          el.dataset.drawn = String(Number(el.dataset.drawn || 0) + 1);
        }],
      },
    };
    this.plot = new uPlot(opts, data, el);
    this.legend(body);
  },

  legend(body) {
    const list = this.root.querySelector("#legend");
    list.innerHTML = "";
    body.series.forEach((s, i) => {
      const li = document.createElement("li");
      li.dataset.series = s.name;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = s.other ? "#9ca3af" : PALETTE[i % PALETTE.length];
      const label = document.createElement("span");
      label.className = "name";
      label.textContent = s.other ? `other (${s.members})` : s.name;
      const total = document.createElement("span");
      total.className = "total";
      total.textContent = s.total == null ? "" : Number(s.total).toPrecision(4);
      li.append(swatch, label, total);
      li.addEventListener("click", () => {
        const shown = this.plot.series[i + 1].show;
        this.plot.setSeries(i + 1, { show: !shown });
        li.classList.toggle("off", shown);
      });
      list.appendChild(li);
    });
  },

  exportAs(format) {
    const q = this.last || this.query(false);
    const form = document.createElement("form");
    form.method = "post";
    form.action = "/explorer/export?format=" + format;
    for (const [name, value] of [["query", JSON.stringify(q)], ["csrf", csrfToken()]]) {
      const input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = value;
      form.appendChild(input);
    }
    document.body.appendChild(form);
    form.submit();
    form.remove();
  },

  setStatus(text) { this.root.querySelector("#status").textContent = text; },
};

// -- dashboard line-chart tiles: an explorer query drawn small ------------------------------
async function drawTile(el) {
  const q = JSON.parse(el.dataset.query);
  q.points = Math.min(2000, chartWidth(el));
  const response = await fetch("/explorer/query", {
    method: "POST", body: JSON.stringify(q),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
  });
  const body = await response.json();
  if (!response.ok || body.warning) { el.textContent = body.warning ? body.warning.message : "—"; return; }
  const series = [{}, ...body.series.map((s, i) => ({ label: s.name, stroke: PALETTE[i % PALETTE.length] }))];
  const xs = body.time.map((t) => t / 1000);
  // The x range from the data itself (at least a minute): left to itself, uPlot pads a
  // short span of a young fleet's data out to years.
  const lo = Math.min(...xs), hi = Math.max(...xs, lo + 60);
  const scales = xs.length ? { x: { time: true, auto: false, range: [lo, hi] } } : {};
  new uPlot({ width: chartWidth(el), height: 200, series, scales }, [xs, ...body.values], el);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(startLive);
  const explorer = document.querySelector("#explorer");
  if (explorer) Explorer.init(explorer);
  document.querySelectorAll("[data-tile-query]").forEach(drawTile);
});
