//! The gRPC services (`proto/softstake/v1/softstake.proto`).
//!
//! Input is validated before anything is read or written; a malformed field answers
//! `INVALID_ARGUMENT` naming the field. Store refusals map to `FAILED_PRECONDITION`
//! (state: closed day, distributed day), `NOT_FOUND`, or `INVALID_ARGUMENT`.

use futures_util::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tracing::info;

use softstake_core::plan::TreasuryPlan;
use softstake_core::twab::BalanceEvent;
use softstake_core::{Amount, Timestamp, TokenConfig};
use softstake_store::{Alert, IngestEvent, PlanRecord, PlanStatus, StoreError};

use super::auth::Caller;
use super::pb;
use super::{AppState, DaemonClock};
use crate::clock::Clock;
use crate::treasury::{self as tr};

/// Events written per store transaction while reading an ingest stream.
pub const INGEST_BATCH: usize = 1_000;
/// Largest page of a listing.
pub const MAX_PAGE: u32 = 500;

/// The gRPC services over the shared state.
#[derive(Debug, Clone)]
pub struct Api {
    state: AppState,
}

impl Api {
    /// Services over `state`.
    pub fn new(state: AppState) -> Api {
        Api { state }
    }

    fn now(&self) -> Timestamp {
        self.state.clock.now()
    }

    fn token(&self, field: &str, symbol: &str) -> Result<&TokenConfig, Status> {
        self.state
            .cfg
            .registry
            .get(symbol)
            .map_err(|_| Status::invalid_argument(format!("{field}: unknown token {symbol:?}")))
    }

    /// An optional `token` filter: `None` when the field is empty, else a known token's
    /// symbol (`INVALID_ARGUMENT` for an unknown one).
    fn token_filter(&self, raw: &str) -> Result<Option<String>, Status> {
        let t = raw.trim();
        if t.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.token("token", t)?.symbol.clone()))
    }
}

fn caller<T>(req: &Request<T>) -> String {
    req.extensions()
        .get::<Caller>()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "anonymous".into())
}

/// Maps a store error to the gRPC status a client can act on; anything else (the
/// database's own errors) is `INTERNAL` with only a request id ([`super::redact`]).
pub fn store_status(e: StoreError) -> Status {
    match client_code(&e) {
        Some(code) => Status::new(code, e.to_string()),
        None => super::redact::internal_status(&e.to_string()),
    }
}

/// Maps an orchestrator error: the store's as [`store_status`]; a refusal in the token's
/// current state (`FAILED_PRECONDITION`, with what to do); anything else (a chain's
/// answer, which may name an RPC URL) `INTERNAL` with only a request id.
pub fn orchestrator_status(e: crate::OrchestratorError) -> Status {
    use crate::OrchestratorError as E;
    match e {
        E::Store(e) => store_status(*e),
        E::Refused(_) | E::LeaseHeld { .. } | E::NoChain { .. } => Status::failed_precondition(e.to_string()),
        e => super::redact::internal_status(&e.to_string()),
    }
}

/// The status code of a store error the client caused or can act on; `None` for an
/// internal one.
fn client_code(e: &StoreError) -> Option<tonic::Code> {
    Some(match e {
        StoreError::NotFound(_) => tonic::Code::NotFound,
        StoreError::Core(_) | StoreError::EventIdReused { .. } | StoreError::ConflictingEvent { .. } => {
            tonic::Code::InvalidArgument
        }
        StoreError::DayOrder { .. }
        | StoreError::NotClosed { .. }
        | StoreError::AlreadyDistributed { .. }
        | StoreError::DistributeOrder { .. }
        | StoreError::EventInClosedDay { .. }
        | StoreError::RewardConflict { .. }
        | StoreError::RewardForDistributedDay { .. }
        | StoreError::Journal(_) => tonic::Code::FailedPrecondition,
        _ => return None,
    })
}

/// The figures of a stored plan into `out`.
fn fill_pool_status(
    out: &mut pb::PoolStatus,
    t: &softstake_core::TokenConfig,
    p: &softstake_core::plan::TreasuryPlan,
) -> Result<(), Status> {
    let liquid = softstake_core::buffer::unsigned(p.forecast.available_now);
    let ratio = softstake_core::allocate::ratio(liquid, p.custodial_total)
        .map_err(|e| super::redact::internal_status(&e.to_string()))?;
    out.custodial_units = t.format_amount(p.custodial_total);
    out.eligible_units = t.format_amount(p.total_eligible);
    out.activating_units = t.format_amount(p.totals.activating);
    out.active_units = t.format_amount(p.totals.active);
    out.deactivating_units = t.format_amount(p.totals.deactivating);
    out.withdrawable_units = t.format_amount(p.totals.withdrawable);
    out.target_buffer_units = t.format_amount(p.buffer.target_buffer);
    out.liquid_now_units = signed_units(t, p.forecast.liquid_now);
    out.available_1d_units = signed_units(t, p.forecast.available_1d);
    out.available_7d_units = signed_units(t, p.forecast.available_7d);
    out.available_21d_units = signed_units(t, p.forecast.available_21d);
    out.buffer_ratio = ratio.round_dp(6).normalize().to_string();
    Ok(())
}

fn required<'a>(field: &str, v: &'a str) -> Result<&'a str, Status> {
    let t = v.trim();
    if t.is_empty() {
        Err(Status::invalid_argument(format!("{field}: required")))
    } else {
        Ok(t)
    }
}

fn account_pb(a: &softstake_core::eligibility::Account) -> pb::Account {
    pb::Account {
        account_id: a.account_id.clone(),
        jurisdiction: a.jurisdiction.clone(),
        activated_at: a.activated_at.to_rfc3339(),
        deactivated_at: a.deactivated_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        first_eligible_day: a.activated_at.day().next().to_string(),
    }
}

#[tonic::async_trait]
impl pb::accounts_server::Accounts for Api {
    async fn activate(&self, req: Request<pb::ActivateRequest>) -> Result<Response<pb::Account>, Status> {
        let r = req.get_ref();
        let id = required("account_id", &r.account_id)?;
        let j = r.jurisdiction.trim();
        if !j.is_empty() {
            softstake_core::token::validate_jurisdiction(j)
                .map_err(|e| Status::invalid_argument(format!("jurisdiction: {e}")))?;
        }
        let a = self
            .state
            .store
            .activate(id, (!j.is_empty()).then_some(j), self.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound(m) => Status::invalid_argument(format!("jurisdiction: {m}")),
                other => store_status(other),
            })?;
        info!(account = %id, by = %caller(&req), "activated");
        Ok(Response::new(account_pb(&a)))
    }

    async fn deactivate(&self, req: Request<pb::DeactivateRequest>) -> Result<Response<pb::Account>, Status> {
        let id = required("account_id", &req.get_ref().account_id)?;
        let a = self
            .state
            .store
            .deactivate(id, self.now())
            .await
            .map_err(store_status)?;
        Ok(Response::new(account_pb(&a)))
    }

    async fn get_account(&self, req: Request<pb::GetAccountRequest>) -> Result<Response<pb::Account>, Status> {
        let id = required("account_id", &req.get_ref().account_id)?;
        let a = self
            .state
            .store
            .account(id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found(format!("account {id}")))?;
        Ok(Response::new(account_pb(&a)))
    }
}

impl Api {
    fn parse_event(&self, i: u64, e: &pb::BalanceEvent) -> Result<IngestEvent, Status> {
        let field = |f: &str| format!("events[{i}].{f}");
        let id = required(&field("event_id"), &e.event_id)?;
        let account = required(&field("account_id"), &e.account_id)?;
        if account.len() > crate::input::MAX_ACCOUNT_ID_BYTES {
            return Err(Status::invalid_argument(format!(
                "{}: {} bytes; at most {}",
                field("account_id"),
                account.len(),
                crate::input::MAX_ACCOUNT_ID_BYTES
            )));
        }
        let token = self.token(&field("token"), e.token.trim())?;
        let balance = token
            .parse_amount(&e.balance_units)
            .map_err(|err| Status::invalid_argument(format!("{}: {err}", field("balance_units"))))?;
        let ts = Timestamp::parse_rfc3339(&e.ts)
            .map_err(|err| Status::invalid_argument(format!("{}: {err}", field("ts"))))?;
        Ok(IngestEvent {
            event: BalanceEvent {
                ts,
                account_id: account.to_string(),
                token: token.symbol.clone(),
                balance,
            },
            event_id: Some(id.to_string()),
            line: Some(i),
        })
    }
}

#[tonic::async_trait]
impl pb::balances_server::Balances for Api {
    async fn ingest_balances(
        &self,
        req: Request<Streaming<pb::BalanceEvent>>,
    ) -> Result<Response<pb::IngestSummary>, Status> {
        let mut stream = req.into_inner();
        let mut summary = pb::IngestSummary::default();
        let mut batch = Vec::with_capacity(INGEST_BATCH);
        while let Some(msg) = stream.next().await {
            let e = msg?;
            batch.push(self.parse_event(summary.received, &e)?);
            summary.received += 1;
            if batch.len() == INGEST_BATCH {
                self.flush(&mut batch, &mut summary).await?;
            }
        }
        self.flush(&mut batch, &mut summary).await?;
        Ok(Response::new(summary))
    }
}

impl Api {
    async fn flush(&self, batch: &mut Vec<IngestEvent>, summary: &mut pb::IngestSummary) -> Result<(), Status> {
        if batch.is_empty() {
            return Ok(());
        }
        let rep = self.state.store.ingest_batch(batch).await.map_err(|e| {
            if client_code(&e).is_none() {
                return super::redact::internal_status(&e.to_string());
            }
            let at = e.line().map(|i| format!("events[{i}]: ")).unwrap_or_default();
            Status::failed_precondition(format!(
                "{at}{e}; the {} events before this batch were stored (resend them: ingest is idempotent by event_id)",
                summary.inserted + summary.duplicates
            ))
        })?;
        summary.inserted += rep.inserted;
        summary.duplicates += rep.duplicates;
        batch.clear();
        Ok(())
    }
}

#[tonic::async_trait]
impl pb::rewards_server::Rewards for Api {
    async fn list_distributions(
        &self,
        req: Request<pb::ListDistributionsRequest>,
    ) -> Result<Response<pb::ListDistributionsResponse>, Status> {
        let r = req.get_ref();
        let id = required("account_id", &r.account_id)?;
        let token = self.token_filter(&r.token)?;
        let size = if r.page_size == 0 {
            50
        } else {
            r.page_size.min(MAX_PAGE)
        };
        let offset: u32 = if r.page_token.is_empty() {
            0
        } else {
            r.page_token
                .parse()
                .map_err(|_| Status::invalid_argument("page_token: not a token from a previous response"))?
        };
        let mut rows = self
            .state
            .store
            .history(id, token.as_deref(), None, size + 1, offset)
            .await
            .map_err(store_status)?;
        let more = rows.len() > size as usize;
        rows.truncate(size as usize);
        let out = rows
            .iter()
            .map(|h| {
                let t = self.token("token", &h.token)?;
                Ok(pb::Distribution {
                    day: h.day.to_string(),
                    token: h.token.clone(),
                    average_units: t.format_amount(h.average),
                    eligible_units: t.format_amount(h.eligible),
                    reward_units: t.format_amount(h.reward),
                    paid_at: h.paid_at.to_rfc3339(),
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        Ok(Response::new(pb::ListDistributionsResponse {
            rows: out,
            next_page_token: if more {
                (offset + size).to_string()
            } else {
                String::new()
            },
        }))
    }

    async fn get_apr(&self, req: Request<pb::GetAprRequest>) -> Result<Response<pb::GetAprResponse>, Status> {
        let want = self.token_filter(&req.get_ref().token)?;
        let mut aprs = Vec::new();
        for a in self.state.store.latest_apr().await.map_err(store_status)? {
            if want.as_ref().is_some_and(|w| &a.token != w) {
                continue;
            }
            let trailing = self.state.store.trailing_apr(&a.token, 7).await.map_err(store_status)?;
            aprs.push(pb::TokenApr {
                token: a.token.clone(),
                day: a.day.to_string(),
                apr: a.apr.map(|d| d.to_string()).unwrap_or_default(),
                apr_trailing_7d: trailing.map(|d| d.to_string()).unwrap_or_default(),
            });
        }
        Ok(Response::new(pb::GetAprResponse { aprs }))
    }
}

fn alert_pb(a: &Alert, t: Option<&TokenConfig>) -> pb::Alert {
    pb::Alert {
        id: a.id,
        token: a.token.clone(),
        kind: a.kind.clone(),
        message: a.message.clone(),
        shortfall_units: t
            .map(|t| t.format_amount(a.shortfall))
            .unwrap_or_else(|| a.shortfall.to_string()),
        exit_eta: a.exit_eta.map(|e| e.to_rfc3339()).unwrap_or_default(),
        freezes_moves: a.freeze,
        created_at: a.created_at.to_rfc3339(),
        acknowledged_at: a.acknowledged_at.map(|e| e.to_rfc3339()).unwrap_or_default(),
        acknowledged_by: a.acknowledged_by.clone().unwrap_or_default(),
    }
}

fn signed_units(t: &TokenConfig, v: i128) -> String {
    let s = t.format_amount(Amount(v.unsigned_abs()));
    if v < 0 {
        format!("-{s}")
    } else {
        s
    }
}

/// The plan as the API shows it, from its stored record.
pub fn plan_pb(p: &PlanRecord, t: Option<&TokenConfig>) -> pb::Plan {
    let fmt = |a: Amount| t.map(|t| t.format_amount(a)).unwrap_or_else(|| a.to_string());
    let ops = serde_json::from_str::<TreasuryPlan>(&p.body)
        .map(|plan| {
            plan.ops
                .iter()
                .map(|o| pb::PlannedOperation {
                    seq: o.seq,
                    kind: o.kind.as_str().into(),
                    validator: o.validator.clone(),
                    amount_units: fmt(o.amount),
                    reason: o.reason.clone(),
                    idempotency_key: o.idempotency_key.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    pb::Plan {
        plan_id: p.plan_id.clone(),
        token: p.token.clone(),
        epoch: p.epoch,
        status: p.status.as_str().into(),
        moved_units: fmt(p.moved),
        needs_approval: p.needs_approval,
        approved_by: p.approved_by.clone().unwrap_or_default(),
        created_at: p.created_at.to_rfc3339(),
        operations: ops,
    }
}

#[tonic::async_trait]
impl pb::treasury_server::Treasury for Api {
    async fn get_pool_status(
        &self,
        req: Request<pb::GetPoolStatusRequest>,
    ) -> Result<Response<pb::GetPoolStatusResponse>, Status> {
        let tokens: Vec<String> = match self.token_filter(&req.get_ref().token)? {
            Some(want) => vec![want],
            None => self.state.chains.tokens().map(str::to_string).collect(),
        };
        let mut out = Vec::new();
        for sym in tokens {
            let t = self.token("token", &sym)?;
            let alerts = self.state.store.alerts(Some(&sym), false).await.map_err(store_status)?;
            let last = self.state.store.last_closed_day(&sym).await.map_err(store_status)?;
            let mut status = pb::PoolStatus {
                token: sym.clone(),
                last_closed_day: last.map(|d| d.to_string()).unwrap_or_default(),
                alerts: alerts.iter().map(|a| alert_pb(a, Some(t))).collect(),
                ..Default::default()
            };
            if let Some((at, body)) = self.state.store.pool_status(&sym).await.map_err(store_status)? {
                let p: softstake_core::plan::TreasuryPlan = serde_json::from_str(&body)
                    .map_err(|e| super::redact::internal_status(&format!("pool_status of {sym}: {e}")))?;
                fill_pool_status(&mut status, t, &p)?;
                status.as_of = at.to_string();
            }
            out.push(status);
        }
        Ok(Response::new(pb::GetPoolStatusResponse { tokens: out }))
    }

    async fn list_plans(&self, req: Request<pb::ListPlansRequest>) -> Result<Response<pb::ListPlansResponse>, Status> {
        let r = req.get_ref();
        let token = self.token_filter(&r.token)?;
        let limit = if r.limit == 0 { 50 } else { r.limit.min(MAX_PAGE) };
        let plans = self
            .state
            .store
            .plans(token.as_deref(), limit)
            .await
            .map_err(store_status)?;
        let reg = &self.state.cfg.registry;
        Ok(Response::new(pb::ListPlansResponse {
            plans: plans.iter().map(|p| plan_pb(p, reg.get(&p.token).ok())).collect(),
        }))
    }

    async fn approve_plan(&self, req: Request<pb::ApprovePlanRequest>) -> Result<Response<pb::Plan>, Status> {
        let id = required("plan_id", &req.get_ref().plan_id)?;
        let by = caller(&req);
        self.state
            .store
            .set_plan_status(id, &[PlanStatus::Proposed], PlanStatus::Approved, Some(&by), self.now())
            .await
            .map_err(store_status)?;
        info!(plan = %id, by = %by, "plan approved");
        self.plan_response(id).await
    }

    async fn reject_plan(&self, req: Request<pb::RejectPlanRequest>) -> Result<Response<pb::Plan>, Status> {
        let id = required("plan_id", &req.get_ref().plan_id)?;
        let reason = required("reason", &req.get_ref().reason)?;
        let by = format!("{} (rejected: {reason})", caller(&req));
        self.state
            .store
            .set_plan_status(
                id,
                &[PlanStatus::Proposed, PlanStatus::Approved],
                PlanStatus::Rejected,
                Some(&by),
                self.now(),
            )
            .await
            .map_err(store_status)?;
        self.plan_response(id).await
    }

    async fn acknowledge_drift(
        &self,
        req: Request<pb::AcknowledgeDriftRequest>,
    ) -> Result<Response<pb::Alert>, Status> {
        let id = req.get_ref().alert_id;
        if id <= 0 {
            return Err(Status::invalid_argument("alert_id: required"));
        }
        let alert = self
            .state
            .store
            .alert(id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found(format!("alert {id}")))?;
        if !alert.freeze || alert.acknowledged_at.is_some() {
            return Err(Status::failed_precondition(format!(
                "alert {id} is not an open drift alert"
            )));
        }
        let chain = self
            .state
            .chains
            .get(&alert.token)
            .map_err(|e| Status::failed_precondition(super::redact::redact_urls(&format!("{e:#}"))))?;
        let by = caller(&req);
        tr::acknowledge_drift(&self.state.store, chain.adapter.as_ref(), id, &by, self.now())
            .await
            .map_err(orchestrator_status)?;
        let a = self
            .state
            .store
            .alert(id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found(format!("alert {id}")))?;
        Ok(Response::new(alert_pb(&a, self.state.cfg.registry.get(&a.token).ok())))
    }

    async fn list_operations(
        &self,
        req: Request<pb::ListOperationsRequest>,
    ) -> Result<Response<pb::ListOperationsResponse>, Status> {
        let r = req.get_ref();
        let token = self.token_filter(&r.token)?;
        let limit = if r.limit == 0 { 100 } else { r.limit.min(MAX_PAGE) };
        let ops = self
            .state
            .store
            .operations(token.as_deref(), limit)
            .await
            .map_err(store_status)?;
        let reg = &self.state.cfg.registry;
        Ok(Response::new(pb::ListOperationsResponse {
            operations: ops
                .iter()
                .map(|o| pb::Operation {
                    idempotency_key: o.idempotency_key.clone(),
                    plan_id: o.plan_id.clone(),
                    token: o.token.clone(),
                    kind: o.kind.as_str().into(),
                    validator: o.validator.clone(),
                    amount_units: reg
                        .get(&o.token)
                        .map(|t| t.format_amount(o.amount))
                        .unwrap_or_else(|_| o.amount.to_string()),
                    state: o.state.as_str().into(),
                    tx_id: o.tx_id.clone().unwrap_or_default(),
                    attempts: o.attempts,
                    error: o.error.clone().unwrap_or_default(),
                    updated_at: o.updated_at.to_rfc3339(),
                })
                .collect(),
        }))
    }
}

impl Api {
    async fn plan_response(&self, id: &str) -> Result<Response<pb::Plan>, Status> {
        let p = self
            .state
            .store
            .plan(id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found(format!("plan {id}")))?;
        Ok(Response::new(plan_pb(&p, self.state.cfg.registry.get(&p.token).ok())))
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for Api {
    async fn set_clock(&self, req: Request<pb::SetClockRequest>) -> Result<Response<pb::SetClockResponse>, Status> {
        let DaemonClock::Manual(clock) = &self.state.clock else {
            return Err(Status::failed_precondition(
                "the daemon runs on the system clock; start it with --manual-clock",
            ));
        };
        let t =
            Timestamp::parse_rfc3339(&req.get_ref().now).map_err(|e| Status::invalid_argument(format!("now: {e}")))?;
        clock.set(t);
        info!(now = %clock.now(), by = %caller(&req), "clock set");
        Ok(Response::new(pb::SetClockResponse {
            now: clock.now().to_rfc3339(),
        }))
    }
}
