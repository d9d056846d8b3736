// The status page: check a case and withdraw it. The case number and PIN stay in
// the two fields (sent only in POST bodies) and are wiped when the page is left.

import { callApi, el, focusHeading, format, gettext } from "./site.js";

const form = document.getElementById("status-form");
const numberInput = document.getElementById("case-number");
const pinInput = document.getElementById("pin");
const errorBox = document.getElementById("status-error");
const panel = document.getElementById("case-status");
const confirmBox = document.getElementById("withdraw-confirm");
const withdrawButton = document.querySelector('[data-action="withdraw"]');

function credentials() {
  return { case_number: numberInput.value.trim(), pin: pinInput.value };
}

function stateLabel(status) {
  switch (status) {
    case "active": return gettext("Active: shared with platforms");
    case "withdrawn": return gettext("Withdrawn");
    case "under_review": return gettext("Being reviewed");
    case "disabled": return gettext("Switched off after a review");
    default: return status;
  }
}

function count(value) {
  return value === null || value === undefined ? "–" : String(value);
}

function showStatus(data) {
  const date = (value) => new Date(value).toLocaleDateString(document.documentElement.lang, { dateStyle: "long" });
  document.getElementById("case-state").textContent = data.state === "withdrawn"
    ? format(gettext("This case was withdrawn on %(date)s."), { date: date(data.withdrawn_at) })
    : format(gettext("This case is active. It was opened on %(date)s."), { date: date(data.created_at) });
  // Each cell carries its column's heading, which a phone shows beside the value.
  const headings = Array.from(panel.querySelectorAll("thead th"), (th) => th.textContent);
  const rows = data.hashes.map((item) => {
    const kind = item.algorithm === "pdq" ? gettext("Photo") : gettext("Video");
    return el("tr", {}, [
      el("td", { "data-label": headings[0] }, [
        el("div", {}, [el("span", { className: "hash-kind", text: kind }), el("code", { className: "hash", text: item.value })]),
      ]),
      // A state the person did not choose (under review, switched off) comes with the
      // bank's own few words on it, in the page's language.
      el("td", { "data-label": headings[1] }, [
        el("span", { text: stateLabel(item.status) }),
        ...(item.explanation ? [el("p", { className: "explanation", text: item.explanation })] : []),
      ]),
      el("td", { "data-label": headings[2], text: count(item.partners_received) }),
      el("td", { "data-label": headings[3], text: count(item.partners_blocked) }),
    ]);
  });
  document.getElementById("status-rows").replaceChildren(...rows);
  document.getElementById("withdraw-area").hidden = data.state === "withdrawn";
  confirmBox.hidden = true;
  panel.hidden = false;
}

async function send(path) {
  errorBox.textContent = "";
  numberInput.removeAttribute("aria-invalid");
  const body = credentials();
  if (!body.case_number || !body.pin) {
    errorBox.textContent = gettext("Please type both your case number and your PIN.");
    (body.case_number ? pinInput : numberInput).focus();
    return null;
  }
  const { ok, data } = await callApi(path, body);
  if (!ok) {
    panel.hidden = true;
    errorBox.textContent = data.message;
    if (data.field === "case_number") numberInput.setAttribute("aria-invalid", "true");
    (data.field === "pin" ? pinInput : numberInput).focus();
    return null;
  }
  return data;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = await send("/api/v1/cases/status");
  if (data) {
    showStatus(data);
    focusHeading(panel);
  }
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action]");
  if (!button) return;
  if (button.dataset.action === "withdraw") {
    confirmBox.hidden = false;
    confirmBox.querySelector('[data-action="withdraw-confirm"]').focus();
  } else if (button.dataset.action === "withdraw-cancel") {
    confirmBox.hidden = true;
    withdrawButton.focus();
  } else if (button.dataset.action === "withdraw-confirm") {
    button.disabled = true;
    const data = await send("/api/v1/cases/withdraw");
    button.disabled = false;
    if (data) {
      showStatus(data);
      const state = document.getElementById("case-state");
      state.setAttribute("tabindex", "-1");
      state.focus();
    }
  }
});

window.addEventListener("pagehide", () => {
  numberInput.value = "";
  pinInput.value = "";
  panel.hidden = true;
});
