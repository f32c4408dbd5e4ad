/**
 * The REST client of the pages: JSON in and out, one error type for every failure.
 *
 * Every server error has one shape, `{"error": {"code", "message", "where"?}}` (docs/API.md);
 * `api()` throws it as an `ApiError` with the HTTP status. A request that never got an answer
 * (offline, timeout) throws `ApiError` with status 0 and code `network_error` or `timeout`.
 *
 *     import { api, ApiError } from "./api.js";
 *     const mob = await api(`/api/mobs/${id}`);
 *     await api(`/api/mobs/${id}/participants`, { method: "POST", body: { nickname } });
 *     await api("/api/organizers/me/mobs", { token });   // Authorization: Bearer <token>
 *     const session = await signUpAndLogIn({ email, password, name }); // sign-up, then log-in
 *
 * The module also keeps a rough estimate of the server clock from the responses' `Date`
 * header (1 s resolution): `serverNowEstimate()`, good for "GO in 12 min" on pages without a
 * socket. The synchronized moment uses clock.js, never this.
 *
 * @module api
 */

/** An API or network failure: `status` (0 without an answer), `code`, `message`, `where`. */
export class ApiError extends Error {
  constructor(status, code, message, where = undefined) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.where = where;
  }

  /** True when the request may succeed later as it is (no answer, or the server failed). */
  get retryable() {
    return this.status === 0 || this.status >= 500;
  }
}

let dateOffsetMs = 0; // server − client wall clock, from the last response's Date header

/** The server's clock, estimated from HTTP `Date` headers (±1 s); epoch ms. */
export function serverNowEstimate() {
  return Date.now() + dateOffsetMs;
}

function noteServerDate(response, sentAt) {
  const header = response.headers.get("Date");
  const serverMs = header ? Date.parse(header) : NaN;
  if (!Number.isFinite(serverMs)) return;
  // The header is truncated to the second: its middle is 500 ms later.
  const midway = sentAt + (Date.now() - sentAt) / 2;
  dateOffsetMs = serverMs + 500 - midway;
}

/**
 * Calls the API and returns the parsed JSON (null for 204).
 *
 * @param {string} path e.g. "/api/mobs/abc"
 * @param {object} [options]
 * @param {string} [options.method] default GET (POST when a body is given)
 * @param {object} [options.body] sent as JSON
 * @param {string} [options.token] bearer token (never put tokens in URLs)
 * @param {number} [options.timeoutMs] default 15 000
 * @param {AbortSignal} [options.signal]
 * @returns {Promise<any>}
 * @throws {ApiError}
 */
export async function api(path, { method, body, token, timeoutMs = 15000, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("timeout", "TimeoutError")), timeoutMs);
  signal?.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(path, {
      method: method ?? (body === undefined ? "GET" : "POST"),
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    const timedOut = controller.signal.reason?.name === "TimeoutError";
    throw new ApiError(
      0,
      timedOut ? "timeout" : "network_error",
      timedOut ? "The server did not answer in time." : "No connection to the server.",
    );
  } finally {
    clearTimeout(timer);
  }
  noteServerDate(response, sentAt);
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data?.error;
    throw new ApiError(
      response.status,
      error?.code ?? `http_${response.status}`,
      error?.message ?? `The server answered ${response.status}.`,
      error?.where,
    );
  }
  return data;
}

/** Shown when the log-in that follows a sign-up is refused (the email had another password). */
export const SIGN_UP_LOG_IN_REFUSED = "If this email already has an account, sign in with its password.";

/**
 * Signs an organizer up, then logs in with the same email and password. The sign-up answers
 * alike whether or not the email already had an account, and carries no token (docs/API.md,
 * docs/SECURITY.md §9): the session comes from the log-in.
 *
 * @param {{email: string, password: string, name: string}} account
 * @returns {Promise<object>} the log-in's answer `{organizer, token, token_type, expires_in_s}`
 * @throws {ApiError} the sign-up's refusal (bad input, 429) or the log-in's; a refused log-in
 *   (401) as code `sign_up_log_in_refused` with the message `SIGN_UP_LOG_IN_REFUSED`
 */
export async function signUpAndLogIn({ email, password, name }) {
  await api("/api/organizers", { body: { email, password, name } });
  try {
    return await api("/api/sessions", { body: { email, password } });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      throw new ApiError(401, "sign_up_log_in_refused", SIGN_UP_LOG_IN_REFUSED);
    }
    throw error;
  }
}

let configPromise = null;

/**
 * The server's client settings from /config.json: `{tile_url, tile_attribution}`. Falls back
 * to no tiles (the maps then show their plain background) when it cannot be loaded.
 * @returns {Promise<{tile_url: string, tile_attribution: string}>}
 */
export function loadConfig() {
  if (!configPromise) {
    configPromise = fetch("/config.json", { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`config ${r.status}`))))
      .catch(() => ({ tile_url: "", tile_attribution: "" }));
  }
  return configPromise;
}
