//! Bearer-token authentication and per-method roles for the gRPC API, as a tower layer in
//! front of every service (health and reflection stay open).
//!
//! Tokens are configured as their SHA-256 (`[[service.clients]] token_sha256`), so the
//! configuration never holds a usable secret. A missing or unknown token answers
//! `UNAUTHENTICATED`; a known client calling outside its roles `PERMISSION_DENIED`.
//! The table fails closed: a method of ours missing from it is denied to everyone.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tonic::Status;
use tower::{Layer, Service};

use crate::config::{ApiClient, Role};

/// The authenticated caller, put in the request's extensions for the handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The client's configured name.
    pub name: String,
}

/// Paths open without a token: the standard health and reflection services.
pub const OPEN_PREFIXES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// True for a path of the open services ([`OPEN_PREFIXES`]).
pub fn is_open(path: &str) -> bool {
    OPEN_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// The roles that may call a gRPC method (`/package.Service/Method`); `None` for a path
/// not in the table. Admin may call everything listed; a path that is neither listed
/// nor open ([`is_open`]) is denied to everyone, admin included (fail closed: a method
/// added to the proto without a line here cannot ship open). A test checks the table
/// against the proto's service descriptors.
pub fn roles_for(path: &str) -> Option<&'static [Role]> {
    use Role::*;
    let method = path.strip_prefix("/softstake.v1.")?;
    Some(match method {
        "Accounts/Activate" | "Accounts/Deactivate" => &[Ingest],
        "Accounts/GetAccount" => &[Ingest, Reader, Treasury, Allocator],
        "Balances/IngestBalances" => &[Ingest],
        "Rewards/ListDistributions" | "Rewards/GetApr" => &[Reader, Allocator, Treasury],
        "Treasury/GetPoolStatus" | "Treasury/ListPlans" | "Treasury/ListOperations" => &[Reader, Treasury],
        "Treasury/ApprovePlan" | "Treasury/RejectPlan" | "Treasury/AcknowledgeDrift" => &[Treasury],
        "Admin/SetClock" => &[],
        _ => return None,
    })
}

/// Every method of the API, for documentation and the role tests.
pub const METHODS: [&str; 13] = [
    "/softstake.v1.Accounts/Activate",
    "/softstake.v1.Accounts/Deactivate",
    "/softstake.v1.Accounts/GetAccount",
    "/softstake.v1.Balances/IngestBalances",
    "/softstake.v1.Rewards/ListDistributions",
    "/softstake.v1.Rewards/GetApr",
    "/softstake.v1.Treasury/GetPoolStatus",
    "/softstake.v1.Treasury/ListPlans",
    "/softstake.v1.Treasury/ApprovePlan",
    "/softstake.v1.Treasury/RejectPlan",
    "/softstake.v1.Treasury/AcknowledgeDrift",
    "/softstake.v1.Treasury/ListOperations",
    "/softstake.v1.Admin/SetClock",
];

#[derive(Debug)]
struct Client {
    name: String,
    hash: [u8; 32],
    roles: BTreeSet<Role>,
}

/// The layer, built from the configured clients.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    clients: Arc<Vec<Client>>,
    /// Calls per client per second, when limited (`RESOURCE_EXHAUSTED` beyond).
    rate: Option<Arc<governor::DefaultKeyedRateLimiter<String>>>,
}

impl AuthLayer {
    /// From `[[service.clients]]` (hashes already validated by the config).
    pub fn new(clients: &[ApiClient]) -> AuthLayer {
        let clients = clients
            .iter()
            .filter_map(|c| {
                let bytes = hex::decode(&c.token_sha256).ok()?;
                let hash: [u8; 32] = bytes.try_into().ok()?;
                Some(Client {
                    name: c.name.clone(),
                    hash,
                    roles: c.roles.iter().copied().collect(),
                })
            })
            .collect();
        AuthLayer {
            clients: Arc::new(clients),
            rate: None,
        }
    }

    /// Limits every configured client to `calls_per_sec` calls per second (a burst of as
    /// many); beyond it a call answers `RESOURCE_EXHAUSTED` before its handler runs. The
    /// keys are the configured clients, so the limiter's map is bounded by them.
    pub fn with_rate_limit(mut self, calls_per_sec: u32) -> AuthLayer {
        let q =
            governor::Quota::per_second(std::num::NonZeroU32::new(calls_per_sec).unwrap_or(std::num::NonZeroU32::MIN));
        self.rate = Some(Arc::new(governor::RateLimiter::keyed(q)));
        self
    }

    /// Decides a call: the caller, or the status to answer with.
    pub fn check(&self, path: &str, authorization: Option<&str>) -> Result<Option<Caller>, Status> {
        if is_open(path) {
            return Ok(None);
        }
        let Some(allowed) = roles_for(path) else {
            return Err(Status::permission_denied(format!(
                "{path} is not in the API's role table: denied"
            )));
        };
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Status::unauthenticated("missing bearer token (authorization: Bearer <token>)"))?;
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let client = self
            .clients
            .iter()
            .find(|c| c.hash == hash)
            .ok_or_else(|| Status::unauthenticated("unknown bearer token"))?;
        if client.roles.contains(&Role::Admin) || allowed.iter().any(|r| client.roles.contains(r)) {
            if let Some(rate) = &self.rate {
                if rate.check_key(&client.name).is_err() {
                    return Err(Status::resource_exhausted(format!(
                        "client {:?} is over its rate limit (service.limits.grpc_calls_per_client_per_sec): retry shortly",
                        client.name
                    )));
                }
            }
            return Ok(Some(Caller {
                name: client.name.clone(),
            }));
        }
        Err(Status::permission_denied(format!(
            "client {:?} may not call {path}: it needs one of the roles {:?} (or admin)",
            client.name, allowed
        )))
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service the layer wraps around the gRPC routes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let auth = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match self.layer.check(req.uri().path(), auth.as_deref()) {
            Ok(caller) => {
                if let Some(c) = caller {
                    req.extensions_mut().insert(c);
                }
                // Take the service that was polled ready, leave a fresh clone in its place.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { inner.call(req).await })
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> AuthLayer {
        let hash = |t: &str| hex::encode(Sha256::digest(t.as_bytes()));
        AuthLayer::new(&[
            ApiClient {
                name: "ledger".into(),
                token_sha256: hash("t-ingest"),
                token_sha256_env: None,
                roles: vec![Role::Ingest],
            },
            ApiClient {
                name: "alice".into(),
                token_sha256: hash("t-treasury"),
                token_sha256_env: None,
                roles: vec![Role::Treasury],
            },
            ApiClient {
                name: "root".into(),
                token_sha256: hash("t-admin"),
                token_sha256_env: None,
                roles: vec![Role::Admin],
            },
        ])
    }

    #[test]
    fn success_roles_and_admin() {
        let l = layer();
        let caller = l
            .check("/softstake.v1.Treasury/ApprovePlan", Some("Bearer t-treasury"))
            .unwrap();
        assert_eq!(caller.unwrap().name, "alice");
        assert!(l.check("/softstake.v1.Admin/SetClock", Some("Bearer t-admin")).is_ok());
        assert!(
            l.check("/grpc.health.v1.Health/Check", None).unwrap().is_none(),
            "health is open"
        );
    }

    /// Every method of the proto's services, from the compiled descriptor set.
    fn proto_methods() -> BTreeSet<String> {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::api::pb::FILE_DESCRIPTOR_SET).unwrap();
        let mut out = BTreeSet::new();
        for file in &set.file {
            for svc in &file.service {
                for m in &svc.method {
                    out.insert(format!("/{}.{}/{}", file.package(), svc.name(), m.name()));
                }
            }
        }
        out
    }

    #[test]
    fn success_role_table_covers_every_proto_method() {
        let proto = proto_methods();
        assert!(proto.len() >= 13, "descriptor read: {proto:?}");
        let listed: BTreeSet<String> = METHODS.iter().map(|m| m.to_string()).collect();
        assert_eq!(proto, listed, "METHODS must list exactly the proto's methods");
        for m in &proto {
            assert!(roles_for(m).is_some(), "{m} has no line in the role table");
            assert!(!is_open(m), "{m} must not be open");
        }
    }

    #[test]
    fn fail_unlisted_method_denied_even_to_admin() {
        let l = layer();
        for path in [
            "/softstake.v1.Treasury/DrainPool",
            "/softstake.v1.Admin/Anything",
            "/other.v1.Service/Method",
        ] {
            let e = l.check(path, Some("Bearer t-admin")).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{path}");
            let e = l.check(path, None).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{path} without a token");
        }
        assert!(l
            .check("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn fail_client_over_its_rate_limit() {
        let l = layer().with_rate_limit(3);
        for _ in 0..3 {
            l.check("/softstake.v1.Rewards/GetApr", Some("Bearer t-admin")).unwrap();
        }
        let e = l
            .check("/softstake.v1.Rewards/GetApr", Some("Bearer t-admin"))
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        assert!(
            l.check("/softstake.v1.Treasury/ApprovePlan", Some("Bearer t-treasury"))
                .is_ok(),
            "another client keeps its own budget"
        );
    }

    #[test]
    fn fail_wrong_role_missing_and_unknown_token() {
        let l = layer();
        let e = l
            .check("/softstake.v1.Treasury/ApprovePlan", Some("Bearer t-ingest"))
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        let e = l
            .check("/softstake.v1.Admin/SetClock", Some("Bearer t-treasury"))
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            l.check("/softstake.v1.Rewards/GetApr", None).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            l.check("/softstake.v1.Rewards/GetApr", Some("Bearer nope"))
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
    }
}
