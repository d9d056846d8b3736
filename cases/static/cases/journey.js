// The journey at "/": questions, hashing on this device, review, and the case number.
//
// Files are read only by the hash worker (hash-worker.js) in this tab; the only
// request this page makes is POST /api/v1/cases with the answers and the
// fingerprints. Nothing goes into the URL, history, cookies or storage, and the
// case number and PIN are wiped from the page when it is left.

import { announce, callApi, el, focusHeading, format, gettext, ngettext } from "./site.js";

const config = JSON.parse(document.getElementById("page-config").textContent);
const root = document.getElementById("journey");
const steps = ["welcome", "questions", "refused", "files", "review", "result"];

const state = {
  answers: {},
  questionIndex: 0,
  list: null,
  files: [], // {id, file, name, kind, status, fraction, hash, row, url}
  nextId: 1,
  worker: null,
};

function show(step) {
  for (const name of steps) {
    document.getElementById(`step-${name}`).hidden = name !== step;
  }
  const section = document.getElementById(`step-${step}`);
  focusHeading(section);
  window.scrollTo(0, 0);
}

function setAudience(list) {
  const minor = list === "minor";
  for (const node of root.querySelectorAll(".for-minor")) node.hidden = !minor;
  for (const node of root.querySelectorAll(".for-adult")) node.hidden = minor;
}

// ---- Questions, one at a time ----

const questionForm = document.getElementById("question-form");
const questionError = document.getElementById("question-error");

function showQuestion(index) {
  state.questionIndex = index;
  const fieldsets = questionForm.querySelectorAll("fieldset.question");
  fieldsets.forEach((fieldset, position) => { fieldset.hidden = position !== index; });
  questionError.textContent = "";
  document.getElementById("question-count").textContent = format(
    gettext("Question %(number)s of %(total)s"), { number: index + 1, total: config.questions.length },
  );
  const current = fieldsets[index];
  current.removeAttribute("aria-invalid");
  const checked = current.querySelector("input:checked") || current.querySelector("input");
  checked.focus();
}

questionForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = config.questions[state.questionIndex];
  const fieldset = questionForm.querySelector(`fieldset[data-question="${name}"]`);
  const choice = fieldset.querySelector("input:checked");
  if (!choice) {
    fieldset.setAttribute("aria-invalid", "true");
    questionError.textContent = gettext("Please choose yes or no.");
    fieldset.querySelector("input").focus();
    return;
  }
  state.answers[name] = choice.value === "yes";
  if (state.questionIndex + 1 < config.questions.length) {
    showQuestion(state.questionIndex + 1);
    return;
  }
  decide();
});

function decide() {
  const key = config.questions.map((name) => (state.answers[name] ? "1" : "0")).join("");
  const outcome = config.outcomes[key];
  if (outcome.list) {
    state.list = outcome.list;
    setAudience(outcome.list);
    show("files");
    return;
  }
  state.list = null;
  setAudience(state.answers.under_18_at_capture ? "minor" : "adult");
  document.getElementById("refused-message").textContent = outcome.message;
  const help = document.getElementById("refused-help");
  help.replaceChildren(...outcome.help.map((text) => el("li", { text })));
  show("refused");
}

// ---- Files: the worker takes them all and says when each is done (by id) ----

const fileInput = document.getElementById("file-input");
const fileList = document.getElementById("file-list");
const filesError = document.getElementById("files-error");
const toReview = root.querySelector('[data-action="to-review"]');

function extension(name) {
  const dot = name.lastIndexOf(".");
  return dot < 0 ? "" : name.slice(dot + 1).toLowerCase();
}

function isVideo(file) {
  return file.type.startsWith("video/") || ["mp4", "mov", "avi", "qt", "wmv"].includes(extension(file.name));
}

function getWorker() {
  if (state.worker) return state.worker;
  state.worker = new Worker(root.dataset.workerUrl, { type: "module" });
  state.worker.addEventListener("message", onWorkerMessage);
  state.worker.addEventListener("error", (event) => {
    event.preventDefault();
    // The worker could not start or crashed: nothing can be hashed in this tab.
    state.worker = null;
    for (const item of state.files) {
      if (item.status === "waiting" || item.status === "hashing") finish(item, "failed");
    }
  });
  return state.worker;
}

function onWorkerMessage(event) {
  const message = event.data || {};
  const item = state.files.find((candidate) => candidate.id === message.id);
  if (!item) return;
  if (message.type === "progress") {
    item.status = "hashing";
    item.fraction = Math.max(0, Math.min(1, Number(message.fraction) || 0));
    render(item);
    return;
  }
  if (message.type === "done") {
    item.hash = { algorithm: message.algorithm, value: message.value };
    if (message.algorithm === "pdq") item.hash.quality = message.quality;
    if (message.algorithm === "pdq" && message.quality < config.minQuality) {
      finish(item, "low-quality");
    } else {
      const twin = state.files.find((other) => other !== item && other.status === "hashed"
        && other.hash.algorithm === item.hash.algorithm && other.hash.value === item.hash.value);
      finish(item, twin ? "duplicate" : "hashed", twin);
    }
  } else if (message.type === "error" && message.code === "unsupported") {
    finish(item, "unsupported");
  } else {
    finish(item, "failed");
  }
}

function finish(item, status, twin) {
  item.status = status;
  item.fraction = 1;
  item.twin = twin ? twin.name : null;
  render(item);
  announce(format(gettext("%(name)s: %(state)s"), { name: item.name, state: statusLabel(item) }));
  updateFilesControls();
}

function statusLabel(item) {
  switch (item.status) {
    case "waiting": return gettext("Waiting");
    case "hashing": return gettext("Making the fingerprint…");
    case "hashed": return gettext("Fingerprint made");
    case "duplicate": return gettext("Same picture as another file");
    case "low-quality": return gettext("Quality too low");
    case "unsupported": return gettext("This file type can't be read here");
    default: return gettext("Something went wrong");
  }
}

function statusDetail(item) {
  switch (item.status) {
    case "low-quality":
      return format(gettext("This picture has too little detail for platforms to match it (quality %(quality)s of 100, at least %(minimum)s needed). Please use the original photo instead of a screenshot, a thumbnail or a very small or blurry copy."),
        { quality: item.hash.quality, minimum: config.minQuality });
    case "duplicate":
      return format(gettext("It gives the same fingerprint as %(other)s, so it is sent only once."), { other: item.twin });
    case "unsupported":
      return null; // the command is shown instead
    case "failed":
      return gettext("This file couldn't be read. It may be damaged. Try another copy of it.");
    default:
      return null;
  }
}

function commandFor(name) {
  const quoted = `'${name.replace(/'/g, "'\\''")}'`;
  return `hashbank-hash --submit ${config.bankUrl} ${quoted}`;
}

function buildRow(item) {
  const preview = el("div", { className: "preview" });
  if (item.kind === "video") {
    const video = el("video", { src: item.url, muted: "", preload: "metadata", "aria-hidden": "true" });
    video.muted = true;
    video.addEventListener("error", () => preview.replaceChildren(el("span", { className: "no-preview", text: gettext("Video") })));
    preview.append(video);
  } else {
    const image = el("img", { src: item.url, alt: "" });
    image.addEventListener("error", () => preview.replaceChildren(el("span", { className: "no-preview", text: gettext("No preview") })));
    preview.append(image);
  }
  const progressLabel = format(gettext("Progress for %(name)s"), { name: item.name });
  const progress = el("progress", { max: "1", value: "0", "aria-label": progressLabel });
  const status = el("p", { className: "file-status" });
  const detail = el("p", { className: "file-detail" });
  const remove = el("button", { type: "button", className: "link-button", text: gettext("Remove") });
  remove.setAttribute("aria-label", format(gettext("Remove %(name)s"), { name: item.name }));
  remove.addEventListener("click", () => removeFile(item));
  const body = el("div", { className: "file-body" }, [
    el("p", { className: "file-name", text: item.name }), progress, status, detail,
  ]);
  const row = el("li", { className: "file", "data-status": item.status }, [preview, body, remove]);
  item.row = row;
  item.parts = { progress, status, detail };
  return row;
}

function render(item) {
  if (!item.row) return;
  item.row.dataset.status = item.status;
  item.parts.progress.value = item.fraction;
  item.parts.progress.hidden = !(item.status === "waiting" || item.status === "hashing");
  item.parts.status.textContent = statusLabel(item);
  const detail = statusDetail(item);
  item.parts.detail.replaceChildren();
  if (item.status === "unsupported" && !config.notInBrowsers.includes(extension(item.name))) {
    item.parts.detail.textContent = gettext("This page can't read this file: it may be damaged, or a kind of file it doesn't know. Save it as JPEG or PNG and add it again, or use the original.");
  } else if (item.status === "unsupported") {
    item.parts.detail.append(
      el("span", { text: gettext("Browsers can't open this kind of file. Save it as JPEG or PNG and add it again, or make its fingerprint with the hashbank-hash tool on your computer (this makes a separate case):") }),
      el("code", { className: "command", text: commandFor(item.name) }),
    );
  } else if (detail) {
    item.parts.detail.textContent = detail;
  }
}

function removeFile(item) {
  const index = state.files.indexOf(item);
  if (index < 0) return;
  state.files.splice(index, 1);
  if (item.url) URL.revokeObjectURL(item.url);
  item.row.remove();
  // If the worker is still on it, its answer is ignored: the file is gone.
  // A file that was a duplicate of this one may now be the only copy.
  for (const other of state.files) {
    if (other.status === "duplicate" && other.twin === item.name) {
      finish(other, "hashed");
      break;
    }
  }
  announce(format(gettext("%(name)s removed"), { name: item.name }));
  updateFilesControls();
  fileInput.focus();
}

function updateFilesControls() {
  const count = state.files.length;
  document.getElementById("file-count").textContent = format(
    ngettext("%(count)s of %(max)s file chosen", "%(count)s of %(max)s files chosen", count),
    { count, max: config.maxFiles },
  );
  const busy = state.files.some((item) => item.status === "waiting" || item.status === "hashing");
  const ready = state.files.some((item) => item.status === "hashed");
  toReview.disabled = busy || !ready;
  fileInput.disabled = count >= config.maxFiles;
}

fileInput.addEventListener("change", () => {
  filesError.textContent = "";
  const chosen = Array.from(fileInput.files || []);
  fileInput.value = "";
  const room = config.maxFiles - state.files.length;
  if (chosen.length > room) {
    filesError.textContent = format(gettext("A case holds at most %(max)s files. Only the first %(room)s were added; you can make a second case for the rest."), { max: config.maxFiles, room });
  }
  for (const file of chosen.slice(0, Math.max(0, room))) {
    const item = {
      id: state.nextId++, file, name: file.name, kind: isVideo(file) ? "video" : "image",
      status: "waiting", fraction: 0, hash: null, url: URL.createObjectURL(file),
    };
    state.files.push(item);
    fileList.append(buildRow(item));
    if (config.notInBrowsers.includes(extension(file.name))) {
      finish(item, "unsupported");
    } else {
      render(item);
      getWorker().postMessage({ id: item.id, file });
    }
  }
  updateFilesControls();
});

// ---- Review and sending ----

const reviewForm = document.getElementById("review-form");

function hashedFiles() {
  return state.files.filter((item) => item.status === "hashed");
}

function buildReview() {
  const list = document.getElementById("review-list");
  list.replaceChildren(...hashedFiles().map((item) => {
    const label = item.hash.algorithm === "pdq"
      ? format(gettext("Photo fingerprint (PDQ), quality %(quality)s"), { quality: item.hash.quality })
      : gettext("Video fingerprint (MD5)");
    return el("li", {}, [el("span", { className: "hash-kind", text: label }), el("code", { className: "hash", text: item.hash.value })]);
  }));
}

function clearFieldErrors() {
  for (const id of ["new-pin", "email"]) {
    document.getElementById(id).removeAttribute("aria-invalid");
    document.getElementById(`${id}-error`).textContent = "";
  }
  document.getElementById("review-error").textContent = "";
}

function fieldError(id, message) {
  const input = document.getElementById(id);
  input.setAttribute("aria-invalid", "true");
  document.getElementById(`${id}-error`).textContent = message;
  input.focus();
}

reviewForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFieldErrors();
  const pin = document.getElementById("new-pin").value;
  const email = document.getElementById("email").value.trim();
  const body = {
    eligibility: Object.fromEntries(config.questions.map((name) => [name, state.answers[name]])),
    hashes: hashedFiles().map((item) => item.hash),
  };
  if (pin) body.pin = pin;
  if (email) body.email = email;
  const button = reviewForm.querySelector('button[type="submit"]');
  button.disabled = true;
  announce(gettext("Sending the fingerprints…"));
  const { ok, data } = await callApi("/api/v1/cases", body);
  button.disabled = false;
  if (!ok) {
    const field = data.field || "";
    if (field === "pin") fieldError("new-pin", data.message);
    else if (field === "email") fieldError("email", data.message);
    else document.getElementById("review-error").textContent = data.message;
    return;
  }
  showResult(data, Boolean(email));
});

function showResult(data, emailed) {
  document.getElementById("result-number").textContent = data.case_number;
  document.getElementById("result-pin").textContent = data.pin;
  document.getElementById("result-email").hidden = !emailed;
  document.getElementById("new-pin").value = "";
  document.getElementById("email").value = "";
  setAudience(data.list);
  // The files are done with: drop them and their previews from memory.
  for (const item of state.files) if (item.url) URL.revokeObjectURL(item.url);
  state.files = [];
  fileList.replaceChildren();
  if (state.worker) { state.worker.terminate(); state.worker = null; }
  show("result");
}

function wipeSecrets() {
  for (const id of ["result-number", "result-pin", "new-pin", "email"]) {
    const node = document.getElementById(id);
    if ("value" in node && node.tagName === "INPUT") node.value = ""; else node.textContent = "";
  }
}
// Leaving the page removes the case number and PIN, so Back never shows them again
// (a browser may keep the page in its back-forward cache despite no-store).
window.addEventListener("pagehide", () => {
  wipeSecrets();
  if (!document.getElementById("step-result").hidden) {
    for (const name of steps) document.getElementById(`step-${name}`).hidden = name !== "welcome";
  }
});

// ---- Buttons ----

root.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action]");
  if (!button) return;
  switch (button.dataset.action) {
    case "start":
      show("questions");
      showQuestion(0);
      break;
    case "question-back":
      if (state.questionIndex > 0) showQuestion(state.questionIndex - 1);
      else show("welcome");
      break;
    case "restart":
      state.answers = {};
      for (const input of questionForm.querySelectorAll("input")) input.checked = false;
      show("questions");
      showQuestion(0);
      break;
    case "files-back":
      show("questions");
      showQuestion(config.questions.length - 1);
      break;
    case "to-review":
      buildReview();
      show("review");
      break;
    case "review-back":
      show("files");
      break;
    case "copy": {
      const text = format(gettext("Case number: %(number)s\nPIN: %(pin)s"), {
        number: document.getElementById("result-number").textContent,
        pin: document.getElementById("result-pin").textContent,
      });
      const status = document.getElementById("result-status");
      try {
        await navigator.clipboard.writeText(text);
        status.textContent = gettext("Copied. Paste them somewhere only you can see.");
      } catch (error) {
        status.textContent = gettext("Copying didn't work here. Please write them down.");
      }
      break;
    }
    case "print":
      window.print();
      break;
    default:
      break;
  }
});

updateFilesControls();
