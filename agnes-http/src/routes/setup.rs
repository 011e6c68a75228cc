//! `GET /setup`: a page with a form that creates the first admin through `POST /auth/bootstrap`.

use axum::extract::State;
use axum::response::Html;

use crate::AppState;

/// Serves the setup page: the bootstrap form while setup is needed, else a note to log in.
#[utoipa::path(get, path = "/setup", tag = "setup",
    responses((status = 200, description = "Setup page", content_type = "text/html", body = String)))]
pub async fn page(State(state): State<AppState>) -> Html<&'static str> {
    if state.instance().is_setup_required() {
        Html(SETUP_PAGE)
    } else {
        Html(DONE_PAGE)
    }
}

const DONE_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agnes setup</title></head>
<body style="font-family: sans-serif; max-width: 36rem; margin: 3rem auto">
<h1>Agnes is set up</h1>
<p>This instance already has an admin. Log in with <code>POST /auth/token</code> or the
<code>agnes</code> command-line tool.</p>
</body></html>
"#;

const SETUP_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Agnes setup</title></head>
<body style="font-family: sans-serif; max-width: 36rem; margin: 3rem auto">
<h1>Create the first admin</h1>
<p>This instance has no admin yet. The account you create here can manage users and sources.</p>
<form id="bootstrap">
  <p><label>Email<br><input name="email" type="email" required autocomplete="username"></label></p>
  <p><label>Name<br><input name="name" autocomplete="name"></label></p>
  <p><label>Password (at least 8 characters)<br>
     <input name="password" type="password" minlength="8" required autocomplete="new-password"></label></p>
  <p><button type="submit">Create admin</button></p>
</form>
<p id="result" role="status"></p>
<script>
document.getElementById("bootstrap").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const result = document.getElementById("result");
  result.textContent = "Creating the admin...";
  try {
    const response = await fetch("/auth/bootstrap", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({email: form.get("email"), name: form.get("name"), password: form.get("password")}),
    });
    const body = await response.json();
    if (response.ok) {
      event.target.hidden = true;
      result.textContent = "Admin " + body.email + " created. Log in with POST /auth/token or the agnes CLI.";
    } else {
      result.textContent = body.error.message + (body.error.hint ? " " + body.error.hint : "");
    }
  } catch (error) {
    result.textContent = "The request failed: " + error;
  }
});
</script>
</body></html>
"#;
