//! The gRPC services of the local Cosmos chain: every method of each service cosmos-sdk-proto
//! generates, the ones the chain serves handed to [`Node`], the rest answered with
//! `UNIMPLEMENTED` as a node without that module would.
//!
//! Written out from cosmos-sdk-proto 0.27's generated `*_server` traits.

use tonic_cosmos::{Request, Response, Status};

use super::{auth, bank, cmt, distr, staking, txpb, Node};

fn unimplemented<T>(method: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "{method} is not served by the local chain"
    )))
}

#[tonic_cosmos::async_trait]
impl staking::query_server::Query for Node {
    async fn validators(
        &self,
        r: Request<staking::QueryValidatorsRequest>,
    ) -> Result<Response<staking::QueryValidatorsResponse>, Status> {
        self.staking_validators(r.into_inner()).map(Response::new)
    }
    async fn validator(
        &self,
        _: Request<staking::QueryValidatorRequest>,
    ) -> Result<Response<staking::QueryValidatorResponse>, Status> {
        unimplemented("Query validator")
    }
    async fn validator_delegations(
        &self,
        _: Request<staking::QueryValidatorDelegationsRequest>,
    ) -> Result<Response<staking::QueryValidatorDelegationsResponse>, Status> {
        unimplemented("Query validator_delegations")
    }
    async fn validator_unbonding_delegations(
        &self,
        _: Request<staking::QueryValidatorUnbondingDelegationsRequest>,
    ) -> Result<Response<staking::QueryValidatorUnbondingDelegationsResponse>, Status> {
        unimplemented("Query validator_unbonding_delegations")
    }
    async fn delegation(
        &self,
        r: Request<staking::QueryDelegationRequest>,
    ) -> Result<Response<staking::QueryDelegationResponse>, Status> {
        self.staking_delegation(r.into_inner()).map(Response::new)
    }
    async fn unbonding_delegation(
        &self,
        _: Request<staking::QueryUnbondingDelegationRequest>,
    ) -> Result<Response<staking::QueryUnbondingDelegationResponse>, Status> {
        unimplemented("Query unbonding_delegation")
    }
    async fn delegator_delegations(
        &self,
        r: Request<staking::QueryDelegatorDelegationsRequest>,
    ) -> Result<Response<staking::QueryDelegatorDelegationsResponse>, Status> {
        self.staking_delegator_delegations(r.into_inner()).map(Response::new)
    }
    async fn delegator_unbonding_delegations(
        &self,
        r: Request<staking::QueryDelegatorUnbondingDelegationsRequest>,
    ) -> Result<Response<staking::QueryDelegatorUnbondingDelegationsResponse>, Status> {
        self.staking_delegator_unbonding_delegations(r.into_inner())
            .map(Response::new)
    }
    async fn redelegations(
        &self,
        _: Request<staking::QueryRedelegationsRequest>,
    ) -> Result<Response<staking::QueryRedelegationsResponse>, Status> {
        unimplemented("Query redelegations")
    }
    async fn delegator_validators(
        &self,
        _: Request<staking::QueryDelegatorValidatorsRequest>,
    ) -> Result<Response<staking::QueryDelegatorValidatorsResponse>, Status> {
        unimplemented("Query delegator_validators")
    }
    async fn delegator_validator(
        &self,
        _: Request<staking::QueryDelegatorValidatorRequest>,
    ) -> Result<Response<staking::QueryDelegatorValidatorResponse>, Status> {
        unimplemented("Query delegator_validator")
    }
    async fn historical_info(
        &self,
        _: Request<staking::QueryHistoricalInfoRequest>,
    ) -> Result<Response<staking::QueryHistoricalInfoResponse>, Status> {
        unimplemented("Query historical_info")
    }
    async fn pool(
        &self,
        _: Request<staking::QueryPoolRequest>,
    ) -> Result<Response<staking::QueryPoolResponse>, Status> {
        unimplemented("Query pool")
    }
    async fn params(
        &self,
        r: Request<staking::QueryParamsRequest>,
    ) -> Result<Response<staking::QueryParamsResponse>, Status> {
        self.staking_params(r.into_inner()).map(Response::new)
    }
}

#[tonic_cosmos::async_trait]
impl distr::query_server::Query for Node {
    async fn params(
        &self,
        _: Request<distr::QueryParamsRequest>,
    ) -> Result<Response<distr::QueryParamsResponse>, Status> {
        unimplemented("Query params")
    }
    async fn validator_distribution_info(
        &self,
        _: Request<distr::QueryValidatorDistributionInfoRequest>,
    ) -> Result<Response<distr::QueryValidatorDistributionInfoResponse>, Status> {
        unimplemented("Query validator_distribution_info")
    }
    async fn validator_outstanding_rewards(
        &self,
        _: Request<distr::QueryValidatorOutstandingRewardsRequest>,
    ) -> Result<Response<distr::QueryValidatorOutstandingRewardsResponse>, Status> {
        unimplemented("Query validator_outstanding_rewards")
    }
    async fn validator_commission(
        &self,
        _: Request<distr::QueryValidatorCommissionRequest>,
    ) -> Result<Response<distr::QueryValidatorCommissionResponse>, Status> {
        unimplemented("Query validator_commission")
    }
    async fn validator_slashes(
        &self,
        _: Request<distr::QueryValidatorSlashesRequest>,
    ) -> Result<Response<distr::QueryValidatorSlashesResponse>, Status> {
        unimplemented("Query validator_slashes")
    }
    async fn delegation_rewards(
        &self,
        r: Request<distr::QueryDelegationRewardsRequest>,
    ) -> Result<Response<distr::QueryDelegationRewardsResponse>, Status> {
        self.distr_delegation_rewards(r.into_inner()).map(Response::new)
    }
    async fn delegation_total_rewards(
        &self,
        r: Request<distr::QueryDelegationTotalRewardsRequest>,
    ) -> Result<Response<distr::QueryDelegationTotalRewardsResponse>, Status> {
        self.distr_delegation_total_rewards(r.into_inner()).map(Response::new)
    }
    async fn delegator_validators(
        &self,
        _: Request<distr::QueryDelegatorValidatorsRequest>,
    ) -> Result<Response<distr::QueryDelegatorValidatorsResponse>, Status> {
        unimplemented("Query delegator_validators")
    }
    async fn delegator_withdraw_address(
        &self,
        _: Request<distr::QueryDelegatorWithdrawAddressRequest>,
    ) -> Result<Response<distr::QueryDelegatorWithdrawAddressResponse>, Status> {
        unimplemented("Query delegator_withdraw_address")
    }
    async fn community_pool(
        &self,
        _: Request<distr::QueryCommunityPoolRequest>,
    ) -> Result<Response<distr::QueryCommunityPoolResponse>, Status> {
        unimplemented("Query community_pool")
    }
}

#[tonic_cosmos::async_trait]
impl auth::query_server::Query for Node {
    async fn accounts(
        &self,
        _: Request<auth::QueryAccountsRequest>,
    ) -> Result<Response<auth::QueryAccountsResponse>, Status> {
        unimplemented("Query accounts")
    }
    async fn account(
        &self,
        r: Request<auth::QueryAccountRequest>,
    ) -> Result<Response<auth::QueryAccountResponse>, Status> {
        self.auth_account(r.into_inner()).map(Response::new)
    }
    async fn account_address_by_id(
        &self,
        _: Request<auth::QueryAccountAddressByIdRequest>,
    ) -> Result<Response<auth::QueryAccountAddressByIdResponse>, Status> {
        unimplemented("Query account_address_by_id")
    }
    async fn params(
        &self,
        _: Request<auth::QueryParamsRequest>,
    ) -> Result<Response<auth::QueryParamsResponse>, Status> {
        unimplemented("Query params")
    }
    async fn module_accounts(
        &self,
        _: Request<auth::QueryModuleAccountsRequest>,
    ) -> Result<Response<auth::QueryModuleAccountsResponse>, Status> {
        unimplemented("Query module_accounts")
    }
    async fn module_account_by_name(
        &self,
        _: Request<auth::QueryModuleAccountByNameRequest>,
    ) -> Result<Response<auth::QueryModuleAccountByNameResponse>, Status> {
        unimplemented("Query module_account_by_name")
    }
    async fn bech32_prefix(
        &self,
        _: Request<auth::Bech32PrefixRequest>,
    ) -> Result<Response<auth::Bech32PrefixResponse>, Status> {
        unimplemented("Query bech32_prefix")
    }
    async fn address_bytes_to_string(
        &self,
        _: Request<auth::AddressBytesToStringRequest>,
    ) -> Result<Response<auth::AddressBytesToStringResponse>, Status> {
        unimplemented("Query address_bytes_to_string")
    }
    async fn address_string_to_bytes(
        &self,
        _: Request<auth::AddressStringToBytesRequest>,
    ) -> Result<Response<auth::AddressStringToBytesResponse>, Status> {
        unimplemented("Query address_string_to_bytes")
    }
    async fn account_info(
        &self,
        _: Request<auth::QueryAccountInfoRequest>,
    ) -> Result<Response<auth::QueryAccountInfoResponse>, Status> {
        unimplemented("Query account_info")
    }
}

#[tonic_cosmos::async_trait]
impl bank::query_server::Query for Node {
    async fn balance(
        &self,
        r: Request<bank::QueryBalanceRequest>,
    ) -> Result<Response<bank::QueryBalanceResponse>, Status> {
        self.bank_balance(r.into_inner()).map(Response::new)
    }
    async fn all_balances(
        &self,
        _: Request<bank::QueryAllBalancesRequest>,
    ) -> Result<Response<bank::QueryAllBalancesResponse>, Status> {
        unimplemented("Query all_balances")
    }
    async fn spendable_balances(
        &self,
        _: Request<bank::QuerySpendableBalancesRequest>,
    ) -> Result<Response<bank::QuerySpendableBalancesResponse>, Status> {
        unimplemented("Query spendable_balances")
    }
    async fn spendable_balance_by_denom(
        &self,
        _: Request<bank::QuerySpendableBalanceByDenomRequest>,
    ) -> Result<Response<bank::QuerySpendableBalanceByDenomResponse>, Status> {
        unimplemented("Query spendable_balance_by_denom")
    }
    async fn total_supply(
        &self,
        _: Request<bank::QueryTotalSupplyRequest>,
    ) -> Result<Response<bank::QueryTotalSupplyResponse>, Status> {
        unimplemented("Query total_supply")
    }
    async fn supply_of(
        &self,
        _: Request<bank::QuerySupplyOfRequest>,
    ) -> Result<Response<bank::QuerySupplyOfResponse>, Status> {
        unimplemented("Query supply_of")
    }
    async fn params(
        &self,
        _: Request<bank::QueryParamsRequest>,
    ) -> Result<Response<bank::QueryParamsResponse>, Status> {
        unimplemented("Query params")
    }
    async fn denom_metadata(
        &self,
        _: Request<bank::QueryDenomMetadataRequest>,
    ) -> Result<Response<bank::QueryDenomMetadataResponse>, Status> {
        unimplemented("Query denom_metadata")
    }
    async fn denom_metadata_by_query_string(
        &self,
        _: Request<bank::QueryDenomMetadataByQueryStringRequest>,
    ) -> Result<Response<bank::QueryDenomMetadataByQueryStringResponse>, Status> {
        unimplemented("Query denom_metadata_by_query_string")
    }
    async fn denoms_metadata(
        &self,
        _: Request<bank::QueryDenomsMetadataRequest>,
    ) -> Result<Response<bank::QueryDenomsMetadataResponse>, Status> {
        unimplemented("Query denoms_metadata")
    }
    async fn denom_owners(
        &self,
        _: Request<bank::QueryDenomOwnersRequest>,
    ) -> Result<Response<bank::QueryDenomOwnersResponse>, Status> {
        unimplemented("Query denom_owners")
    }
    async fn denom_owners_by_query(
        &self,
        _: Request<bank::QueryDenomOwnersByQueryRequest>,
    ) -> Result<Response<bank::QueryDenomOwnersByQueryResponse>, Status> {
        unimplemented("Query denom_owners_by_query")
    }
    async fn send_enabled(
        &self,
        _: Request<bank::QuerySendEnabledRequest>,
    ) -> Result<Response<bank::QuerySendEnabledResponse>, Status> {
        unimplemented("Query send_enabled")
    }
}

#[tonic_cosmos::async_trait]
impl txpb::service_server::Service for Node {
    async fn simulate(&self, r: Request<txpb::SimulateRequest>) -> Result<Response<txpb::SimulateResponse>, Status> {
        self.txpb_simulate(r.into_inner()).map(Response::new)
    }
    async fn get_tx(&self, r: Request<txpb::GetTxRequest>) -> Result<Response<txpb::GetTxResponse>, Status> {
        self.txpb_get_tx(r.into_inner()).map(Response::new)
    }
    async fn broadcast_tx(
        &self,
        _: Request<txpb::BroadcastTxRequest>,
    ) -> Result<Response<txpb::BroadcastTxResponse>, Status> {
        unimplemented("Service broadcast_tx")
    }
    async fn get_txs_event(
        &self,
        r: Request<txpb::GetTxsEventRequest>,
    ) -> Result<Response<txpb::GetTxsEventResponse>, Status> {
        self.txpb_get_txs_event(r.into_inner()).map(Response::new)
    }
    async fn get_block_with_txs(
        &self,
        _: Request<txpb::GetBlockWithTxsRequest>,
    ) -> Result<Response<txpb::GetBlockWithTxsResponse>, Status> {
        unimplemented("Service get_block_with_txs")
    }
    async fn tx_decode(&self, _: Request<txpb::TxDecodeRequest>) -> Result<Response<txpb::TxDecodeResponse>, Status> {
        unimplemented("Service tx_decode")
    }
    async fn tx_encode(&self, _: Request<txpb::TxEncodeRequest>) -> Result<Response<txpb::TxEncodeResponse>, Status> {
        unimplemented("Service tx_encode")
    }
    async fn tx_encode_amino(
        &self,
        _: Request<txpb::TxEncodeAminoRequest>,
    ) -> Result<Response<txpb::TxEncodeAminoResponse>, Status> {
        unimplemented("Service tx_encode_amino")
    }
    async fn tx_decode_amino(
        &self,
        _: Request<txpb::TxDecodeAminoRequest>,
    ) -> Result<Response<txpb::TxDecodeAminoResponse>, Status> {
        unimplemented("Service tx_decode_amino")
    }
}

#[tonic_cosmos::async_trait]
impl cmt::service_server::Service for Node {
    async fn get_node_info(
        &self,
        _: Request<cmt::GetNodeInfoRequest>,
    ) -> Result<Response<cmt::GetNodeInfoResponse>, Status> {
        unimplemented("Service get_node_info")
    }
    async fn get_syncing(
        &self,
        _: Request<cmt::GetSyncingRequest>,
    ) -> Result<Response<cmt::GetSyncingResponse>, Status> {
        unimplemented("Service get_syncing")
    }
    async fn get_latest_block(
        &self,
        r: Request<cmt::GetLatestBlockRequest>,
    ) -> Result<Response<cmt::GetLatestBlockResponse>, Status> {
        self.cmt_get_latest_block(r.into_inner()).map(Response::new)
    }
    async fn get_block_by_height(
        &self,
        _: Request<cmt::GetBlockByHeightRequest>,
    ) -> Result<Response<cmt::GetBlockByHeightResponse>, Status> {
        unimplemented("Service get_block_by_height")
    }
    async fn get_latest_validator_set(
        &self,
        _: Request<cmt::GetLatestValidatorSetRequest>,
    ) -> Result<Response<cmt::GetLatestValidatorSetResponse>, Status> {
        unimplemented("Service get_latest_validator_set")
    }
    async fn get_validator_set_by_height(
        &self,
        _: Request<cmt::GetValidatorSetByHeightRequest>,
    ) -> Result<Response<cmt::GetValidatorSetByHeightResponse>, Status> {
        unimplemented("Service get_validator_set_by_height")
    }
    async fn abci_query(&self, _: Request<cmt::AbciQueryRequest>) -> Result<Response<cmt::AbciQueryResponse>, Status> {
        unimplemented("Service abci_query")
    }
}
