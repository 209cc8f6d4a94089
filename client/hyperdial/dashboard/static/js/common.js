// hyperdial dashboard: helpers every page uses (no framework, no build step).
"use strict";

window.HD = (function () {
  const body = document.body;
  const config = {
    pollMs: Number(body.dataset.pollMs || 2000),
    target: body.dataset.target || "",
    namespace: body.dataset.namespace || "",
    study: body.dataset.study || "",
  };

  /** Makes an element: el("td", {class: "num"}, "3", otherNode). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  /** A number for people: 4 significant digits, exponent form when very small or large. */
  function fmtNumber(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value) && Math.abs(value) < 1e9) return value.toLocaleString("en-US");
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
    return Number(value.toPrecision(4)).toString();
  }

  function fmtCount(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  /** Seconds as "2 h 05 m", "3 m 07 s", "12 s", "0.4 s". */
  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
    const sign = seconds < 0 ? "−" : "";
    let s = Math.abs(seconds);
    if (s < 10) return sign + s.toFixed(1) + " s";
    s = Math.round(s);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    if (d) return `${sign}${d} d ${two(h)} h`;
    if (h) return `${sign}${h} h ${two(m)} m`;
    if (m) return `${sign}${m} m ${two(sec)} s`;
    return `${sign}${sec} s`;
  }

  /** Epoch seconds as local date and time, "2025-01-31 14:03:05". */
  function fmtTime(epoch) {
    if (epoch === null || epoch === undefined) return "—";
    const d = new Date(epoch * 1000);
    const two = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
      `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  }

  // The dashboard's clock, as the responses tell it: durations never depend on the browser's.
  let clockOffset = 0;
  function setServerNow(epoch) {
    if (typeof epoch === "number") clockOffset = epoch - Date.now() / 1000;
  }
  function now() {
    return Date.now() / 1000 + clockOffset;
  }

  function ago(epoch) {
    if (epoch === null || epoch === undefined) return "—";
    return fmtDuration(now() - epoch) + " ago";
  }

  /** The live indicator of the top bar. */
  function live(text, kind) {
    const node = document.getElementById("live");
    if (!node) return;
    node.textContent = text;
    node.className = "live " + (kind || "");
  }

  /** A message above the page; kind "error" or "" (a note); empty text hides it. */
  function banner(text, kind) {
    const node = document.getElementById("banner");
    if (!node) return;
    node.hidden = !text;
    node.textContent = text || "";
    node.className = "banner " + (kind || "");
  }

  /**
   * GETs JSON, sending the ETag of the last answer: {status: 304} when nothing changed,
   * else {status, etag, data}.
   */
  async function getJSON(url, etag) {
    const headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    const response = await fetch(url, { headers, cache: "no-store" });
    if (response.status === 304) return { status: 304, etag };
    const data = await response.json();
    return { status: response.status, etag: response.headers.get("ETag"), data };
  }

  /**
   * Calls `step` now and then every `ms` after the previous call ended, while the page is
   * visible (a hidden tab costs the dashboard and the service nothing).
   */
  function poll(step, ms) {
    let timer = null;
    let running = false;
    async function tick() {
      timer = null;
      if (document.visibilityState === "hidden") return;
      running = true;
      try {
        await step();
      } catch (err) {
        live("dashboard unreachable", "error");
        banner("The dashboard did not answer: " + err.message + ". Retrying…", "error");
      } finally {
        running = false;
      }
      schedule();
    }
    function schedule() {
      if (timer === null && !running) timer = setTimeout(tick, ms);
    }
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && timer === null && !running) tick();
    });
    tick();
  }

  /** Whether this browser can draw WebGL charts (parallel coordinates, 3-D, scattergl). */
  const webgl = (function () {
    try {
      const canvas = document.createElement("canvas");
      return !!(window.WebGLRenderingContext &&
        (canvas.getContext("webgl") || canvas.getContext("experimental-webgl")));
    } catch (err) {
      return false;
    }
  })();

  function showWhere() {
    const node = document.getElementById("where");
    if (!node) return;
    const parts = [];
    if (config.target) parts.push(config.target);
    if (config.namespace) parts.push("namespace " + config.namespace);
    node.textContent = parts.join(" · ");
  }
  showWhere();

  /** Sorts rows (arrays of values) by a column: numbers as numbers, null last. */
  function compare(a, b) {
    const an = a === null || a === undefined || a === "";
    const bn = b === null || b === undefined || b === "";
    if (an || bn) return an === bn ? 0 : an ? 1 : -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), "en", { numeric: true });
  }

  return {
    config, el, fmtNumber, fmtCount, fmtDuration, fmtTime, ago, now, setServerNow,
    live, banner, getJSON, poll, webgl, compare,
  };
})();
