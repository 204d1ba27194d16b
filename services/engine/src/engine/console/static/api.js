// Calls to the engine's management API with the signed-in credential.

export const API = "/api/automation";
export const CREDENTIAL = "hookflow.credential";

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export function credential() {
  const saved = sessionStorage.getItem(CREDENTIAL);
  return saved ? JSON.parse(saved) : null;
}

// `trying`: a credential to check instead of the saved one (signing in)
export async function api(path, options = {}, trying = null) {
  const saved = trying || credential();
  const headers = {};
  if (saved) headers[saved.kind === "admin" ? "X-Admin-Key" : "user-token"] = saved.value;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (response.status === 401 && saved && !trying) signOut(); // the key changed, say
    throw new ApiError(response.status, body);
  }
  return body;
}

export function signOut() {
  sessionStorage.removeItem(CREDENTIAL);
  document.getElementById("nav").hidden = true;
  if (location.hash === "#/sign-in") window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = "#/sign-in";
}
