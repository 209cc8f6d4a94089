// The charts of a study's page, each a function (graph div, model) -> note for the page.
//
// The model: {study, F (field -> index of a trial row), rows (every trial, in order of number),
// byNumber, objective (index), optimal (Set of numbers)}. Big studies stay responsive: WebGL
// (scattergl) for the history past HISTORY_GL points, and a sample of SAMPLE_LIMIT trials for
// parallel coordinates, slice and contour, which the notes say.
"use strict";

window.HDCharts = (function () {
  const { el, fmtCount, fmtNumber } = HD;
  const WAITING = 0, RUNNING = 1, COMPLETED = 2, FAILED = 3, STOPPED = 4, INFEASIBLE = 5;
  const COLORS = {
    completed: "#2458b3",
    best: "#c23b3b",
    stopped: "#c77a12",
    running: "#1a8a5a",
    other: "#b7bfcc",
    optimal: "#c23b3b",
    infeasible: "#8a919e",
  };
  const HISTORY_GL = 2000;
  const SAMPLE_LIMIT = 2000;
  const PARCOORDS_MAX_DIMS = 59; // plotly draws at most 60 axes
  const CONFIG = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d"],
  };
  const FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 };

  function layout(extra) {
    return Object.assign({
      margin: { l: 60, r: 20, t: 10, b: 50 },
      font: FONT,
      paper_bgcolor: "#ffffff",
      plot_bgcolor: "#ffffff",
      hovermode: "closest",
      legend: { orientation: "h", y: -0.18 },
    }, extra || {});
  }

  function axis(title, extra) {
    return Object.assign({ title: { text: title }, gridcolor: "#eef0f4", zeroline: false }, extra || {});
  }

  /** Draws (or redraws in place) a chart; clears a message the div held. */
  function draw(div, data, lay) {
    if (div.dataset.empty !== "false") {
      window.Plotly.purge(div);
      div.replaceChildren();
    }
    div.dataset.empty = "false";
    window.Plotly.react(div, data, lay, CONFIG);
  }

  /** Replaces a chart with a sentence saying why there is none. */
  function message(div, text) {
    if (div.dataset.empty === "false") window.Plotly.purge(div);
    div.dataset.empty = "true";
    div.replaceChildren(el("p", { class: "empty" }, text));
    return "";
  }

  function goalOf(m) {
    return m.study.objectives[m.objective].goal;
  }

  function objectiveName(m) {
    return m.study.objectives[m.objective].name;
  }

  function valueOf(m, row) {
    const values = row[m.F.values];
    return values ? values[m.objective] : null;
  }

  /** Completed trials with a value for the chosen objective (feasible or not). */
  function completed(m) {
    return m.rows.filter((r) => r[m.F.state] === COMPLETED && valueOf(m, r) !== null);
  }

  /** Whether a trial's outcome is infeasible: INFEASIBLE, or its values break a constraint. */
  function infeasible(m, row) {
    return !!row[m.F.infeasible];
  }

  function whyNone(m) {
    if (!m.rows.length) return "No trials yet.";
    const failed = m.rows.filter((r) => r[m.F.state] === FAILED).length;
    const dead = m.rows.filter((r) => r[m.F.state] === INFEASIBLE).length;
    const counts = [];
    if (failed) counts.push(`${fmtCount(failed)} failed`);
    if (dead) counts.push(`${fmtCount(dead)} infeasible`);
    const tail = counts.length ? ` (${counts.join(", ")})` : "";
    return `No completed trial with a value for ${objectiveName(m)} yet${tail}.`;
  }

  /** Every k-th row, so that at most `limit` remain, plus the rows of `keep` (numbers). */
  function sample(rows, limit, keep) {
    if (rows.length <= limit) return rows;
    const step = rows.length / limit;
    const out = new Set();
    for (let i = 0; i < limit; i++) out.add(rows[Math.floor(i * step)]);
    for (const r of rows) if (keep && keep.has(r[0])) out.add(r);
    return Array.from(out).sort((a, b) => a[0] - b[0]);
  }

  function sampleNote(shown, total) {
    return shown < total
      ? `Showing a sample of ${fmtCount(shown)} of ${fmtCount(total)} completed trials ` +
        "(evenly spread over the study, best trials included) to keep the chart responsive."
      : "";
  }

  // -- optimisation history -----------------------------------------------------------------

  function history(div, m) {
    const F = m.F;
    const goal = goalOf(m);
    const all = completed(m);
    // Infeasible trials are drawn apart and never move the best-so-far line.
    const done = all.filter((r) => !infeasible(m, r));
    const broken = all.filter((r) => infeasible(m, r));
    const stopped = m.rows.filter((r) => r[F.state] === STOPPED && valueOf(m, r) !== null);
    if (!all.length && !stopped.length) return message(div, whyNone(m));
    const rankStopped = !!(m.study.early_stopping && m.study.early_stopping.rank_stopped_trials);
    const ranked = rankStopped
      ? done.concat(stopped.filter((r) => !infeasible(m, r))).sort((a, b) => a[0] - b[0])
      : done;
    const bestX = [], bestY = [];
    let best = null;
    for (const r of ranked) {
      const v = valueOf(m, r);
      if (best === null || (goal === "minimize" ? v < best : v > best)) best = v;
      bestX.push(r[0]);
      bestY.push(best);
    }
    const gl = all.length > HISTORY_GL && HD.webgl;
    const type = gl ? "scattergl" : "scatter";
    const size = gl ? 4 : 7;
    const data = [{
      type, mode: "markers", name: "Completed",
      x: done.map((r) => r[0]), y: done.map((r) => valueOf(m, r)),
      marker: { color: COLORS.completed, size, opacity: 0.75 },
      hovertemplate: "trial %{x}<br>%{y}<extra></extra>",
    }];
    if (broken.length) {
      data.push({
        type, mode: "markers", name: "Infeasible (breaks a constraint)",
        x: broken.map((r) => r[0]), y: broken.map((r) => valueOf(m, r)),
        text: broken.map((r) => r[F.infeasibility_reason]),
        marker: { color: COLORS.infeasible, size, symbol: "circle-open", opacity: 0.9 },
        hovertemplate: "trial %{x} (infeasible)<br>%{y}<br>%{text}<extra></extra>",
      });
    }
    if (stopped.length) {
      data.push({
        type, mode: "markers", name: "Stopped (last report)",
        x: stopped.map((r) => r[0]), y: stopped.map((r) => valueOf(m, r)),
        marker: { color: COLORS.stopped, size, symbol: "x", opacity: 0.7 },
        hovertemplate: "trial %{x} (stopped)<br>%{y}<extra></extra>",
      });
    }
    if (bestX.length) {
      data.push({
        type, mode: "lines", name: "Best so far",
        x: bestX, y: bestY, line: { color: COLORS.best, width: 2, shape: "hv" },
        hovertemplate: "best after trial %{x}<br>%{y}<extra></extra>",
      });
    }
    draw(div, data, layout({
      xaxis: axis("trial"),
      yaxis: axis(`${objectiveName(m)} (${goal})`),
    }));
    const notes = [];
    if (gl) notes.push(`${fmtCount(all.length)} trials, drawn with WebGL.`);
    if (broken.length) {
      notes.push(`${fmtCount(broken.length)} completed trial(s) break a constraint: drawn in grey, never the best.`);
    }
    const dead = m.rows.filter((r) => r[F.state] === INFEASIBLE).length;
    if (dead) notes.push(`${fmtCount(dead)} infeasible trial(s) gave no value to draw.`);
    if (!ranked.length) notes.push(broken.length ? "No trial within the constraints yet." : "No completed trial ranks yet.");
    return notes.join(" ");
  }

  // -- parallel coordinates -----------------------------------------------------------------

  /** [min, max] of numbers, without spreading a big array into arguments. */
  function extent(values) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    return [lo, hi];
  }

  /** Evenly spaced tick values from lo to hi. */
  function ticks(lo, hi, n) {
    if (hi === lo) return [lo];
    const out = [];
    for (let i = 0; i < n; i++) out.push(lo + (hi - lo) * i / (n - 1));
    return out;
  }

  function dimension(param, values) {
    const present = values.filter((v) => v !== null);
    const absent = present.length < values.length;
    if (param.type === "categorical" || present.some((v) => typeof v === "string")) {
      const cats = param.values ? param.values.map(String) : Array.from(new Set(present.map(String)));
      const index = new Map(cats.map((c, i) => [c, i]));
      const tickvals = cats.map((c, i) => i);
      const ticktext = cats.slice();
      if (absent) { tickvals.unshift(-1); ticktext.unshift("absent"); }
      return {
        label: param.name,
        values: values.map((v) => (v === null ? -1 : index.get(String(v)))),
        tickvals, ticktext,
        range: [absent ? -1 : 0, Math.max(cats.length - 1, absent ? 0 : 1)],
      };
    }
    const log = !!param.log && present.every((v) => v > 0);
    const t = (v) => (log ? Math.log10(v) : v);
    const ts = present.map(t);
    let [lo, hi] = extent(ts);
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    const label = log ? `${param.name} (log10)` : param.name;
    if (!absent) return { label, values: values.map(t), range: [lo, hi] };
    const sentinel = lo - (hi - lo) * 0.12;
    const tickvals = [sentinel, ...ticks(lo, hi, 5)];
    const ticktext = ["absent", ...tickvals.slice(1).map((v) => fmtNumber(v))];
    return {
      label, tickvals, ticktext, range: [sentinel, hi],
      values: values.map((v) => (v === null ? sentinel : t(v))),
    };
  }

  function parcoords(div, m) {
    if (!HD.webgl) return message(div, "Parallel coordinates need WebGL, which this browser does not offer.");
    const done = completed(m);
    if (!done.length) return message(div, whyNone(m));
    const rows = sample(done, SAMPLE_LIMIT, m.optimal);
    const F = m.F;
    const dims = [];
    let skipped = 0;
    const params = m.study.parameters;
    params.forEach((p, j) => {
      const values = rows.map((r) => r[F.params][j]);
      if (values.every((v) => v === null)) { skipped++; return; }
      if (dims.length < PARCOORDS_MAX_DIMS) dims.push(dimension(p, values));
      else skipped++;
    });
    const ys = rows.map((r) => valueOf(m, r));
    dims.push({ label: objectiveName(m), values: ys });
    const goal = goalOf(m);
    const width = Math.max(div.parentElement.clientWidth - 4, dims.length * 90);
    draw(div, [{
      type: "parcoords",
      dimensions: dims,
      line: {
        color: ys, colorscale: "Viridis", reversescale: goal === "minimize", showscale: true,
        colorbar: { title: { text: objectiveName(m) }, thickness: 12, x: 1.02, xpad: 30 },
      },
    }], layout({ width, margin: { l: 60, r: 110, t: 40, b: 30 } }));
    const notes = [sampleNote(rows.length, done.length)];
    if (skipped) notes.push(`${skipped} parameter(s) not shown (inactive in every trial shown, or past ${PARCOORDS_MAX_DIMS} axes).`);
    if (rows.some((r) => r[F.params].some((v) => v === null))) {
      notes.push("Inactive conditional parameters sit on the “absent” tick.");
    }
    return notes.filter(Boolean).join(" ");
  }

  // -- slice ------------------------------------------------------------------------------------

  function paramAxis(param, values) {
    if (param.type === "categorical" || values.some((v) => typeof v === "string")) {
      const order = param.values ? param.values.map(String) : undefined;
      return { type: "category", categoryorder: order ? "array" : "trace", categoryarray: order };
    }
    if (param.log && values.every((v) => v > 0)) return { type: "log" };
    return { type: "linear" };
  }

  function slice(div, m, j) {
    const param = m.study.parameters[j];
    if (!param) return message(div, "The study has no parameters.");
    const done = completed(m);
    if (!done.length) return message(div, whyNone(m));
    const active = done.filter((r) => r[m.F.params][j] !== null);
    if (!active.length) return message(div, `${param.name} is inactive in every completed trial.`);
    const rows = sample(active, SAMPLE_LIMIT, m.optimal);
    const xs = rows.map((r) => r[m.F.params][j]);
    draw(div, [{
      type: "scatter", mode: "markers", name: "trials",
      x: param.type === "categorical" ? xs.map(String) : xs,
      y: rows.map((r) => valueOf(m, r)),
      marker: {
        color: rows.map((r) => r[0]), colorscale: [[0, "#a9c1ee"], [1, "#123575"]], showscale: true, size: 7,
        colorbar: { title: { text: "trial" }, thickness: 10 }, line: { color: "#ffffff", width: 0.5 },
      },
      text: rows.map((r) => `trial ${r[0]}`),
      hovertemplate: "%{text}<br>%{x}<br>%{y}<extra></extra>",
    }], layout({
      xaxis: axis(param.name, paramAxis(param, xs)),
      yaxis: axis(objectiveName(m)),
      showlegend: false,
    }));
    const notes = [sampleNote(rows.length, active.length)];
    if (active.length < done.length) {
      notes.push(`${param.name} is active in ${fmtCount(active.length)} of ${fmtCount(done.length)} completed trials.`);
    }
    return notes.filter(Boolean).join(" ");
  }

  // -- contour ----------------------------------------------------------------------------------

  /** Maps values of a parameter to bins: {bin(v) -> index, centers, n}. */
  function binning(param, values, n) {
    if (param.type === "categorical" || values.some((v) => typeof v === "string")) {
      const cats = param.values ? param.values.map(String) : Array.from(new Set(values.map(String)));
      const index = new Map(cats.map((c, i) => [c, i]));
      return { bin: (v) => index.get(String(v)), centers: cats, n: cats.length };
    }
    const log = !!param.log && values.every((v) => v > 0);
    const t = (v) => (log ? Math.log10(v) : v);
    const ts = values.map(t);
    const [lo, hi] = extent(ts);
    const width = (hi - lo) / n || 1;
    const centers = [];
    for (let i = 0; i < n; i++) {
      const c = lo + (i + 0.5) * width;
      centers.push(log ? Math.pow(10, c) : c);
    }
    return {
      bin: (v) => Math.min(n - 1, Math.max(0, Math.floor((t(v) - lo) / width))),
      centers, n,
    };
  }

  function contour(div, m, jx, jy) {
    const params = m.study.parameters;
    if (params.length < 2) return message(div, "A contour needs two parameters; the study has one.");
    if (jx === jy) return message(div, "Pick two different parameters.");
    const px = params[jx], py = params[jy];
    const done = completed(m);
    if (!done.length) return message(div, whyNone(m));
    const both = done.filter((r) => r[m.F.params][jx] !== null && r[m.F.params][jy] !== null);
    if (!both.length) return message(div, `No completed trial has both ${px.name} and ${py.name} active.`);
    const xs = both.map((r) => r[m.F.params][jx]);
    const ys = both.map((r) => r[m.F.params][jy]);
    const zs = both.map((r) => valueOf(m, r));
    const data = [];
    const bx = binning(px, xs, 20), by = binning(py, ys, 20);
    if (both.length >= 3 && new Set(xs).size > 1 && new Set(ys).size > 1) {
      const sum = [], count = [];
      for (let i = 0; i < by.n; i++) { sum.push(new Array(bx.n).fill(0)); count.push(new Array(bx.n).fill(0)); }
      for (let k = 0; k < both.length; k++) {
        const i = by.bin(ys[k]), j = bx.bin(xs[k]);
        sum[i][j] += zs[k];
        count[i][j] += 1;
      }
      const z = sum.map((row, i) => row.map((s, j) => (count[i][j] ? s / count[i][j] : null)));
      data.push({
        type: "contour", x: bx.centers, y: by.centers, z, connectgaps: true,
        colorscale: "Viridis", reversescale: goalOf(m) === "minimize",
        contours: { coloring: "heatmap" }, line: { width: 0.5 },
        colorbar: { title: { text: objectiveName(m) }, thickness: 12 },
        hovertemplate: `${px.name} %{x}<br>${py.name} %{y}<br>mean %{z}<extra></extra>`,
      });
    }
    const shown = sample(both, SAMPLE_LIMIT, m.optimal);
    data.push({
      type: "scatter", mode: "markers", name: "trials",
      x: shown.map((r) => r[m.F.params][jx]), y: shown.map((r) => r[m.F.params][jy]),
      marker: { color: "#ffffff", size: 6, line: { color: "#1d2330", width: 1 } },
      text: shown.map((r) => `trial ${r[0]}: ${fmtNumber(valueOf(m, r))}`),
      hovertemplate: "%{text}<extra></extra>",
    });
    draw(div, data, layout({
      xaxis: axis(px.name, paramAxis(px, xs)),
      yaxis: axis(py.name, paramAxis(py, ys)),
      showlegend: false,
    }));
    const notes = [sampleNote(shown.length, both.length)];
    if (both.length < done.length) {
      notes.push(`${fmtCount(both.length)} of ${fmtCount(done.length)} completed trials have both parameters active.`);
    }
    if (data.length === 1) notes.push("Too few distinct points for a contour yet.");
    else notes.push("Colour: mean value of the trials in each cell, gaps interpolated.");
    return notes.filter(Boolean).join(" ");
  }

  // -- importance -------------------------------------------------------------------------------

  function importance(div, m, answer) {
    if (!answer) return message(div, "Loading…");
    if (answer.error) {
      if (answer.error.reason === "NOT_ENOUGH_TRIALS") {
        return message(div, "Not enough completed trials to rank the parameters yet: " +
          answer.error.message);
      }
      return message(div, `The service could not compute importance (${answer.error.reason || answer.error.code}): ${answer.error.message}`);
    }
    const items = answer.parameters.slice().sort((a, b) => (a.importance || 0) - (b.importance || 0));
    if (!items.length) return message(div, "The study has no parameters.");
    div.style.height = Math.max(260, 26 * items.length + 80) + "px";
    draw(div, [{
      type: "bar", orientation: "h", name: "importance",
      x: items.map((p) => p.importance || 0), y: items.map((p) => p.parameter),
      marker: { color: COLORS.completed },
      text: items.map((p) => ((p.importance || 0) * 100).toFixed(1) + " %"),
      textposition: "outside", cliponaxis: false,
      customdata: items.map((p) => p.active_trials),
      hovertemplate: "%{y}: %{x:.3f}<br>active in %{customdata} trials<extra></extra>",
    }], layout({
      xaxis: axis("importance", { range: [0, Math.max(0.05, ...items.map((p) => p.importance || 0)) * 1.15] }),
      yaxis: axis("", { automargin: true }),
      margin: { l: 20, r: 40, t: 30, b: 50 },
      showlegend: false,
    }));
    return `${answer.method} over ${fmtCount(answer.trial_count)} completed trials, for ${answer.objective}.`;
  }

  // -- Pareto front -----------------------------------------------------------------------------

  function pareto(div, m) {
    const objectives = m.study.objectives;
    if (objectives.length < 2) return message(div, "A Pareto front needs two or more objectives.");
    const k = Math.min(objectives.length, 3);
    const F = m.F;
    const full = (r) => r[F.values] && r[F.values].slice(0, k).every((v) => v !== null);
    const optimal = m.rows.filter((r) => m.optimal.has(r[0]) && full(r));
    const done = m.rows.filter((r) => r[F.state] === COMPLETED && !m.optimal.has(r[0]) && full(r));
    // The service ranks feasible trials only; the others are shown greyed, apart.
    const others = done.filter((r) => !infeasible(m, r));
    const broken = done.filter((r) => infeasible(m, r));
    if (!optimal.length && !done.length) return message(div, whyNone(m));
    const trace = (rows, name, color, size) => {
      const t = {
        name, mode: "markers",
        x: rows.map((r) => r[F.values][0]), y: rows.map((r) => r[F.values][1]),
        text: rows.map((r) => `trial ${r[0]}`),
        marker: { color, size, line: { color: "#ffffff", width: 0.5 } },
        hovertemplate: "%{text}<extra></extra>",
      };
      if (k === 3) { t.type = "scatter3d"; t.z = rows.map((r) => r[F.values][2]); t.marker.size = size - 3; }
      else t.type = others.length + optimal.length > HISTORY_GL && HD.webgl ? "scattergl" : "scatter";
      return t;
    };
    const label = (o) => `${o.name} (${o.goal})`;
    if (k === 3 && !HD.webgl) return message(div, "A 3-D Pareto front needs WebGL, which this browser does not offer.");
    const data = [trace(others, "Other trials", COLORS.other, 7), trace(optimal, "Pareto optimal", COLORS.optimal, 10)];
    if (broken.length) {
      const t = trace(broken, "Infeasible (breaks a constraint)", COLORS.infeasible, 7);
      t.marker.symbol = k === 3 ? "circle-open" : "x";
      t.marker.opacity = 0.6;
      data.unshift(t);
    }
    const lay = k === 3
      ? layout({ scene: { xaxis: { title: { text: label(objectives[0]) } }, yaxis: { title: { text: label(objectives[1]) } }, zaxis: { title: { text: label(objectives[2]) } } }, margin: { l: 0, r: 0, t: 10, b: 10 } })
      : layout({ xaxis: axis(label(objectives[0])), yaxis: axis(label(objectives[1])) });
    draw(div, data, lay);
    const notes = [`${fmtCount(optimal.length)} trial(s) on the front, as the service ranks them.`];
    if (broken.length) notes.push(`${fmtCount(broken.length)} trial(s) break a constraint: greyed, never on the front.`);
    if (objectives.length > 3) notes.push("Drawn over the first three objectives.");
    return notes.join(" ");
  }

  // -- learning curves ----------------------------------------------------------------------

  function curves(div, m, answer) {
    if (!answer) return message(div, "Loading…");
    if (!answer.curves.length) {
      return message(div, answer.error
        ? `The service did not answer: ${answer.error.message}`
        : "No trial reported intermediate measurements (trial.report(value, step)).");
    }
    const F = m.F;
    const k = m.objective;
    const data = [];
    const stopX = [], stopY = [], stopText = [];
    const seen = new Set();
    const styles = {
      [COMPLETED]: ["Completed", COLORS.completed],
      [STOPPED]: ["Stopped", COLORS.stopped],
      [RUNNING]: ["Running", COLORS.running],
      [FAILED]: ["Failed", COLORS.other],
      [INFEASIBLE]: ["Infeasible", COLORS.infeasible],
      [WAITING]: ["Waiting", COLORS.other],
    };
    for (const [number, points] of answer.curves) {
      const row = m.byNumber.get(number);
      const state = row ? row[F.state] : COMPLETED;
      const [name, color] = styles[state] || styles[COMPLETED];
      const xs = [], ys = [];
      for (const p of points) {
        if (p[1 + k] !== null && p[1 + k] !== undefined) { xs.push(p[0]); ys.push(p[1 + k]); }
      }
      if (!xs.length) continue;
      data.push({
        type: "scatter", mode: "lines", name, legendgroup: name, showlegend: !seen.has(name),
        x: xs, y: ys, line: { color, width: 1.2 }, opacity: 0.8,
        hovertemplate: `trial ${number}<br>step %{x}<br>%{y}<extra></extra>`,
      });
      seen.add(name);
      if (state === STOPPED) {
        stopX.push(xs[xs.length - 1]); stopY.push(ys[ys.length - 1]); stopText.push(`trial ${number} stopped`);
      }
    }
    if (!data.length) return message(div, `No intermediate measurement carries ${objectiveName(m)}.`);
    if (stopX.length) {
      data.push({
        type: "scatter", mode: "markers", name: "Stopped here", x: stopX, y: stopY, text: stopText,
        marker: { symbol: "x", size: 9, color: COLORS.stopped, line: { width: 2, color: COLORS.stopped } },
        hovertemplate: "%{text}<br>step %{x}<br>%{y}<extra></extra>",
      });
    }
    draw(div, data, layout({ xaxis: axis("step"), yaxis: axis(objectiveName(m)) }));
    const notes = [];
    if (answer.total > answer.curves.length) {
      notes.push(`Showing the latest ${fmtCount(answer.curves.length)} of ${fmtCount(answer.total)} trials that reported.`);
    }
    if (answer.error) notes.push(`Some curves could not be read: ${answer.error.message}`);
    return notes.join(" ");
  }

  return { history, parcoords, slice, contour, importance, pareto, curves, message };
})();
