//! Fixed-window rate limiting of login and bootstrap attempts per client address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// Length of one counting window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Number of tracked windows above which expired ones are dropped, bounding memory.
const PRUNE_ABOVE: usize = 10_000;

/// The rate-limited actions, each counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `POST /auth/token`.
    Login,
    /// `POST /auth/bootstrap`.
    Bootstrap,
}

/// Attempts allowed per client address and [`WINDOW`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Login attempts per window.
    pub login: u32,
    /// Bootstrap attempts per window.
    pub bootstrap: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login: 10,
            bootstrap: 5,
        }
    }
}

/// Counts attempts per action and client address.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    windows: Mutex<HashMap<(Action, IpAddr), (Instant, u32)>>,
}

impl RateLimiter {
    /// Creates a limiter with `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt of `action` from `client` (unknown clients share one counter).
    ///
    /// Fails with `rate_limited`, carrying the time until the window ends, when the attempt is
    /// over the limit.
    pub fn check(&self, action: Action, client: Option<IpAddr>) -> Result<()> {
        let limit = match action {
            Action::Login => self.limits.login,
            Action::Bootstrap => self.limits.bootstrap,
        };
        let key = (action, client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        let now = Instant::now();

        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let (start, count) = windows.entry(key).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= limit {
            let retry_after = WINDOW.saturating_sub(now.duration_since(*start));
            return Err(rate_limited(retry_after));
        }
        *count += 1;
        Ok(())
    }
}

fn rate_limited(retry_after: Duration) -> Error {
    let seconds = retry_after.as_secs().max(1);
    Error::new(
        ErrorKind::RateLimited { retry_after },
        "rate_limited",
        "too many attempts from this address",
    )
    .with_hint(format!("Wait {seconds} seconds and try again."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_rejects_over_limit() {
        let limiter = RateLimiter::new(RateLimits {
            login: 2,
            bootstrap: 1,
        });
        let client = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));

        assert!(limiter.check(Action::Login, client).is_ok());
        assert!(limiter.check(Action::Login, client).is_ok());
        let error = limiter.check(Action::Login, client).unwrap_err();
        assert_eq!(error.code, "rate_limited");
        assert!(
            matches!(error.kind, ErrorKind::RateLimited { retry_after } if retry_after <= WINDOW)
        );

        // Other actions and other clients have their own counters.
        assert!(limiter.check(Action::Bootstrap, client).is_ok());
        assert!(
            limiter
                .check(Action::Login, Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))))
                .is_ok()
        );
    }
}
