// Watch while it renders: the job page plays each scene as soon as it is done (rendered and
// narrated), before the whole video is composed. The status names each done scene's
// `preview_url`; this card plays the first done scene, goes on to the next done one when a scene
// ends, and goes away when the job is completed: the page's own player then has the whole video.
const t2mPreview = (() => {
  let card = null, video = null, caption = null, current = -1;
  let urls = [];  // per scene: its latest preview URL (signed; the token is refreshed each minute)

  function next(after) { return urls.findIndex((u, i) => i > after && u); }

  function show(index, play) {
    current = index;
    video.src = urls[index];
    caption.textContent = `Scene ${index + 1} of ${urls.length}, while the rest of the video is made`;
    if (play) video.play().catch(() => {});
  }

  function build() {
    video = t2m.el("video", { id: "scene-player", controls: "", preload: "metadata", playsinline: "" });
    caption = t2m.el("p", { class: "muted", id: "scene-caption" });
    card = t2m.el("section", { class: "card", id: "preview-card" }, video, caption);
    document.getElementById("progress-card").before(card);
    video.addEventListener("ended", () => { const i = next(current); if (i >= 0) show(i, true); });
  }

  function remove() {
    if (!card) return;
    video.pause(); video.removeAttribute("src"); video.load();
    card.remove(); card = null; current = -1;
  }

  // Called with every status the page receives.
  function update(s) {
    if (s.status === "completed") { remove(); return; }
    urls = s.progress.scenes.map((sc) => sc.preview_url || null);
    if (!urls.some(Boolean)) return;
    if (!card) build();
    if (current < 0) show(next(-1), false);
    else if (video.ended && next(current) >= 0) show(next(current), true);
  }

  return { update };
})();
