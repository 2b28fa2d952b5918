// The MediSee page: open a volume, scroll its planes, ask questions turn by turn.
// Everything the model or a user wrote is shown with textContent, never parsed as HTML.
"use strict";

const PLANES = ["sagittal", "coronal", "axial"]; // RAS axes 0, 1, 2
const POLL_MS = 250;
const DOWNLOAD_LABELS = { mask: "mask (NIfTI)", result: "result (JSON)", overlay: "overlay (PNG)", seg: "DICOM SEG" };
const state = { volume: null, level: 0, width: 1, shownTurn: null, busy: false, maxUpload: null };

const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  const isJson = (response.headers.get("content-type") || "").includes("application/json");
  const body = isJson ? await response.json() : null;
  if (!response.ok) {
    throw new Error(body && body.error ? body.error : `the server answered ${response.status}`);
  }
  return body;
}

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

function setBusy(busy, text = "") {
  state.busy = busy;
  $("progress").hidden = !busy;
  $("progress-text").textContent = text;
  const open = state.volume !== null;
  $("question").disabled = busy || !open;
  $("ask").disabled = busy || !open;
  $("new").disabled = busy || !open;
  $("file-input").disabled = busy;
  $("library").disabled = busy;
}

function pollProgress() {
  const bar = $("progress").querySelector("progress");
  const timer = setInterval(async () => {
    try {
      const progress = await api("/api/progress");
      if (progress.total > 0) {
        bar.max = progress.total;
        bar.value = progress.done;
        $("progress-text").textContent = `${progress.stage}: ${progress.done} of ${progress.total} slices`;
      } else if (progress.stage) {
        bar.removeAttribute("value");
        $("progress-text").textContent = progress.stage;
      }
    } catch (error) {
      // the answer's own request reports errors
    }
  }, POLL_MS);
  return () => clearInterval(timer);
}

async function busyWith(text, work) {
  showMessage("");
  setBusy(true, text);
  const stop = pollProgress();
  try {
    return await work();
  } catch (error) {
    showMessage(error.message);
    return null;
  } finally {
    stop();
    setBusy(false);
  }
}

function viewUrl(plane, index) {
  const params = new URLSearchParams({ level: state.level, width: state.width });
  if (state.shownTurn !== null) params.set("turn", state.shownTurn);
  return `/api/view/${plane}/${index}.png?${params}`;
}

function refreshView(plane) {
  const figure = $(`view-${plane}`);
  const slider = figure.querySelector("input");
  figure.querySelector(".index").textContent = `${slider.value} / ${slider.max}`;
  figure.querySelector("img").src = viewUrl(plane, slider.value);
}

function refreshViews() {
  if (state.volume) PLANES.forEach(refreshView);
}

function openVolume(info) {
  state.volume = info;
  state.level = info.window.level;
  state.width = info.window.width;
  state.shownTurn = null;
  $("volume-name").textContent = `${info.name}: ${info.shape.join(" x ")} voxels`;
  $("level").value = Math.round(state.level);
  $("width").value = Math.round(state.width);
  const preset = $("preset");
  preset.replaceChildren(new Option("(custom)", ""));
  for (const [name, window] of Object.entries(info.presets)) {
    const option = new Option(`${name} (${window.level}/${window.width})`, name);
    if (window.level === state.level && window.width === state.width) option.selected = true;
    preset.add(option);
  }
  PLANES.forEach((plane, axis) => {
    const slider = $(`view-${plane}`).querySelector("input");
    slider.max = info.shape[axis] - 1;
    slider.value = Math.floor(info.shape[axis] / 2);
  });
  $("chat").replaceChildren();
  $("shown-turn").replaceChildren(new Option("none", ""));
  info.turns.forEach(addTurn);
  setBusy(false);
  refreshViews();
}

function fact(text) {
  const item = document.createElement("div");
  item.textContent = text;
  return item;
}

function describeBox(box) {
  if (!box) return "3D box: none";
  const [low, high] = box.voxel;
  return `3D box: voxels (${low.join(", ")}) to (${high.join(", ")})`;
}

function addTurn(turn) {
  const item = document.createElement("li");
  item.className = "turn";
  item.dataset.turn = turn.turn;
  const question = document.createElement("div");
  question.className = "question";
  question.textContent = `${turn.turn}. ${turn.question}`;
  const answer = document.createElement("div");
  answer.className = "answer";
  answer.textContent = turn.answer || "(no answer text)";
  const facts = document.createElement("div");
  facts.className = "facts";
  const slices = turn.slices;
  facts.append(
    fact(slices.length ? `found on ${slices.length} axial slices (${slices[0]} to ${slices[slices.length - 1]})`
      : "not found on any slice"),
    fact(describeBox(turn.box_3d)),
  );
  const volume = fact(`volume: ${turn.volume_ml === null ? "-" : turn.volume_ml.toFixed(2)} mL`);
  volume.className = "volume-ml";
  facts.append(volume);
  const presence = turn.presence === null ? "-" : turn.presence.toFixed(3);
  facts.append(fact(`presence score: ${presence} (a slice keeps its mask from ${turn.presence_threshold})`));
  const downloads = document.createElement("div");
  downloads.className = "downloads";
  for (const kind of turn.downloads) {
    const link = document.createElement("a");
    link.href = `/api/download/${turn.turn}/${kind}`;
    link.dataset.kind = kind;
    link.setAttribute("download", "");
    link.textContent = DOWNLOAD_LABELS[kind] || kind;
    downloads.append(link);
  }
  item.append(question, answer, facts, downloads);
  item.addEventListener("click", () => showTurn(turn));
  $("chat").append(item);
  $("shown-turn").add(new Option(`turn ${turn.turn}`, turn.turn));
  showTurn(turn);
}

function showTurn(turn) {
  state.shownTurn = turn.turn;
  $("shown-turn").value = turn.turn;
  document.querySelectorAll(".turn").forEach((el) => el.classList.toggle("shown", el.dataset.turn == turn.turn));
  if (turn.centre) {
    PLANES.forEach((plane, axis) => { $(`view-${plane}`).querySelector("input").value = turn.centre[axis]; });
  }
  refreshViews();
}

async function upload(file) {
  if (state.maxUpload !== null && file.size > state.maxUpload) {
    const limit = state.maxUpload / 1048576;
    showMessage(`${file.name} is larger than the ${limit} MiB an upload may be`);
    $("file-input").value = "";
    return;
  }
  const info = await busyWith(`uploading ${file.name}`, async () => {
    const params = new URLSearchParams({ filename: file.name });
    return api(`/api/upload?${params}`, { method: "POST", body: file });
  });
  $("file-input").value = "";
  if (info) openVolume(info);
}

async function openLibrary(name) {
  const info = await busyWith(`opening ${name}`, () => api("/api/open", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }),
  }));
  if (info) openVolume(info);
}

async function ask(text) {
  if (text.trim().toLowerCase() === "/new") {
    const done = await busyWith("starting a new dialogue", () => api("/api/new", { method: "POST" }));
    if (done) {
      const note = document.createElement("li");
      note.className = "new-dialogue";
      note.textContent = "new dialogue: the next question does not see the earlier ones";
      $("chat").append(note);
    }
    return;
  }
  const turn = await busyWith("asking", () => api("/api/ask", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ question: text }),
  }));
  if (turn) addTurn(turn);
}

function windowChanged() {
  const level = Number($("level").value);
  const width = Number($("width").value);
  if (!Number.isFinite(level) || !Number.isFinite(width) || width <= 0) return;
  state.level = level;
  state.width = width;
  refreshViews();
}

async function loadLibrary() {
  try {
    const { volumes, max_upload_bytes: maxUpload } = await api("/api/library");
    state.maxUpload = maxUpload;
    const select = $("library");
    for (const name of volumes) select.add(new Option(name, name));
    $("library-label").hidden = volumes.length === 0;
  } catch (error) {
    showMessage(error.message);
  }
}

function wire() {
  $("file-input").addEventListener("change", (event) => {
    const [file] = event.target.files;
    if (file) upload(file);
  });
  $("library").addEventListener("change", (event) => { if (event.target.value) openLibrary(event.target.value); });
  $("ask-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("question").value;
    if (!text.trim() || state.busy) return;
    $("question").value = "";
    ask(text);
  });
  $("new").addEventListener("click", () => ask("/new"));
  $("preset").addEventListener("change", (event) => {
    const window = state.volume && state.volume.presets[event.target.value];
    if (!window) return;
    $("level").value = window.level;
    $("width").value = window.width;
    windowChanged();
  });
  $("level").addEventListener("change", windowChanged);
  $("width").addEventListener("change", windowChanged);
  $("shown-turn").addEventListener("change", (event) => {
    state.shownTurn = event.target.value ? Number(event.target.value) : null;
    refreshViews();
  });
  PLANES.forEach((plane) => $(`view-${plane}`).querySelector("input").addEventListener("input", () => refreshView(plane)));
  setBusy(false);
  loadLibrary();
}

wire();
