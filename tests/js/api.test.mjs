// Tests for pwa/js/api.js: sign-up then log-in (issue 15 §9), on a fake fetch.
// Run: node --test tests/js/
import { test } from "node:test";
import assert from "node:assert/strict";

import { ApiError, SIGN_UP_LOG_IN_REFUSED, signUpAndLogIn } from "../../pwa/js/api.js";

const ACCEPTED = { status: "accepted", next: "POST /api/sessions", message: "Log in." };
const SESSION = { organizer: { id: 1 }, token: "t0ken", token_type: "Bearer", expires_in_s: 60 };

/** Answers each call with the next of `answers` ([status, body]); records [path, body]. */
function fakeFetch(answers) {
  const calls = [];
  globalThis.fetch = async (path, init) => {
    calls.push([path, JSON.parse(init.body)]);
    const [status, body] = answers.shift();
    return new Response(JSON.stringify(body), {
      status,
      headers: { "Content-Type": "application/json" },
    });
  };
  return calls;
}

const account = { email: "ada@example.org", password: "correct horse", name: "Ada" };

test("signs up, then logs in with the same email and password; the session is the log-in's", async () => {
  const calls = fakeFetch([[202, ACCEPTED], [201, SESSION]]);
  assert.deepEqual(await signUpAndLogIn(account), SESSION);
  assert.deepEqual(calls, [
    ["/api/organizers", account],
    ["/api/sessions", { email: account.email, password: account.password }],
  ]);
});

test("a refused log-in after the sign-up says to sign in with the account's password", async () => {
  const refused = { error: { code: "credentials_invalid", message: "The email or password is wrong." } };
  fakeFetch([[202, ACCEPTED], [401, refused]]);
  await assert.rejects(signUpAndLogIn(account), (error) => {
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "sign_up_log_in_refused");
    assert.equal(error.message, SIGN_UP_LOG_IN_REFUSED);
    return true;
  });
});

test("a refused sign-up keeps its own error and no log-in is tried", async () => {
  const bad = { error: { code: "password_too_short", message: "At least 8." } };
  const calls = fakeFetch([[400, bad]]);
  await assert.rejects(signUpAndLogIn(account), { status: 400, code: "password_too_short" });
  assert.equal(calls.length, 1);
});

test("a log-in over the rate limit keeps its 429", async () => {
  const limited = { error: { code: "rate_limited", message: "Too many log-ins." } };
  fakeFetch([[202, ACCEPTED], [429, limited]]);
  await assert.rejects(signUpAndLogIn(account), { status: 429, code: "rate_limited" });
});
