// Swiftchain dashboard: renders /api/v1/dashboard/summary, then every event of
// /api/v1/dashboard/stream. Plain JS and hand-drawn SVG: the page loads nothing from outside
// the hub. Every value from the ledger goes into the page as text, never as markup.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const PALETTE = [
    "#38bdf8", "#a78bfa", "#34d399", "#fbbf24", "#f472b6", "#fb923c",
    "#22d3ee", "#c084fc", "#4ade80", "#facc15", "#60a5fa", "#f87171",
  ];
  const KIND_COLOURS = {
    record: "#38bdf8", access: "#a78bfa", consent: "#34d399", registry: "#fbbf24", erasure: "#f472b6",
  };
  // WHO 2021 air-quality guidelines, 24-hour means (µg/m³).
  const WHO = { pm25: 15, no2: 25 };
  const STALE_AFTER_MS = 5000;

  const $ = (id) => document.getElementById(id);
  let lastEventAt = 0;
  let lastSummary = null;

  // -- formatting ---------------------------------------------------------------------------
  const fmtInt = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
  const fmtNum = (n, digits = 1) =>
    n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US", {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    });
  const hhmm = (epoch) => new Date(epoch * 1000).toISOString().slice(11, 16);
  const hhmmss = (text) => (typeof text === "string" && text.length >= 19 ? text.slice(11, 19) : "–");
  function fmtAge(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }
  function colourFor(name) {
    let h = 0;
    for (const ch of String(name)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }
  function seriesColours(names) {
    // Distinct colours for the names on one chart, stable for a given set of names.
    const used = new Set();
    const out = {};
    for (const name of names) {
      let c = colourFor(name);
      let i = PALETTE.indexOf(c);
      while (used.has(c) && used.size < PALETTE.length) c = PALETTE[++i % PALETTE.length];
      used.add(c);
      out[name] = c;
    }
    return out;
  }

  // -- DOM helpers --------------------------------------------------------------------------
  function h(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function s(tag, attrs = {}, parent) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }
  function setText(id, text) {
    const node = $(id);
    if (node.textContent !== text) node.textContent = text;
  }
  function setBig(id, value, unit) {
    const node = $(id);
    node.replaceChildren(document.createTextNode(value));
    if (unit) node.appendChild(h("small", {}, unit));
  }
  function setLevel(id, level) {
    $(id).dataset.level = level;
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function niceMax(value, ticks = 4) {
    // A top whose tick labels are round numbers (steps of 1, 2, 2.5 or 5 times 10^k).
    if (!(value > 0)) return ticks;
    const raw = value / ticks;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p * ticks;
    return 10 * p * ticks;
  }
  function frame(svg) {
    // Draw in the element's own pixels, so text is never stretched.
    const w = Math.max(svg.clientWidth, 100);
    const ht = Math.max(svg.clientHeight, 60);
    svg.setAttribute("viewBox", `0 0 ${w} ${ht}`);
    clear(svg);
    return { w, h: ht };
  }
  function emptyNote(svg, size, text) {
    s("text", { x: size.w / 2, y: size.h / 2, "text-anchor": "middle", class: "empty-note" }, svg)
      .textContent = text;
  }

  // -- charts -------------------------------------------------------------------------------
  // series: [{name, colour, values: [number|null]}]; xLabels: [[index, text]]
  function lineChart(svg, series, opts) {
    const size = frame(svg);
    const pad = { l: 38, r: 10, t: 8, b: 20 };
    const n = Math.max(0, ...series.map((x) => x.values.length));
    const all = series.flatMap((x) => x.values).filter((v) => v !== null && v !== undefined);
    if (!n || !all.length) {
      emptyNote(svg, size, opts.empty || "No readings yet");
      return;
    }
    const ticks = size.h > 140 ? 4 : 2;
    const top = niceMax(Math.max(...all, opts.threshold || 0) * 1.05, ticks);
    const X = (i) => pad.l + (n === 1 ? 0 : (i / (n - 1)) * (size.w - pad.l - pad.r));
    const Y = (v) => pad.t + (1 - v / top) * (size.h - pad.t - pad.b);
    for (let k = 0; k <= ticks; k++) {
      const v = (top * k) / ticks;
      s("line", { x1: pad.l, x2: size.w - pad.r, y1: Y(v), y2: Y(v), class: "gridline" }, svg);
      s("text", { x: pad.l - 6, y: Y(v) + 4, "text-anchor": "end", class: "axis-label" }, svg)
        .textContent = fmtInt(v);
    }
    const labels = opts.xLabels || [];
    labels.forEach(([i, text], k) => {
      const anchor = k === 0 ? "start" : k === labels.length - 1 ? "end" : "middle";
      s("text", { x: X(i), y: size.h - 4, "text-anchor": anchor, class: "axis-label" }, svg)
        .textContent = text;
    });
    if (opts.threshold) {
      const y = Y(opts.threshold);
      s("line", { x1: pad.l, x2: size.w - pad.r, y1: y, y2: y, class: "threshold" }, svg);
      s("text", { x: size.w - pad.r, y: y - 4, "text-anchor": "end", class: "axis-label" }, svg)
        .textContent = opts.thresholdLabel || "";
    }
    // Readings sparser than the buckets leave gaps: bridge short ones, break at long ones
    // (a station that was offline for a while shows as a break in its line).
    const maxGap = opts.maxGap || 6;
    for (const line of series) {
      let d = "";
      let last = -Infinity;
      line.values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        d += `${i - last <= maxGap ? "L" : "M"}${X(i).toFixed(1)},${Y(v).toFixed(1)}`;
        last = i;
      });
      if (d) s("path", { d, class: "series", stroke: line.colour }, svg);
    }
  }

  // pilots: {name: [count per second]} stacked
  function stackedArea(svg, pilots, colours) {
    const size = frame(svg);
    const pad = { l: 42, r: 10, t: 10, b: 20 };
    const names = Object.keys(pilots);
    const n = names.length ? pilots[names[0]].length : 0;
    if (!n) {
      emptyNote(svg, size, "No records committed in the last minute");
      return;
    }
    const totals = Array.from({ length: n }, (_, i) => names.reduce((a, p) => a + pilots[p][i], 0));
    const top = niceMax(Math.max(...totals, 1) * 1.1);
    const X = (i) => pad.l + (i / (n - 1)) * (size.w - pad.l - pad.r);
    const Y = (v) => pad.t + (1 - v / top) * (size.h - pad.t - pad.b);
    for (let k = 0; k <= 4; k++) {
      const v = (top * k) / 4;
      s("line", { x1: pad.l, x2: size.w - pad.r, y1: Y(v), y2: Y(v), class: "gridline" }, svg);
      s("text", { x: pad.l - 6, y: Y(v) + 4, "text-anchor": "end", class: "axis-label" }, svg)
        .textContent = fmtInt(v);
    }
    for (const [i, text] of [[0, "−60 s"], [Math.floor(n / 2), "−30 s"], [n - 1, "now"]]) {
      s("text", { x: X(i), y: size.h - 4, "text-anchor": "middle", class: "axis-label" }, svg)
        .textContent = text;
    }
    const base = new Array(n).fill(0);
    for (const name of names) {
      const lower = base.slice();
      const upper = base.map((b, i) => b + pilots[name][i]);
      let d = `M${X(0)},${Y(upper[0])}`;
      for (let i = 1; i < n; i++) d += `L${X(i).toFixed(1)},${Y(upper[i]).toFixed(1)}`;
      for (let i = n - 1; i >= 0; i--) d += `L${X(i).toFixed(1)},${Y(lower[i]).toFixed(1)}`;
      s("path", { d: d + "Z", class: "area", fill: colours[name], "fill-opacity": 0.35 }, svg);
      let edge = "";
      for (let i = 0; i < n; i++) edge += `${i ? "L" : "M"}${X(i).toFixed(1)},${Y(upper[i]).toFixed(1)}`;
      s("path", { d: edge, class: "series", stroke: colours[name] }, svg);
      upper.forEach((v, i) => (base[i] = v));
    }
  }

  function bars(container, rows, emptyText) {
    clear(container);
    if (!rows.length) {
      container.appendChild(h("div", { class: "empty" }, emptyText));
      return;
    }
    const top = Math.max(...rows.map((r) => r.value), 1);
    for (const row of rows) {
      const line = h("div", { class: "bar-row" });
      line.appendChild(h("span", { class: "label", title: row.label }, row.label));
      const track = h("div", { class: "track" });
      const fill = h("div", { class: "fill" });
      fill.style.width = `${(100 * row.value) / top}%`;
      fill.style.background = row.colour;
      track.appendChild(fill);
      line.appendChild(track);
      line.appendChild(h("span", { class: "value" }, fmtInt(row.value)));
      container.appendChild(line);
    }
  }

  function donut(svg, parts, centre) {
    clear(svg);
    const r = 48;
    const c = 2 * Math.PI * r;
    const total = parts.reduce((a, p) => a + p.value, 0);
    s("circle", { cx: 60, cy: 60, r, class: "ring", stroke: "#15223b" }, svg);
    let offset = 0;
    for (const part of parts) {
      if (!total || !part.value) continue;
      const len = (part.value / total) * c;
      s("circle", {
        cx: 60, cy: 60, r, class: "ring", stroke: part.colour,
        "stroke-dasharray": `${len} ${c - len}`, "stroke-dashoffset": -offset,
        transform: "rotate(-90 60 60)",
      }, svg);
      offset += len;
    }
    s("text", { x: 60, y: 62, "text-anchor": "middle", class: "centre" }, svg).textContent = centre;
    s("text", { x: 60, y: 78, "text-anchor": "middle", class: "centre-sub" }, svg).textContent = "CONSENTS";
  }

  function timeLabels(chart, buckets) {
    if (!chart || chart.start === null) return [];
    const out = [];
    const count = 4;
    for (let k = 0; k <= count; k++) {
      const i = Math.round((k * (buckets - 1)) / count);
      out.push([i, hhmm(chart.start + (i + 0.5) * chart.step)]);
    }
    return out;
  }

  // -- panels ---------------------------------------------------------------------------------
  function renderHeader(d) {
    setText("origin", d.network.origin);
    setText("updated", `updated ${d.generated_at.slice(11, 19)} UTC`);
  }

  function renderBanner(d) {
    const banner = $("banner");
    const level = d.network.status;
    banner.dataset.level = level;
    if (!d.alerts.length) {
      setText("banner-icon", "●");
      setText("banner-text", "All systems nominal — ingest, checkpoints and live verification are healthy");
      return;
    }
    setText("banner-icon", level === "critical" ? "▲" : "◆");
    setText("banner-text", d.alerts.map((a) => a.message).join("  ·  "));
  }

  function renderKpis(d) {
    const kinds = d.ledger.kinds;
    setBig("ledger-size", fmtInt(d.ledger.size));
    const others = Object.entries(kinds).reduce((a, [k, n]) => a + (k === "record" ? 0 : n), 0);
    setText("ledger-kinds", `${fmtInt(kinds.record || 0)} records · ${fmtInt(others)} other entries`);

    setBig("rate-total", fmtNum(d.rates.total, 1), "rec/s");
    const pilots = Object.keys(d.rates.per_pilot).length;
    setText("rate-sub", `${pilots} pilot${pilots === 1 ? "" : "s"} · rolling ${d.rates.window_s} s`);

    const cp = d.checkpoint;
    setBig("cp-size", cp.size === null ? "–" : fmtInt(cp.size));
    setText("cp-age", cp.idle ? `idle ${fmtAge(cp.age_s)}` : `age ${fmtAge(cp.age_s)}`);
    setText("cp-root", cp.root ? cp.root.slice(0, 8) + "…" : "–");
    setLevel("kpi-checkpoint", cp.stale ? "warning" : "ok");

    const v = d.verification;
    const state = { verified: "Verified", catching_up: "Catching up", failed: "FAILED", empty: "Empty log" }[v.state] || v.state;
    setBig("verify-state", state);
    $("verify-state").classList.add("stateful");
    setText("verify-sub", v.failure
      ? `first bad entry #${fmtInt(v.failure.index)}`
      : `verified up to ${fmtInt(v.verified_size)}`);
    $("verify-sub").title = `${fmtInt(v.checkpoints_checked)} signed checkpoints checked`;
    setLevel("kpi-verify", v.state === "failed" ? "critical" : v.state === "verified" || v.state === "empty" ? "ok" : "warning");
    setText("foot-verified", `Live re-verification: leaves and signed roots verified up to entry ${fmtInt(v.verified_size)}`);

    renderWitnesses(d.witnesses);

    const b = d.broker;
    setBig("broker-state", b.connected ? "Connected" : "Down");
    $("broker-state").classList.add("stateful");
    setText("broker-sub", `${fmtInt(b.connects)} connects · ${fmtInt(b.errors)} errors`);
    setLevel("kpi-broker", b.connected ? "ok" : "critical");

    const lat = d.ingest.commit_latency;
    setBig("latency-p95", lat.p95_ms === null ? "–" : fmtNum(lat.p95_ms, 1), "ms");
    setText("latency-sub", lat.p50_ms === null ? "no commits yet" : `p50 ${fmtNum(lat.p50_ms, 1)} ms · ${fmtInt(lat.commits)} commits`);

    const queued = d.ingest.commit_queue + d.ingest.receipt_queue;
    setBig("queue-depth", fmtInt(queued));
    setText("queue-sub", `${fmtInt(d.ingest.commit_queue)} to commit · ${fmtInt(d.ingest.receipt_queue)} receipts`);
    setLevel("kpi-queue", queued > 10000 ? "warning" : "ok");

    const rj = d.ingest.rejected;
    setBig("rejected-total", fmtInt(rj.total));
    setText("rejected-sub", `${fmtInt(rj.recent)} in last ${Math.round(rj.window_s)} s · ${(rj.share * 100).toFixed(0)}% share`);
    const spike = d.alerts.some((a) => a.code === "rejections_spike");
    setLevel("kpi-rejected", spike ? "warning" : "ok");
  }

  function renderRates(d) {
    const pilots = d.rates.history.pilots;
    const names = Object.keys(pilots).sort();
    const colours = seriesColours(names);
    stackedArea($("chart-rates"), pilots, colours);
    const legend = $("legend-rates");
    clear(legend);
    const all = new Set([...names, ...Object.keys(d.rates.per_pilot)]);
    for (const name of [...all].sort()) {
      const item = h("span", { class: "item" });
      const sw = h("span", { class: "swatch" });
      sw.style.background = colours[name] || colourFor(name);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(`${name} `));
      item.appendChild(h("b", {}, `${fmtNum(d.rates.per_pilot[name] || 0, 1)}/s`));
      item.appendChild(document.createTextNode(` · ${fmtInt(d.ledger.records_by_pilot[name] || 0)} total`));
      legend.appendChild(item);
    }
  }

  function renderKinds(d) {
    const rows = Object.entries(d.ledger.kinds)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, n]) => ({ label: kind, value: n, colour: KIND_COLOURS[kind] || "#60a5fa" }));
    bars($("bars-kinds"), rows, "The log is empty");
    const c = d.consents;
    donut($("donut-consents"), [
      { value: c.active, colour: "#34d399" },
      { value: c.withdrawn, colour: "#f87171" },
      { value: c.other, colour: "#55678a" },
    ], fmtInt(c.active + c.withdrawn + c.other));
    setText("consent-active", fmtInt(c.active));
    setText("consent-withdrawn", fmtInt(c.withdrawn));
    setText("consent-other", fmtInt(c.other));
  }

  function renderAir(d) {
    const air = d.air_quality;
    const names = air.stations.map((st) => st.id);
    const colours = seriesColours(names);
    const labels = timeLabels(air, air.stations.length ? air.stations[0].pm25.length : 0);
    lineChart($("chart-pm25"), air.stations.map((st) => ({ name: st.id, colour: colours[st.id], values: st.pm25 })), {
      xLabels: labels, threshold: WHO.pm25, thresholdLabel: "WHO 24 h guideline", empty: "No air-quality readings yet",
    });
    lineChart($("chart-no2"), air.stations.map((st) => ({ name: st.id, colour: colours[st.id], values: st.no2 })), {
      xLabels: labels, threshold: WHO.no2, thresholdLabel: "WHO 24 h", empty: "–",
    });
    setText("air-window", air.start === null ? "µg/m³ per station" : `µg/m³ · ${hhmm(air.start)}–${hhmm(air.end)} UTC`);
    const legend = $("legend-air");
    clear(legend);
    for (const st of air.stations) {
      const item = h("span", { class: "item" });
      const sw = h("span", { class: "swatch" });
      sw.style.background = colours[st.id];
      item.appendChild(sw);
      item.appendChild(document.createTextNode(`${st.id} `));
      item.appendChild(h("b", {}, fmtNum(st.latest.pm25, 1)));
      item.appendChild(document.createTextNode(` / ${fmtNum(st.latest.no2, 0)}`));
      legend.appendChild(item);
    }
  }

  function speedColour(kmh) {
    if (kmh === null || kmh === undefined) return "#55678a";
    if (kmh < 20) return "#f87171";
    if (kmh < 40) return "#fbbf24";
    return "#34d399";
  }

  function renderTraffic(d) {
    const t = d.traffic;
    const box = $("traffic-bars");
    clear(box);
    if (!t.segments.length) box.appendChild(h("div", { class: "empty hint" }, "No traffic counts yet"));
    const top = Math.max(...t.segments.map((g) => g.latest.vehicles_per_hour || 0), 1);
    for (const g of t.segments) {
      const row = h("div", { class: "segment" });
      row.appendChild(h("span", { class: "label", title: g.id }, g.id));
      const track = h("div", { class: "track" });
      const fill = h("div", { class: "fill" });
      fill.style.width = `${(100 * (g.latest.vehicles_per_hour || 0)) / top}%`;
      fill.style.background = speedColour(g.latest.speed_kmh);
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(h("span", { class: "value" }, `${fmtInt(g.latest.vehicles_per_hour)}/h`));
      const speed = h("span", { class: "speed" }, `${fmtInt(g.latest.speed_kmh)} km/h`);
      speed.style.color = speedColour(g.latest.speed_kmh);
      row.appendChild(speed);
      box.appendChild(row);
    }
    const colours = seriesColours(t.segments.map((g) => g.id));
    lineChart($("chart-speed"), t.segments.map((g) => ({ name: g.id, colour: colours[g.id], values: g.speed })), {
      xLabels: timeLabels(t, t.segments.length ? t.segments[0].speed.length : 0), empty: "–",
    });
    setText("traffic-window", t.start === null ? "vehicles/h · mean speed" : `latest interval · ${hhmm(t.end)} UTC`);
  }

  function renderParking(d) {
    const box = $("parking");
    clear(box);
    if (!d.parking.length) box.appendChild(h("div", { class: "hint" }, "No parking readings yet"));
    for (const p of d.parking) {
      const item = h("div", { class: "park" });
      const top = h("div", { class: "top" });
      top.appendChild(h("span", { class: "name" }, p.id));
      const pct = h("span", { class: "pct" }, `${Math.round(p.share * 100)}%`);
      const colour = p.share > 0.9 ? "#f87171" : p.share > 0.75 ? "#fbbf24" : "#34d399";
      pct.style.color = colour;
      top.appendChild(pct);
      item.appendChild(top);
      const track = h("div", { class: "track" });
      const fill = h("div", { class: "fill" });
      fill.style.width = `${Math.round(p.share * 100)}%`;
      fill.style.background = colour;
      track.appendChild(fill);
      item.appendChild(track);
      item.appendChild(h("div", { class: "detail" }, `${fmtInt(p.occupied)} of ${fmtInt(p.capacity)} spaces · ${hhmm(p.t)} UTC`));
      box.appendChild(item);
    }
  }

  function renderAccess(d) {
    const a = d.access;
    setText("access-counts", `${fmtInt(a.allow)} allowed · ${fmtInt(a.deny)} denied · ${fmtInt(a.break_glass)} break-glass`);
    // Every break-glass read is for review: an alert above the table while the log has any.
    const glass = $("glass-alert");
    glass.hidden = !a.break_glass_alert;
    setText("glass-alert-text", a.break_glass_alert ? a.break_glass_alert.message : "");
    const body = $("access-rows");
    clear(body);
    if (!a.recent.length) {
      const tr = h("tr", { class: "empty" });
      // Without the admin token the hub sends the counts only, not the lines (each about a person).
      const empty = a.recent_withheld ? "Each decision is shown to operators only (admin token)" : "No access decisions on the log yet";
      tr.appendChild(h("td", { colspan: "7" }, empty));
      body.appendChild(tr);
      return;
    }
    for (const row of a.recent.slice(0, 9)) {
      const tr = h("tr", row.break_glass && row.decision === "allow" ? { class: "glass-read" } : {});
      tr.appendChild(h("td", { class: "idx" }, `#${row.index}`));
      tr.appendChild(h("td", {}, hhmmss(row.at)));
      tr.appendChild(h("td", { title: row.reason }, row.org ? `${row.client} (${row.org})` : row.client));
      tr.appendChild(h("td", {}, row.purpose || "–"));
      tr.appendChild(h("td", {}, row.type || "–"));
      tr.appendChild(h("td", { class: "subject" }, row.subject || "–"));
      const cell = h("td");
      cell.appendChild(h("span", { class: `pill ${row.decision}` }, row.decision));
      if (row.break_glass) cell.appendChild(h("span", { class: "pill glass" }, "break-glass"));
      tr.appendChild(cell);
      body.appendChild(tr);
    }
  }

  function renderIngest(d) {
    const i = d.ingest;
    const stats = $("ingest-stats");
    clear(stats);
    const rows = [
      ["Accepted", fmtInt(i.accepted), ""],
      ["Duplicates", fmtInt(i.duplicates), ""],
      ["Commit queue", fmtInt(i.commit_queue), i.commit_queue > 10000 ? "warn" : ""],
      ["Receipt queue", fmtInt(i.receipt_queue), i.receipt_queue > 10000 ? "warn" : ""],
      ["Commit mean", i.commit_latency.mean_ms === null ? "–" : `${fmtNum(i.commit_latency.mean_ms, 1)} ms`, ""],
      ["Commit failures", fmtInt(i.commit_failures), i.commit_failures ? "bad" : ""],
      ["Receipts dropped", fmtInt(i.receipts_dropped), i.receipts_dropped ? "warn" : ""],
      ["Rejected / s", fmtNum(i.rejected.per_second, 2), i.rejected.per_second > 0 ? "warn" : ""],
    ];
    for (const [label, value, cls] of rows) {
      const div = h("div");
      div.appendChild(h("dt", {}, label));
      div.appendChild(h("dd", cls ? { class: cls } : {}, value));
      stats.appendChild(div);
    }
    setText("ingest-window", `latency over ${Math.round(i.commit_latency.window_s)} s`);
    const reasons = Object.entries(i.rejected.by_reason)
      .sort((a, b) => b[1] - a[1])
      .map(([reason, n]) => ({ label: reason, value: n, colour: "#f87171" }));
    bars($("bars-rejected"), reasons, "No rejections");
  }

  function renderWitnesses(w) {
    if (!w) {
      setBig("witness-state", "None");
      setText("witness-sub", "no trust policy: the operator's signature alone");
      setLevel("kpi-witnesses", "ok");
      return;
    }
    const up = w.witnesses.filter((x) => x.reachable).length;
    setBig("witness-state", w.quorum_met ? "Met" : "Not met");
    $("witness-state").classList.add("stateful");
    const at = w.quorum_size === null ? "never met yet" : `cosigned up to ${fmtInt(w.quorum_size)}`;
    setText("witness-sub", `${up} of ${w.witnesses.length} witnesses up · ${at}`);
    $("witness-sub").title = w.witnesses
      .map((x) => `${x.name}${x.operator ? " (" + x.operator + ")" : ""}: ` +
        (x.error ? x.error : `cosigned ${fmtInt(x.cosigned_size || 0)}, lag ${fmtInt(x.lag_entries || 0)}`))
      .join("\n");
    setLevel("kpi-witnesses", w.quorum_met ? "ok" : "warning");
  }

  function render(d) {
    lastSummary = d;
    const panels = [renderHeader, renderBanner, renderKpis, renderRates, renderKinds, renderAir,
      renderTraffic, renderParking, renderAccess, renderIngest];
    for (const panel of panels) {
      try {
        panel(d);
      } catch (err) {
        console.error("dashboard panel failed", panel.name, err);
      }
    }
    document.body.dataset.ready = "true";
  }

  // -- live data ---------------------------------------------------------------------------
  function setLive(state, text) {
    const live = $("live");
    live.dataset.state = state;
    setText("live-text", text);
  }

  function connect() {
    const source = new EventSource("/api/v1/dashboard/stream");
    source.addEventListener("summary", (ev) => {
      lastEventAt = Date.now();
      setLive("live", "Live");
      try {
        render(JSON.parse(ev.data));
      } catch (err) {
        console.error("bad dashboard event", err);
      }
    });
    source.onerror = () => setLive("down", "Reconnecting");
  }

  function tickClock() {
    const now = new Date();
    setText("clock", now.toLocaleTimeString("en-GB", { hour12: false }));
    if (lastEventAt && Date.now() - lastEventAt > STALE_AFTER_MS && $("live").dataset.state === "live") {
      setLive("stale", "Stale");
    }
  }

  async function start() {
    tickClock();
    setInterval(tickClock, 1000);
    try {
      const r = await fetch("/api/v1/dashboard/summary", { cache: "no-store" });
      if (r.ok) render(await r.json());
    } catch (err) {
      console.warn("first snapshot failed; waiting for the stream", err);
    }
    connect();
    let resizeTimer = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => lastSummary && render(lastSummary), 150);
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
