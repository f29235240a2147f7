// The job page's self-contained parts: stage chips, the time estimate, notices and the
// regenerate dialog. status.html wires them to the status stream; each stands on its own.
const jobPage = {
  // The pipeline's stages in order and the models that do not read feedback (GET /api/v1/config),
  // fetched once; a failed fetch is not kept, so the next call asks again.
  configAnswer: null,
  config() {
    jobPage.configAnswer ??= t2m.api("/api/v1/config").catch((e) => { jobPage.configAnswer = null; throw e; });
    return jobPage.configAnswer;
  },

  // One chip per stage, in pipeline order: done, current (red where a job failed, amber where it
  // was cancelled) or skipped — a stage this job never runs: retrieving without RAG, and every
  // stage of a job answered from an identical one's finished video.
  stageChips(order, s, request) {
    const p = s.progress;
    const skipped = (st) => (st === "retrieving" && request && !request.use_rag)
      || (s.reused_from && !["queued", "completed"].includes(st));
    const stopped = { failed: "failed", cancelled: "stopped", completed: "done" }[s.status];
    return order.map((st) => {
      const state = skipped(st) ? "skipped"
        : p.stages_completed.includes(st) ? "done"
        : st === p.current_stage ? (stopped || "current") : "";
      const label = state === "skipped" ? `${t2m.label(st)} · skipped` : t2m.label(st);
      return t2m.el("li", { class: state, "data-stage": st, title: state || "to come" }, label);
    });
  },

  // A notice (what the page is doing on the user's request, e.g. a regenerate; why the job or its
  // live status waits), shown apart from errors: neutral, not the red error banner.
  notice(msg) { const n = document.getElementById("notice"); n.textContent = msg || ""; n.hidden = !msg; },

  // Ask what should change in a scene, in the page's <dialog>; resolves to the feedback, or null
  // when cancelled. It says so when the model in use does not read feedback.
  askFeedback(scene, model, ignoresFeedback) {
    const dialog = document.getElementById("feedback-dialog");
    const text = document.getElementById("feedback-text");
    document.getElementById("feedback-title").textContent = `Regenerate scene ${scene.index + 1}: ${scene.title}`;
    const note = document.getElementById("feedback-note");
    note.textContent = ignoresFeedback
      ? `The model in use (${model}) does not read feedback: the scene is made again the same way.` : "";
    note.hidden = !ignoresFeedback;
    text.value = "";
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        resolve(dialog.returnValue === "regenerate" && text.value.trim() ? text.value : null);
      }, { once: true });
    });
  },
};

// The time estimate, from what this page measured of the current run (or retry, or regenerate):
// not from the job's creation, which counts queueing and earlier runs. Two estimates, blended by
// the share of scenes finished, as each is wrong where the other is not:
//  - as long again: a run takes about twice what it has taken so far (nothing else is known
//    before its first scene is done; on its own it over-counts late in the run);
//  - the rate of finished scenes: open scenes × time per finished scene (scenes render a few at a
//    time, the workers' render slots, so the rate holds from one wave to the next), plus a share
//    for composing — off either way while few scenes are done (a short scene first: 2 s left said
//    where 4.2 s were, with the status seen as it changed; the first of a wave: too long).
// A run's time starts when it leaves the queue, as this page saw it (the run's origin — creation,
// the retry or the regenerate — when the page opened on a run already at work).
class JobEta {
  static ENDED = new Set(["done", "failed", "cancelled"]);
  static TERMINAL = new Set(["completed", "failed", "cancelled"]);
  static FINISHING = new Set(["composing", "uploading"]);
  static COMPOSE_SHARE = 0.08;
  static SETTLE_MS = 3000;

  // Measures from `origin` (ms): the job's creation, or a retry or regenerate, named by `label`.
  constructor(origin, label = "") {
    Object.assign(this, { origin, label, early: null, workStart: null, scenesStart: null, doneAt: {}, seen: {}, finishStart: null });
  }

  observe(s, now = Date.now()) {
    const p = s.progress;
    if (JobEta.TERMINAL.has(s.status)) return;
    this.early ??= s.status === "queued" || !p.scenes.length;  // first seen before its work began
    if (s.status !== "queued" && p.current_stage !== "queued") this.workStart ??= this.early ? now : this.origin;
    if (p.scenes.length) this.scenesStart ??= now;
    for (const sc of p.scenes) {
      if (!JobEta.ENDED.has(sc.state)) delete this.doneAt[sc.index];
      else if (sc.state === "done" && this.seen[sc.index] !== undefined && !JobEta.ENDED.has(this.seen[sc.index])) {
        this.doneAt[sc.index] = now;  // seen open, then done: measured here
      }
      this.seen[sc.index] = sc.state;
    }
    if (JobEta.FINISHING.has(p.current_stage)) this.finishStart ??= now;
    else this.finishStart = null;  // a regenerate in a running job reopens a scene
  }

  // Seconds left, or null while there is nothing measured to go on.
  secondsLeft(s, now = Date.now()) {
    if (this.workStart === null || this.scenesStart === null) return null;
    const open = s.progress.scenes.filter((sc) => !JobEta.ENDED.has(sc.state)).length;
    const finished = Object.values(this.doneAt);
    const composing = this.finishStart === null ? 0 : now - this.finishStart;
    const sceneTime = (this.finishStart ?? now) - this.scenesStart;
    if (!open) return Math.max(JobEta.COMPOSE_SHARE * sceneTime - composing, 500) / 1000;
    let left = now - this.workStart;  // as long again
    if (finished.length) {
      const last = Math.max(...finished);
      const perScene = (last - this.scenesStart) / finished.length;
      const scenesLeft = Math.max(open * perScene - (now - last), 0.2 * perScene);
      const byRate = scenesLeft + JobEta.COMPOSE_SHARE * (sceneTime + scenesLeft);
      const measured = finished.length / s.progress.scenes.length;
      left = Math.min(left, measured * byRate + (1 - measured) * left);
    } else if (left < JobEta.SETTLE_MS) return null;
    return left / 1000;
  }

  // "regenerating scene 2 · 12 s elapsed · about 9 s left"; "took 21 s" once completed.
  text(s, ended, now = Date.now()) {
    const end = ended ? Date.parse(s.completed_at || s.updated_at) : now;
    const elapsed = Math.max(0, Math.round((end - this.origin) / 1000));
    if (ended) return s.status === "completed" ? `took ${elapsed} s` : `${elapsed} s elapsed`;
    const left = this.secondsLeft(s, now);
    const estimate = left === null ? "estimating the time left…" : `about ${Math.max(1, Math.round(left))} s left`;
    return [this.label, `${elapsed} s elapsed`, estimate].filter(Boolean).join(" · ");
  }
}
