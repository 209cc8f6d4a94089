// A study's page: its trials kept up to date without reloads, drawn in tabs.
//
// The page holds every trial as a compact row (fields in `study.trial_fields`). It polls
// /api/studies/ID/trials with the revision and copy ("epoch") it has and the ETag of the last
// answer: nothing changed is a 304; otherwise only the trials changed since come back.
"use strict";

(function () {
  const { el, fmtNumber, fmtCount, fmtDuration, fmtTime } = HD;
  const STATES = ["WAITING", "RUNNING", "COMPLETED", "FAILED", "STOPPED", "INFEASIBLE"];
  const RUNNING = 1, COMPLETED = 2, FAILED = 3;
  const PAGE_SIZE = 100;
  const studyId = HD.config.study;
  const api = "/api/studies/" + encodeURIComponent(studyId);

  const S = {
    epoch: "", revision: 0, etag: null,
    study: null, F: null,
    trials: new Map(), // number -> row
    rows: [], version: 0, rowsVersion: -1,
    optimal: new Set(),
    counts: {}, trialCount: 0, updateTime: null,
    objective: 0,
    tab: "history",
    dirty: new Set(),
    importance: new Map(), // objective -> {completed, answer}
    curves: null, curvesEtag: null, curvesRevision: -1,
    trialPage: 0, trialSort: { key: "number", dir: -1 },
    gone: false,
  };

  // -- the model the charts read --------------------------------------------------------

  function rows() {
    if (S.rowsVersion !== S.version) {
      S.rows = Array.from(S.trials.values()).sort((a, b) => a[0] - b[0]);
      S.rowsVersion = S.version;
    }
    return S.rows;
  }

  function model() {
    return { study: S.study, F: S.F, rows: rows(), byNumber: S.trials, objective: S.objective, optimal: S.optimal };
  }

  // -- header ------------------------------------------------------------------------------

  function describe() {
    const st = S.study;
    const objectives = st.objectives.map((o) => `${o.goal} ${o.name}`).join(", ");
    const parts = [st.algorithm, objectives, `${st.parameters.length} parameter${st.parameters.length === 1 ? "" : "s"}`];
    if (st.lease_timeout) parts.push(`lease ${fmtDuration(st.lease_timeout)}`);
    if (st.early_stopping) parts.push(`early stopping: ${st.early_stopping.rule}`);
    if (st.constraints.length) parts.push("constraints: " + st.constraints.map((c) => c.text).join(", "));
    parts.push(`created ${fmtTime(st.create_time)}`);
    document.getElementById("spec").textContent = parts.join(" · ");
    const pick = document.getElementById("objective");
    if (st.objectives.length > 1 && !pick.options.length) {
      st.objectives.forEach((o, i) => pick.append(el("option", { value: i }, o.name)));
      document.getElementById("objective-pick").hidden = false;
    }
    document.querySelector('[data-tab="pareto"]').hidden = st.objectives.length < 2;
    for (const id of ["slice-param", "contour-x", "contour-y"]) {
      const select = document.getElementById(id);
      if (select.options.length) continue;
      st.parameters.forEach((p, i) => select.append(el("option", { value: i }, p.name)));
    }
    const cy = document.getElementById("contour-y");
    if (st.parameters.length > 1 && cy.value === "0") cy.value = "1";
  }

  function showCounts() {
    const chips = [el("span", { class: "chip", "data-count": "trials" }, "trials ", el("b", {}, fmtCount(S.trialCount)))];
    for (const state of STATES) {
      chips.push(el("span", { class: `chip state-${state}`, "data-count": state },
        state.toLowerCase() + " ", el("b", {}, fmtCount(S.counts[state]))));
    }
    if (S.study && S.study.constraints.length) {
      // Completed, but outside the constraints: counted among the completed, never best.
      const broken = rows().filter((r) => r[S.F.state] === COMPLETED && r[S.F.infeasible]).length;
      chips.push(el("span", { class: "chip state-INFEASIBLE", "data-count": "BROKEN", title: "completed trials whose values break a constraint" },
        "breaking constraints ", el("b", {}, fmtCount(broken))));
    }
    if (S.updateTime) {
      chips.push(el("span", { class: "chip muted", title: fmtTime(S.updateTime) }, "last activity " + HD.ago(S.updateTime)));
    }
    document.getElementById("counts").replaceChildren(...chips);
  }

  // -- tabs ----------------------------------------------------------------------------------

  const TABS = Array.from(document.querySelectorAll("#tabs [data-tab]"));

  function selectTab(name) {
    // Before the study is known, every tab may be asked for (Pareto shows only then).
    const button = TABS.find((b) => b.dataset.tab === name && (!b.hidden || !S.study));
    if (!button) name = "history";
    S.tab = name;
    for (const b of TABS) b.setAttribute("aria-selected", String(b.dataset.tab === name));
    for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
    if (S.study) render();
  }

  for (const b of TABS) {
    b.addEventListener("click", () => {
      history.replaceState(null, "", "#" + b.dataset.tab);
      selectTab(b.dataset.tab);
    });
  }
  window.addEventListener("hashchange", () => selectTab(location.hash.slice(1)));

  // -- rendering -------------------------------------------------------------------------------

  function note(id, text) {
    document.getElementById(id).textContent = text || "";
  }

  /** Draws what the visible tab shows, if its data changed since it was drawn. */
  function render() {
    const tab = S.tab;
    if (tab === "running") renderRunning(); // durations move on at every poll
    if (!S.dirty.has(tab)) return;
    S.dirty.delete(tab);
    const m = model();
    if (tab === "history") note("history-note", HDCharts.history(document.getElementById("history-chart"), m));
    else if (tab === "parameters") renderParameters(m);
    else if (tab === "importance") loadImportance().catch(failed);
    else if (tab === "pareto") note("pareto-note", HDCharts.pareto(document.getElementById("pareto-chart"), m));
    else if (tab === "curves") loadCurves().catch(failed);
    else if (tab === "trials") renderTrials();
  }

  function failed(err) {
    HD.banner("The dashboard did not answer: " + err.message, "error");
    S.dirty.add(S.tab); // try again at the next poll
  }

  function renderParameters(m) {
    note("parcoords-note", HDCharts.parcoords(document.getElementById("parcoords-chart"), m));
    renderSlice(m);
    renderContour(m);
  }

  function renderSlice(m) {
    const j = Number(document.getElementById("slice-param").value || 0);
    note("slice-note", HDCharts.slice(document.getElementById("slice-chart"), m || model(), j));
  }

  function renderContour(m) {
    const jx = Number(document.getElementById("contour-x").value || 0);
    const jy = Number(document.getElementById("contour-y").value || 0);
    note("contour-note", HDCharts.contour(document.getElementById("contour-chart"), m || model(), jx, jy));
  }

  document.getElementById("slice-param").addEventListener("change", () => renderSlice());
  document.getElementById("contour-x").addEventListener("change", () => renderContour());
  document.getElementById("contour-y").addEventListener("change", () => renderContour());
  document.getElementById("objective").addEventListener("change", (event) => {
    S.objective = Number(event.target.value);
    markDirty();
    render();
  });

  function markDirty() {
    for (const b of TABS) S.dirty.add(b.dataset.tab);
  }

  // -- importance and curves: fetched only while their tab is shown ---------------------------

  async function loadImportance() {
    const objective = S.study.objectives[S.objective].name;
    const completed = S.counts.COMPLETED || 0;
    const kept = S.importance.get(objective);
    const div = document.getElementById("importance-chart");
    if (kept && kept.completed === completed) {
      note("importance-note", HDCharts.importance(div, model(), kept.answer));
      return;
    }
    if (!kept) HDCharts.message(div, "Computing…");
    const answer = await HD.getJSON(`${api}/importance?objective=${encodeURIComponent(objective)}`);
    if (answer.status !== 200) return;
    S.importance.set(objective, { completed, answer: answer.data });
    if (S.tab === "importance") note("importance-note", HDCharts.importance(div, model(), answer.data));
  }

  async function loadCurves() {
    const div = document.getElementById("curves-chart");
    if (S.curvesRevision !== S.revision || !S.curves) {
      const answer = await HD.getJSON(`${api}/curves`, S.curvesEtag);
      if (answer.status === 200) {
        S.curves = answer.data;
        S.curvesEtag = answer.etag;
        S.curvesRevision = S.revision;
      } else if (answer.status !== 304) {
        return;
      }
    }
    if (S.tab === "curves") note("curves-note", HDCharts.curves(div, model(), S.curves));
  }

  // -- trials table ------------------------------------------------------------------------

  function cellText(row, key) {
    const F = S.F;
    if (key === "number") return row[0];
    if (key === "state") return STATES[row[F.state]] || "UNKNOWN";
    if (key.startsWith("v:")) return row[F.values] ? row[F.values][Number(key.slice(2))] : null;
    if (key.startsWith("c:")) return row[F.constraints] ? row[F.constraints][Number(key.slice(2))] : null;
    if (key === "feasible") return feasibility(row);
    if (key.startsWith("p:")) return row[F.params][Number(key.slice(2))];
    if (key === "duration") return duration(row);
    if (key === "client") return row[F.client_id];
    if (key === "lease") return row[F.state] === RUNNING ? row[F.lease_expire_time] : null;
    if (key === "reason") return reason(row);
    return null;
  }

  function duration(row) {
    const F = S.F;
    const start = row[F.create_time];
    if (start === null) return null;
    const end = row[F.complete_time] !== null ? row[F.complete_time] : row[F.state] === RUNNING ? HD.now() : null;
    return end === null ? null : end - start;
  }

  /** "infeasible" (INFEASIBLE, or completed outside the constraints), "feasible" (completed
   *  within them), or null for a trial without a result. */
  function feasibility(row) {
    if (row[S.F.infeasible]) return "infeasible";
    return row[S.F.state] === COMPLETED ? "feasible" : null;
  }

  function reason(row) {
    const F = S.F;
    const parts = [];
    if (row[F.failure_reason]) parts.push(row[F.failure_reason]);
    if (row[F.infeasibility_reason]) parts.push(row[F.infeasibility_reason]);
    if (row[F.stop]) parts.push(`stopped by ${row[F.stop][0]} at step ${row[F.stop][1]}`);
    if (row[F.reissued] !== null) parts.push(`point handed out again as #${row[F.reissued]}`);
    if (row[F.original] !== null) parts.push(`re-measures #${row[F.original]}`);
    return parts.join("; ");
  }

  /** Whether the table shows feasibility: the study has constraints, or a trial is infeasible. */
  function showsFeasibility() {
    return S.study.constraints.length > 0 || rows().some((r) => r[S.F.infeasible]);
  }

  function columns() {
    const st = S.study;
    return [
      { key: "number", label: "#", num: true },
      { key: "state", label: "State" },
      ...(showsFeasibility() ? [{ key: "feasible", label: "Feasible" }] : []),
      ...st.objectives.map((o, i) => ({ key: "v:" + i, label: o.name, num: true })),
      ...st.constraints.map((c, i) => ({ key: "c:" + i, label: c.name, num: true, title: c.text })),
      ...st.parameters.map((p, i) => ({ key: "p:" + i, label: p.name, num: p.type !== "categorical" })),
      { key: "duration", label: "Duration", num: true },
      { key: "client", label: "Client" },
      { key: "lease", label: "Lease deadline" },
      { key: "reason", label: "Notes" },
    ];
  }

  function formatCell(col, row, value) {
    if (col.key === "state") return el("td", { class: `state state-${value}` }, value);
    if (col.key === "feasible") return el("td", { class: value ? `feasibility ${value}` : "absent" }, value || "—");
    if (col.key === "duration") return el("td", { class: "num" }, fmtDuration(value));
    if (col.key === "lease") return el("td", {}, value === null ? "" : fmtTime(value));
    if (col.key === "reason") return el("td", { class: "reason" }, value);
    if (value === null || value === undefined) return el("td", { class: (col.num ? "num " : "") + "absent" }, "—");
    return el("td", { class: col.num ? "num" : "" }, col.num ? fmtNumber(value) : value);
  }

  function matches(row, words) {
    if (!words.length) return true;
    const F = S.F;
    const st = S.study;
    const text = [
      "#" + row[0], String(row[0]), STATES[row[F.state]], row[F.client_id], reason(row), feasibility(row) || "",
      ...st.parameters.map((p, i) => `${p.name}=${row[F.params][i] === null ? "" : row[F.params][i]}`),
    ].join(" ").toLowerCase();
    return words.every((w) => text.includes(w));
  }

  function renderTrials() {
    const table = document.getElementById("trials-table");
    const cols = columns();
    const state = document.getElementById("trial-state").value;
    const feasible = document.getElementById("trial-feasibility").value;
    const words = document.getElementById("trial-filter").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const all = rows();
    const code = STATES.indexOf(state);
    const shown = all.filter((r) => (code < 0 || r[S.F.state] === code) &&
      (!feasible || feasibility(r) === feasible) && matches(r, words));
    const { key, dir } = S.trialSort;
    shown.sort((a, b) => dir * HD.compare(cellText(a, key), cellText(b, key)) || b[0] - a[0]);
    const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    S.trialPage = Math.min(S.trialPage, pages - 1);
    const page = shown.slice(S.trialPage * PAGE_SIZE, (S.trialPage + 1) * PAGE_SIZE);
    const head = el("tr", {}, ...cols.map((c) => el("th", {
      "data-key": c.key, scope: "col", class: c.num ? "num" : "", title: c.title || "",
      "aria-sort": c.key === key ? (dir > 0 ? "ascending" : "descending") : "none",
    }, c.label)));
    table.classList.add("sortable");
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(...page.map((row) => el("tr", { "data-number": row[0] },
      ...cols.map((c) => formatCell(c, row, cellText(row, c.key))))));
    document.getElementById("trial-summary").textContent =
      `${fmtCount(shown.length)} of ${fmtCount(all.length)} trials`;
    const pager = document.getElementById("trial-pager");
    const prev = el("button", { type: "button", disabled: S.trialPage === 0 }, "← newer");
    const next = el("button", { type: "button", disabled: S.trialPage >= pages - 1 }, "older →");
    prev.addEventListener("click", () => { S.trialPage--; renderTrials(); });
    next.addEventListener("click", () => { S.trialPage++; renderTrials(); });
    pager.replaceChildren(prev, el("span", {}, `page ${S.trialPage + 1} of ${pages}`), next);
  }

  document.getElementById("trials-table").tHead.addEventListener("click", (event) => {
    const th = event.target.closest("th");
    if (!th) return;
    const sort = S.trialSort;
    if (sort.key === th.dataset.key) sort.dir = -sort.dir;
    else { sort.key = th.dataset.key; sort.dir = th.dataset.key === "number" ? -1 : 1; }
    renderTrials();
  });
  let typing = null;
  document.getElementById("trial-filter").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { S.trialPage = 0; renderTrials(); }, 150);
  });
  for (const id of ["trial-state", "trial-feasibility"]) {
    document.getElementById(id).addEventListener("change", () => { S.trialPage = 0; renderTrials(); });
  }

  // -- running work ------------------------------------------------------------------------

  function params(row, limit) {
    const st = S.study;
    const out = [];
    st.parameters.forEach((p, i) => {
      const v = row[S.F.params][i];
      if (v !== null) out.push(`${p.name}=${typeof v === "number" ? fmtNumber(v) : v}`);
    });
    return out.length > limit ? out.slice(0, limit).join(", ") + ` … (+${out.length - limit})` : out.join(", ");
  }

  function table(id, heads, bodyRows) {
    const node = document.getElementById(id);
    node.tHead.replaceChildren(el("tr", {}, ...heads.map(([label, num]) => el("th", { scope: "col", class: num ? "num" : "" }, label))));
    node.tBodies[0].replaceChildren(...bodyRows);
  }

  function renderRunning() {
    const F = S.F;
    const now = HD.now();
    const lease = S.study.lease_timeout;
    const running = rows().filter((r) => r[F.state] === RUNNING)
      .sort((a, b) => (a[F.create_time] || 0) - (b[F.create_time] || 0));
    table("running-table",
      [["#", true], ["Client", false], ["Running for", true], ["Since last heartbeat", true], ["Lease deadline", false], ["Parameters", false]],
      running.map((r) => {
        const deadline = r[F.lease_expire_time];
        const beat = deadline !== null && lease ? now - (deadline - lease) : null;
        const left = deadline !== null ? deadline - now : null;
        return el("tr", { "data-number": r[0] },
          el("td", { class: "num" }, r[0]),
          el("td", {}, r[F.client_id] || "—"),
          el("td", { class: "num" }, fmtDuration(r[F.create_time] !== null ? now - r[F.create_time] : null)),
          el("td", { class: "num" }, fmtDuration(beat)),
          el("td", { class: left !== null && left < 0 ? "overdue" : "" },
            deadline === null ? "—" : `${fmtTime(deadline)} (${left < 0 ? "overdue by " + fmtDuration(-left) : "in " + fmtDuration(left)})`),
          el("td", { class: "reason" }, params(r, 6)));
      }));
    note("running-note", running.length
      ? `${fmtCount(running.length)} trial(s) running. A worker renews its lease with heartbeats; ` +
        (lease ? `a lease runs ${fmtDuration(lease)} from the last one.` : "")
      : "No trial is running.");
    const expired = rows().filter((r) => r[F.state] === FAILED &&
        (r[F.reissued] !== null || /lease expired/i.test(r[F.failure_reason])))
      .sort((a, b) => b[0] - a[0]);
    table("expired-table",
      [["#", true], ["Client", false], ["Failed at", false], ["Point handed out again as", false], ["Reason", false]],
      expired.slice(0, 100).map((r) => el("tr", { "data-number": r[0] },
        el("td", { class: "num" }, r[0]),
        el("td", {}, r[F.client_id] || "—"),
        el("td", {}, fmtTime(r[F.complete_time])),
        el("td", {}, r[F.reissued] !== null ? "#" + r[F.reissued] : "—"),
        el("td", { class: "reason" }, r[F.failure_reason]))));
    note("expired-note", expired.length
      ? `${fmtCount(expired.length)} trial(s) lost their lease (their worker stopped heartbeating)` +
        (expired.length > 100 ? "; the latest 100 are listed." : ".")
      : "No lease has expired.");
  }

  // -- polling -------------------------------------------------------------------------------

  function apply(data) {
    HD.setServerNow(data.now);
    if (data.reset) {
      // A full answer: the first, or one for a new copy (a restarted dashboard, a study
      // created again under this id), which brings the spec again.
      const first = !S.study;
      S.study = data.study;
      S.F = Object.fromEntries(data.study.trial_fields.map((name, i) => [name, i]));
      describe();
      if (first) selectTab(S.tab); // a tab the study lacks (Pareto of one objective) falls back
      S.trials.clear();
      S.curves = null;
      S.curvesEtag = null;
      S.importance.clear();
    }
    for (const row of data.trials) S.trials.set(row[0], row);
    S.epoch = data.epoch;
    S.revision = data.revision;
    S.optimal = new Set(data.optimal);
    S.counts = data.counts;
    S.trialCount = data.trial_count;
    S.updateTime = data.update_time;
    S.version++;
    showCounts();
    if (data.error) {
      HD.banner(`The service did not answer (${data.error.reason || data.error.code}): ${data.error.message}. ` +
        "Showing the trials read last.", "error");
      HD.live("service unavailable", "error");
    } else {
      HD.banner("");
      HD.live("live · revision " + data.revision, "ok");
    }
  }

  async function refresh() {
    if (S.gone) return;
    const url = `${api}/trials?since=${S.revision}&epoch=${encodeURIComponent(S.epoch)}`;
    const answer = await HD.getJSON(url, S.etag);
    if (answer.status === 304) {
      HD.live("live · revision " + S.revision, "ok");
      showCounts(); // "last activity" moves on
      if (S.tab === "running") renderRunning();
      return;
    }
    if (answer.status === 404) {
      S.gone = true;
      HD.banner("This study no longer exists (or the dashboard's token can no longer read it).", "error");
      HD.live("study gone", "error");
      return;
    }
    if (answer.status !== 200) {
      HD.banner(`The dashboard could not read the study: ${answer.data && answer.data.error ? answer.data.error.message : answer.status}`, "error");
      HD.live("service unavailable", "error");
      return;
    }
    S.etag = answer.etag;
    const changed = answer.data.trials.length > 0 || answer.data.reset;
    apply(answer.data);
    if (changed || answer.data.optimal.length) markDirty();
    render();
  }

  selectTab((location.hash || "#history").slice(1));
  HD.poll(refresh, HD.config.pollMs);
})();
