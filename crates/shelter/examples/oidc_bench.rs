//! The token endpoint under load, against a running Shelter (see `bench/oidc.sh`):
//!
//! ```text
//! oidc_bench <http://host:port> <admin email> <admin password> <concurrency> <seconds>
//! ```
//!
//! Registers a client and signs a user in once per worker (argon2 is not what is measured),
//! then runs three phases of `seconds` each with `concurrency` workers, each on its own
//! keep-alive connection: `client_credentials`, `refresh_token` (each worker rotates its own
//! family, presenting the newest token, as a client does), and one whole code flow
//! (authorize with the consent remembered → 303 with the code → the token exchange with
//! PKCE). Prints one JSON line per phase: completed operations per second and their p50 and
//! p99 latency. A chain of dependent requests needs a client that reads each answer, which
//! wrk cannot; `bench/oidc.sh` measures `client_credentials` with wrk too, as a cross-check.

#![allow(
    clippy::disallowed_methods,
    reason = "a test or benchmark spawns outside any request: no context to carry"
)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Client, StatusCode, redirect};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const CALLBACK: &str = "http://127.0.0.1:9/callback";

struct Rp {
    id: String,
    secret: String,
}

fn browser() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client")
}

async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON answer")
}

async fn admin_token(base: &str, email: &str, password: &str) -> String {
    let answer = json(
        Client::new()
            .post(format!("{base}/auth/token"))
            .form(&[("username", email), ("password", password)])
            .send()
            .await
            .expect("login"),
    )
    .await;
    answer["access_token"]
        .as_str()
        .expect("admin token")
        .to_owned()
}

async fn sign_in(base: &str, email: &str, password: &str) -> Client {
    let client = browser();
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("html");
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    let csrf = page[start..].split('"').next().expect("csrf");
    let response = client
        .post(format!("{base}/login"))
        .form(&[("csrf", csrf), ("username", email), ("password", password)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    client
}

/// One code flow: authorize (consent remembered, or given on the first run) → token.
async fn code_flow(base: &str, browser: &Client, rp: &Rp) -> Value {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", rp.id.as_str()),
            ("redirect_uri", CALLBACK),
            ("scope", "openid profile email"),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let mut response = browser
        .get(format!("{base}/oauth/authorize?{query}"))
        .send()
        .await
        .expect("authorize");
    if response.status() == StatusCode::OK {
        let page = response.text().await.expect("consent page");
        let mut form: Vec<(String, String)> = page
            .split("<input type=\"hidden\" ")
            .skip(1)
            .filter_map(|input| {
                let name = input.split("name=\"").nth(1)?.split('"').next()?;
                let value = input.split("value=\"").nth(1)?.split('"').next()?;
                Some((name.to_owned(), value.replace("&amp;", "&")))
            })
            .collect();
        form.push(("decision".into(), "allow".into()));
        response = browser
            .post(format!("{base}/oauth/consent"))
            .form(&form)
            .send()
            .await
            .expect("consent");
    }
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let code = form_urlencoded::parse(location.split_once('?').expect("a query").1.as_bytes())
        .find(|(name, _)| name == "code")
        .expect("a code")
        .1
        .into_owned();
    let answer = browser
        .post(format!("{base}/oauth/token"))
        .basic_auth(&rp.id, Some(&rp.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(answer.status(), StatusCode::OK);
    json(answer).await
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short list"
    )]
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

/// Runs `work` on every worker for `seconds`; prints the phase's figures.
async fn phase<F, Fut>(name: &str, workers: Vec<(Client, Option<String>)>, seconds: u64, work: F)
where
    F: Fn(Client, Option<String>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Option<String>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client, mut state) in workers {
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let begun = Instant::now();
                state = work(client.clone(), state).await;
                latencies.push(begun.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    #[expect(clippy::cast_precision_loss, reason = "a count of requests")]
    let rate = latencies.len() as f64 / elapsed;
    println!(
        "{}",
        json!({
            "phase": name,
            "operations": latencies.len(),
            "per_second": (rate * 10.0).round() / 10.0,
            "p50_ms": (percentile(&latencies, 0.5) * 100.0).round() / 100.0,
            "p99_ms": (percentile(&latencies, 0.99) * 100.0).round() / 100.0,
        })
    );
}

#[tokio::main]
async fn main() {
    // The workspace builds reqwest without a TLS provider; the server installs ring at start.
    shelter::runtime::backchannel::install_tls_provider();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, email, password, concurrency, seconds] = &args[..] else {
        eprintln!(
            "usage: oidc_bench <http://host:port> <admin email> <admin password> <concurrency> <seconds>"
        );
        std::process::exit(2);
    };
    let base = base.trim_end_matches('/').to_owned();
    let concurrency: usize = concurrency.parse().expect("concurrency");
    let seconds: u64 = seconds.parse().expect("seconds");
    let admin = admin_token(&base, email, password).await;
    let created = json(
        Client::new()
            .post(format!("{base}/oauth/clients"))
            .bearer_auth(&admin)
            .json(&json!({"name": "bench", "redirect_uris": [CALLBACK],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"]}))
            .send()
            .await
            .expect("register"),
    )
    .await;
    let rp = std::sync::Arc::new(Rp {
        id: created["client_id"].as_str().expect("client_id").to_owned(),
        secret: created["client_secret"]
            .as_str()
            .expect("secret")
            .to_owned(),
    });
    // One browser per worker, all as the admin (the user is not what is measured).
    let mut browsers = Vec::new();
    for _ in 0..concurrency {
        browsers.push(sign_in(&base, email, password).await);
    }

    let machine = {
        let (base, rp) = (base.clone(), std::sync::Arc::clone(&rp));
        move |client: Client, state: Option<String>| {
            let (base, rp) = (base.clone(), std::sync::Arc::clone(&rp));
            async move {
                let answer = client
                    .post(format!("{base}/oauth/token"))
                    .basic_auth(&rp.id, Some(&rp.secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .expect("token");
                assert_eq!(answer.status(), StatusCode::OK);
                let _ = answer.bytes().await;
                state
            }
        }
    };
    let workers = (0..concurrency).map(|_| (Client::new(), None)).collect();
    phase("client_credentials", workers, seconds, machine).await;

    let mut workers = Vec::new();
    for browser in &browsers {
        let tokens = code_flow(&base, browser, &rp).await;
        let refresh = tokens["refresh_token"].as_str().map(str::to_owned);
        workers.push((Client::new(), refresh));
    }
    let refresh = {
        let (base, rp) = (base.clone(), std::sync::Arc::clone(&rp));
        move |client: Client, state: Option<String>| {
            let (base, rp) = (base.clone(), std::sync::Arc::clone(&rp));
            async move {
                let token = state.expect("a refresh token");
                let answer = client
                    .post(format!("{base}/oauth/token"))
                    .basic_auth(&rp.id, Some(&rp.secret))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token.as_str()),
                    ])
                    .send()
                    .await
                    .expect("refresh");
                assert_eq!(answer.status(), StatusCode::OK);
                json(answer).await["refresh_token"]
                    .as_str()
                    .map(str::to_owned)
            }
        }
    };
    phase("refresh_token", workers, seconds, refresh).await;

    let workers = browsers
        .into_iter()
        .map(|browser| (browser, None))
        .collect();
    let flow = {
        let (base, rp) = (base.clone(), std::sync::Arc::clone(&rp));
        move |browser: Client, state: Option<String>| {
            let (base, rp) = (base.clone(), std::sync::Arc::clone(&rp));
            async move {
                code_flow(&base, &browser, &rp).await;
                state
            }
        }
    };
    phase("code_flow", workers, seconds, flow).await;
}
