// Shared by the public pages: translations, the quick exit, and calls to the case API.
// Nothing here writes to storage, cookies or the URL.

const catalog = globalThis.django || {};
export const gettext = catalog.gettext || ((text) => text);
export const ngettext = catalog.ngettext || ((one, many, n) => (n === 1 ? one : many));
export const interpolate = catalog.interpolate || ((format) => format);

export function format(text, values) {
  return interpolate(text, values, true);
}

// "Leave this site quickly": replace this page and its history entry, so Back doesn't return.
function setUpQuickExit() {
  const link = document.getElementById("quick-exit");
  if (!link) return;
  link.addEventListener("click", (event) => {
    event.preventDefault();
    document.body.hidden = true;
    window.location.replace(link.href);
  });
}
setUpQuickExit();

export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A fresh text node after a tick is announced even when the text repeats.
  window.setTimeout(() => { region.textContent = text; }, 50);
}

// POST a JSON body to the case API. Resolves to {ok, status, data}; never throws.
export async function callApi(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Accept-Language": document.documentElement.lang,
      },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
  } catch (error) {
    return { ok: false, status: 0, data: { code: "network", message: gettext("We couldn't reach the service. Check your connection and try again."), field: null } };
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!data || typeof data !== "object") {
    data = { code: "server", message: gettext("Something went wrong on our side. Please try again in a few minutes."), field: null };
  }
  return { ok: response.ok, status: response.status, data };
}

export function el(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

export function focusHeading(container) {
  const heading = container.querySelector("h1, h2");
  if (heading) {
    if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}
