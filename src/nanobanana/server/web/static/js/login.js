// Sign in and register. Registering signs the new user in straight away.

import { api, ApiError, getSession, safeNext, setSession } from "./api.js";
import { $, clearError, say, showError } from "./ui.js";

const form = $("#auth-form");
const mode = form.dataset.mode;
const errorBox = $("#auth-error");
const status = $("#auth-status");
const params = new URLSearchParams(window.location.search);
const next = safeNext(params.get("next"));

function fail(message, field) {
  showError(errorBox, new ApiError({ status: 400, code: "invalid_request", message }));
  if (field) field.setAttribute("aria-invalid", "true");
}

function describeAuthError(err) {
  if (mode === "login" && err.status === 401) {
    return new ApiError({ ...err, code: "bad_credentials", message: "Wrong username or password." });
  }
  if (err.status === 429) {
    const wait = err.retryAfter ? `about ${Math.ceil(err.retryAfter)} s` : "a minute";
    const message = `Too many attempts. Wait ${wait}, then try again.`;
    return new ApiError({ ...err, code: "too_many_attempts", message });
  }
  if (err.status === 409) {
    const message = "That username is taken. Choose another, or sign in.";
    return new ApiError({ ...err, code: "username_taken", message });
  }
  return err;
}

async function signIn(username, password) {
  const body = await api("/api/auth/login", { method: "POST", json: { username, password } });
  setSession(body.access_token, body.expires_at, username);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError(errorBox);
  const user = $("#username");
  const pass = $("#password");
  for (const f of form.querySelectorAll("[aria-invalid]")) f.removeAttribute("aria-invalid");
  const username = user.value.trim();
  const password = pass.value;
  if (!username) return fail("Enter a username.", user);
  if (!password) return fail("Enter a password.", pass);
  if (mode === "register") {
    if (!/^[A-Za-z0-9_.-]{3,64}$/.test(username)) {
      return fail("Use 3 to 64 characters for the username: letters, digits, _ . or -.", user);
    }
    if (password.length < 8) return fail("Use a password of at least 8 characters.", pass);
    const again = $("#password2");
    if (again.value !== password) return fail("The two passwords differ. Type the same password twice.", again);
  }
  const submit = $("#auth-submit");
  submit.disabled = true;
  say(status, mode === "register" ? "Creating your account…" : "Signing in…");
  try {
    if (mode === "register") {
      await api("/api/auth/register", { method: "POST", json: { username, password } });
    }
    await signIn(username, password);
    say(status, "Signed in. Opening…", "ok");
    window.location.assign(mode === "register" && next === "/" ? "/settings?welcome=1" : next);
  } catch (err) {
    say(status, "");
    showError(errorBox, describeAuthError(err));
    submit.disabled = false;
  }
});

if (params.get("signed_out")) say(status, "You are signed out.", "ok");
if (getSession() && mode === "login" && !params.get("signed_out")) {
  say(status, "You are already signed in.", "ok");
}
$("#username").focus();
