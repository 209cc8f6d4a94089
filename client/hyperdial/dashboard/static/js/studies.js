// The Studies page: every study the dashboard's token sees, sortable, filterable, live.
"use strict";

(function () {
  const { el, fmtNumber, fmtCount, ago, fmtTime } = HD;
  const STATES = ["WAITING", "RUNNING", "COMPLETED", "FAILED", "STOPPED", "INFEASIBLE"];
  const table = document.getElementById("studies");
  const tbody = table.querySelector("tbody");
  const filter = document.getElementById("filter");
  let studies = [];
  let etag = null;
  let sortKey = "update_time";
  let sortDir = -1; // newest activity first

  function key(study, name) {
    if (STATES.includes(name)) return study.counts[name];
    if (name === "objectives") return study.objectives.map((o) => o.name).join(", ");
    if (name === "best") return study.best ? (study.best.value ?? study.best.front ?? null) : null;
    return study[name];
  }

  function bestCell(study) {
    const best = study.best;
    if (!best) return el("td", { class: "num muted" }, "—");
    if (best.front !== undefined) {
      return el("td", { class: "num", title: "trials on the Pareto front" }, `front of ${fmtCount(best.front)}`);
    }
    return el("td", { class: "num", title: `trial ${best.trial}` }, fmtNumber(best.value));
  }

  function render() {
    const words = filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const shown = studies.filter((s) => {
      const text = [s.id, s.namespace || "", s.algorithm, ...s.objectives.map((o) => o.name)]
        .join(" ").toLowerCase();
      return words.every((w) => text.includes(w));
    });
    shown.sort((a, b) => sortDir * HD.compare(key(a, sortKey), key(b, sortKey)) ||
      HD.compare(a.id, b.id));
    const rows = shown.map((s) => el("tr", { "data-study": s.id },
      el("td", {}, el("a", { href: "/studies/" + encodeURIComponent(s.id) }, s.id)),
      el("td", { class: "muted" }, s.namespace || "—"),
      el("td", {}, s.algorithm),
      el("td", {}, s.objectives.map((o) => `${o.name} (${o.goal === "maximize" ? "max" : "min"})`).join(", ")),
      ...STATES.map((st) => el("td", { class: "num" + (s.counts[st] ? "" : " muted") }, fmtCount(s.counts[st]))),
      bestCell(s),
      el("td", { title: fmtTime(s.update_time) }, ago(s.update_time)),
    ));
    tbody.replaceChildren(...rows);
    document.getElementById("empty").hidden = studies.length > 0;
    document.getElementById("summary").textContent = studies.length
      ? `${fmtCount(shown.length)} of ${fmtCount(studies.length)} studies`
      : "";
    for (const th of table.querySelectorAll("th")) {
      th.setAttribute("aria-sort", th.dataset.key === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
    }
  }

  table.querySelector("thead").addEventListener("click", (event) => {
    const th = event.target.closest("th");
    if (!th) return;
    if (th.dataset.key === sortKey) sortDir = -sortDir;
    else {
      sortKey = th.dataset.key;
      sortDir = ["id", "namespace", "algorithm", "objectives"].includes(sortKey) ? 1 : -1;
    }
    render();
  });
  filter.addEventListener("input", render);

  async function refresh() {
    const answer = await HD.getJSON("/api/studies", etag);
    if (answer.status === 304) {
      HD.live("live · " + new Date().toLocaleTimeString(), "ok");
      render(); // "last activity" moves on
      return;
    }
    etag = answer.etag;
    const data = answer.data;
    HD.setServerNow(data.now);
    studies = data.studies;
    if (data.error) {
      HD.banner(`The service did not answer (${data.error.reason || data.error.code}): ` +
        `${data.error.message}. Showing the last list read.`, "error");
      HD.live("service unavailable", "error");
    } else {
      HD.banner("");
      HD.live("live · " + new Date().toLocaleTimeString(), "ok");
    }
    render();
  }

  HD.poll(refresh, Math.max(HD.config.pollMs, 2000));
})();
