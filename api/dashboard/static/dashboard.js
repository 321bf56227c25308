/* hpsearch dashboard: hands the server-built ECharts options to the charts, keeps pages live.
   Every plot is built on the server (api/dashboard/figures.py); this file only draws, polls
   and renders the leaderboard the user sorts and filters. */
"use strict";
const hps = (() => {
  const POLL_MS = 1000;
  const ready = new Promise((resolve) => {
    if (document.readyState !== "loading") resolve();
    else document.addEventListener("DOMContentLoaded", resolve, { once: true });
  });
  const $ = (selector) => document.querySelector(selector);
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const escape = (text) =>
    String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  const renderers = {
    // one bar per trial on its worker's lane (custom series: [lane, start ms, end ms, number])
    timelineBar(params, api) {
      const lane = api.value(0);
      const start = api.coord([api.value(1), lane]);
      const end = api.coord([api.value(2), lane]);
      const height = api.size([0, 1])[1] * 0.6;
      const box = params.coordSys;
      const shape = echarts.graphic.clipRectByRect(
        { x: start[0], y: start[1] - height / 2, width: Math.max(end[0] - start[0], 1), height },
        { x: box.x, y: box.y, width: box.width, height: box.height });
      return shape && { type: "rect", shape, style: api.style() };
    },
  };

  function pointCount(option) {
    return (option.series || []).reduce((n, s) => n + (s.data ? s.data.length : 0), 0);
  }

  /** Draw (or redraw) `option` in `el`; `data-points` then says how many items it holds. */
  function draw(el, option) {
    if (!el || !option) return;
    for (const s of option.series || []) {
      if (typeof s.renderItem === "string") s.renderItem = renderers[s.renderItem];
    }
    const chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
    chart.setOption(option, { notMerge: true });
    el.dataset.points = String(pointCount(option));
    el.dataset.drawnMs = String(Math.round(performance.now())); // since navigation started
  }

  window.addEventListener("resize", () => {
    document.querySelectorAll("[_echarts_instance_]").forEach((el) => echarts.getInstanceByDom(el).resize());
  });

  async function getJSON(url, init) {
    const response = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" }, ...init });
    if (response.status === 401) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      throw new Error("signed out");
    }
    const body = await response.json();
    if (!response.ok) {
      const error = new Error(typeof body.detail === "string" ? body.detail : response.statusText);
      error.retryAfter = Number(response.headers.get("retry-after") || 0);
      error.body = body;
      throw error;
    }
    return body;
  }

  /** Run `work` every `ms` (never two at once); back off on errors, as Retry-After says. */
  function every(ms, work) {
    let wait = ms;
    let stopped = false;
    const tick = async () => {
      try {
        if ((await work()) === false) stopped = true;
        wait = ms;
      } catch (error) {
        wait = Math.min(Math.max(wait * 2, (error.retryAfter || 0) * 1000), 30000);
      }
      if (!stopped) setTimeout(tick, wait);
    };
    setTimeout(tick, ms);
  }

  function figuresFromPage() {
    const script = $("#figures");
    return script ? JSON.parse(script.textContent) : {};
  }

  /** Pages whose figures come with the HTML (`#figures`, one `[data-figure]` per plot). */
  async function staticFigures() {
    const figures = figuresFromPage();
    await ready;
    document.querySelectorAll("[data-figure]").forEach((el) => draw(el, figures[el.dataset.figure]));
  }

  function jobsPage() {
    const table = $("#jobs");
    const button = $("#compare");
    const picked = () => [...table.querySelectorAll(".pick:checked")].map((box) => box.value);
    table.addEventListener("change", () => { button.disabled = picked().length < 2; });
    button.addEventListener("click", () => {
      location.href = "/compare?" + picked().map((id) => "jobs=" + encodeURIComponent(id)).join("&");
    });
    let last = null;
    every(2 * POLL_MS, async () => {
      const rows = await getJSON(table.dataset.live);
      if (rows.html === last) return;
      const keep = new Set(picked());
      last = rows.html;
      table.tBodies[0].innerHTML = rows.html;
      table.querySelectorAll(".pick").forEach((box) => { box.checked = keep.has(box.value); });
    });
  }

  function formatValue(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "number" && !Number.isInteger(value)) return Number(value.toPrecision(4)).toString();
    return String(value);
  }

  function jobPage(jobId) {
    const base = `/ui/data/jobs/${encodeURIComponent(jobId)}`;
    const first = getJSON(base); // asked for at once, while the charting library loads
    const state = { data: null, picked: new Set(), metric: null, sort: "score", descending: null,
      status: "", showAll: false, importanceAt: -1 };

    function leaderboard() {
      const data = state.data;
      const maximize = data.state.direction === "max";
      const columns = [["number", "#"], ["status", "status"], ["score", "score"], ["epochs", "epochs"],
        ["duration_s", "seconds"], ["health", "health"], ...data.params.map((p) => ["param:" + p, p]),
        ["model_rank", "model"]];
      const value = (t, key) => (key.startsWith("param:") ? t.params[key.slice(6)] : key === "health" ? t.health.join(",") : t[key]);
      const descending = state.descending ?? (state.sort === "score" ? maximize : false);
      const rows = data.trials.filter((t) => !state.status || t.status === state.status);
      rows.sort((a, b) => {
        const x = value(a, state.sort), y = value(b, state.sort);
        if (x === y) return a.number - b.number;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
        return descending ? -order : order;
      });
      const shown = state.showAll ? rows : rows.slice(0, 100);
      const table = $("#leaderboard");
      table.tHead.innerHTML = "<tr><th>curve</th>" + columns.map(([key, label]) =>
        `<th data-key="${escape(key)}" class="sortable${key === state.sort ? (descending ? " desc" : " asc") : ""}">${escape(label)}</th>`).join("") + "</tr>";
      table.tBodies[0].innerHTML = shown.map((t) => {
        const link = `/jobs/${encodeURIComponent(jobId)}/trials/${t.number}`;
        const cells = columns.map(([key]) => {
          if (key === "number") return `<td><a href="${link}">${t.number}</a>${t.confirms === null || t.confirms === undefined ? "" : ` <span class="muted" title="a confirmation run of trial ${t.confirms}">↻${t.confirms}</span>`}</td>`;
          if (key === "status") return `<td><span class="status ${escape(t.status)}" title="${escape(t.reason || "")}">${escape(t.status)}</span></td>`;
          if (key === "model_rank") return `<td>${t.model_rank ? `<a href="${link}/model">#${t.model_rank}</a>` : ""}</td>`;
          if (key === "health") return `<td>${t.health.map((code) => `<span class="status ${code === "healthy" ? "completed" : "running"}">${escape(code.replace(/_/g, " "))}</span>`).join(" ")}</td>`;
          return `<td>${escape(formatValue(value(t, key)))}</td>`;
        }).join("");
        const checked = state.picked.has(t.number) ? " checked" : "";
        return `<tr data-trial="${t.number}"><td><input type="checkbox" class="pick" value="${t.number}"${checked} aria-label="curve of trial ${t.number}"></td>${cells}</tr>`;
      }).join("");
      $("#trial-count").textContent = `${rows.length} of ${data.trials.length} trials` + (shown.length < rows.length ? `, the first ${shown.length} shown` : "");
      $("#show-all").hidden = shown.length >= rows.length;
    }

    async function curves() {
      const numbers = state.picked.size ? [...state.picked] : state.data.best;
      if (!numbers.length) return;
      const query = `trials=${numbers.slice(0, 20).join(",")}` + (state.metric ? `&metric=${encodeURIComponent(state.metric)}` : "");
      const found = await getJSON(`${base}/curves?${query}`);
      const select = $("#curve-metric");
      select.innerHTML = found.metrics.map((m) => `<option${m === found.metric ? " selected" : ""}>${escape(m)}</option>`).join("");
      $("#curve-note").textContent = state.picked.size
        ? `Trials ${found.trials.join(", ")} (dashed: training, solid: validation).`
        : `The best trials: ${found.trials.join(", ")} (dashed: training, solid: validation). Tick trials in the leaderboard to choose others.`;
      draw($("#chart-curves"), found.figure);
    }

    function showImportance(found) {
      state.importanceAt = found.trials;
      if (found.figure) {
        draw($("#chart-importance"), found.figure);
        $("#importance-note").textContent = `Optuna's PED-ANOVA on ${found.trials} completed trials.`;
      } else {
        $("#importance-note").textContent = "Needs at least 4 completed trials whose hyperparameters vary.";
      }
    }

    function showHealth(health) {
      $("#health-card").hidden = !health.judged;
      $("#health-counts").innerHTML = `${health.judged} trials judged: ` + Object.entries(health.counts).map(([code, n]) =>
        `<span class="status ${code === "healthy" ? "completed" : "running"}">${escape(code.replace(/_/g, " "))} ${n}</span>`).join(" ");
      $("#health-advice").innerHTML = health.advice.map((line) => `<li>${escape(line)}</li>`).join("");
    }

    // a technique study: each variant's mean and interval over its seeds, against the baseline
    function showStudy(study) {
      $("#study-card").hidden = !study;
      if (!study) return;
      // the cells come formatted from the server (the terminal's table, studies/table.py)
      $("#study-title").textContent = study.title;
      const row = (cells, tag) => `<tr>${cells.map((c) => `<${tag}>${escape(String(c))}</${tag}>`).join("")}</tr>`;
      $("#study-table").innerHTML = `<thead>${row(study.columns, "th")}</thead><tbody>${study.rows.map((r) => row(r, "td")).join("")}</tbody>`;
      $("#study-reading").innerHTML = study.reading.map((line) => `<li>${escape(line)}</li>`).join("");
      draw($("#chart-study"), study.figures.means);
      draw($("#chart-study-curves"), study.figures.curves);
    }

    function show(data) {
      state.data = data;
      $("#job-state").innerHTML = data.state_html;
      showHealth(data.health);
      showStudy(data.study);
      const figures = data.figures;
      draw($("#chart-history"), figures.history); // the first view: drawn before anything else
      const slices = $("#slices");
      while (slices.children.length < figures.slices.length) {
        const el = document.createElement("div");
        el.className = "chart small";
        slices.appendChild(el);
        visible.observe(el);
      }
      figures.slices.forEach((option, i) => { slices.children[i].option = option; });
      return nextFrame().then(() => {
        draw($("#chart-history-time"), figures.history_time);
        leaderboard();
        return nextFrame();
      }).then(() => {
        draw($("#chart-parallel"), figures.parallel);
        draw($("#chart-timeline"), figures.timeline);
        [...slices.children].forEach((el) => { if (el.dataset.points) draw(el, el.option); });
      });
    }

    // slices are drawn once scrolled into view (a dozen plots of every trial)
    const visible = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting && entry.target.option && !entry.target.dataset.points) {
          draw(entry.target, entry.target.option);
        }
      }
    }, { rootMargin: "200px" });

    // The best trials' curves are asked for again only when the best trials change (ended
    // trials' epochs do not). Importance comes with the data (computed once per job however many
    // watch it); only a job too big to compute it with every page leaves it out, and then the
    // page asks for it when more trials completed, at most every IMPORTANCE_MS.
    const IMPORTANCE_MS = 10000;
    async function refresh(data) {
      await show(data);
      const work = [];
      const best = data.best.join(",");
      if (!state.picked.size && best !== state.curvesOf) {
        state.curvesOf = best;
        work.push(curves());
      }
      const completed = data.state.counts.completed;
      const due = Date.now() - (state.importanceTime || 0) >= IMPORTANCE_MS;
      if (data.importance) {
        if (data.importance.trials !== state.importanceAt) showImportance(data.importance);
      } else if (completed !== state.importanceAt && (due || data.state.is_final)) {
        state.importanceTime = Date.now();
        work.push(getJSON(`${base}/importance`).then(showImportance));
      }
      await Promise.all(work);
    }

    (async () => {
      const data = await first;
      await ready;
      await refresh(data);
      $("#leaderboard").tHead.addEventListener("click", (event) => {
        const key = event.target.dataset && event.target.dataset.key;
        if (!key) return;
        state.descending = state.sort === key ? !(state.descending ?? (key === "score" && data.state.direction === "max")) : null;
        state.sort = key;
        leaderboard();
      });
      $("#leaderboard").tBodies[0].addEventListener("change", (event) => {
        const n = Number(event.target.value);
        if (event.target.checked) state.picked.add(n); else state.picked.delete(n);
        curves();
      });
      $("#trial-status").addEventListener("change", (event) => { state.status = event.target.value; leaderboard(); });
      $("#show-all").addEventListener("click", () => { state.showAll = true; leaderboard(); });
      $("#curve-metric").addEventListener("change", (event) => { state.metric = event.target.value; curves(); });
      $("#leaderboard").tBodies[0].addEventListener("change", () => { state.curvesOf = null; });
      follow();
    })();

    // The job's new versions are pushed (one connection per page, server-sent events); the page
    // then fetches the data of the latest (built and gzipped once per version on the server),
    // one fetch at a time however many versions arrive meanwhile, and tries again (backing off,
    // as Retry-After says) until it has it: the last version of a job comes once. Polling the
    // version every second is the fallback when the stream cannot be had.
    const SPREAD_MS = 300;
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    function follow() {
      if (state.data.state.is_final) return; // an ended job changes no more
      if (!window.EventSource) return poll();
      const source = new EventSource(`${base}/stream?since=${encodeURIComponent(state.data.version)}`);
      let wanted = state.data.version;
      let busy = false;
      async function catchUp() {
        if (busy) return;
        busy = true;
        let wait = 500;
        try {
          while (wanted !== state.data.version && !state.data.state.is_final) {
            try {
              await refresh(await getJSON(`${base}?v=${encodeURIComponent(wanted)}`));
              wait = 500; // another API process may serve the previous version for a moment
            } catch (error) {
              wait = Math.min(Math.max(wait * 2, (error.retryAfter || 0) * 1000), 30000);
            }
            if (wanted !== state.data.version) await sleep(wait);
          }
        } finally {
          busy = false;
        }
      }
      source.addEventListener("version", (event) => {
        wanted = JSON.parse(event.data).version;
        // every open page of the job hears it at once: spread their fetches a little
        setTimeout(catchUp, Math.random() * SPREAD_MS);
      });
      source.addEventListener("end", () => source.close());
      source.onerror = () => { if (source.readyState === EventSource.CLOSED) poll(); };
    }

    function poll() {
      every(POLL_MS, async () => {
        if (state.data.state.is_final) return false;
        const { version } = await getJSON(`${base}/version`);
        if (version !== state.data.version) await refresh(await getJSON(base));
      });
    }
  }

  function trialPage(jobId, number, jobFinal, trialActive) {
    staticFigures();
    const form = $("#predict");
    if (form) {
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const out = $("#prediction");
        out.hidden = false;
        try {
          const rows = JSON.parse(form.rows.value);
          const body = { rows, rank: Number(form.dataset.rank), mc_samples: Number(form.mc_samples.value || 0) };
          const found = await getJSON(`/ui/data/jobs/${encodeURIComponent(jobId)}/predict`, {
            method: "POST", body: JSON.stringify(body),
            headers: { "content-type": "application/json", accept: "application/json" } });
          out.textContent = JSON.stringify(found, null, 2);
          out.classList.remove("error");
        } catch (error) {
          out.textContent = error.body ? JSON.stringify(error.body, null, 2) : String(error.message || error);
          out.classList.add("error");
        }
      });
    }
    if (trialActive && !jobFinal) {
      // a running trial's page shows each new epoch: it reloads when the trial moves
      let seen = null;
      every(POLL_MS, async () => {
        const { version } = await getJSON(`/ui/data/jobs/${encodeURIComponent(jobId)}/trials/${number}/version`);
        if (seen !== null && version !== seen) location.reload();
        seen = version;
      });
    }
  }

  return { draw, jobsPage, jobPage, trialPage, staticFigures };
})();
