// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

// A local stand-in for Sonic's staking, for tests on anvil.
//
// Follows the interface and rules of 0xsoniclabs/sonic-sfc (`contracts/sfc/SFC.sol` and
// `ConstantsManager.sol`, the Special Fee Contract at 0xFC00FACE00000000000000000000000000000000):
// the same function signatures, events and custom errors for everything softstake calls;
// delegation to a validator id (`delegate(toValidatorID)` payable), undelegation into a
// withdrawal request named by the caller's `wrID`, withdrawal once both
// `withdrawalPeriodTime` and `withdrawalPeriodEpochs` have passed, rewards accrued per
// sealed epoch (delegators' part = reward minus `validatorCommission`, spread by
// accumulated reward per token), claimed with `claimRewards` (they never compound by
// themselves), the self-stake rules (`minSelfStake`, `maxDelegatedRatio`), and the
// slashing penalty applied on withdrawal of a cheater's stake.
//
// Test-only deviations, and why:
// - `sealEpoch(validatorIDs, rewards)` is payable and may be called by anyone: on Sonic
//   the node driver seals epochs and the rewards are minted from `baseRewardPerSecond`
//   and transaction fees; a test pays them in instead;
// - `markCheater(validatorID, refundRatio)` stands in for the node driver's
//   `deactivateValidator(id, DOUBLESIGN_BIT)` plus the owner's `updateSlashingRefundRatio`.
// The SFC is installed with `anvil_setCode` at 0xFC00FACE...: its only constructor state
// is the immutable ConstantsManager address, which lives in the runtime code.

/// Network constants (sonic-sfc ConstantsManager.sol); decimals are 1e18-scaled.
contract ConstantsManager {
    uint256 public minSelfStake = 500_000 ether;
    uint256 public maxDelegatedRatio = 16 * 1e18;
    uint256 public validatorCommission = 15 * 1e16;
    uint256 public withdrawalPeriodEpochs = 3;
    uint256 public withdrawalPeriodTime = 14 days;
}

contract SFC {
    uint256 internal constant OK_STATUS = 0;
    uint256 internal constant WITHDRAWN_BIT = 1;
    uint256 internal constant DOUBLESIGN_BIT = 1 << 7;
    uint256 internal constant UNIT = 1e18;

    struct Validator {
        uint256 status;
        uint256 receivedStake;
        address auth;
        uint256 createdEpoch;
        uint256 createdTime;
        uint256 deactivatedTime;
        uint256 deactivatedEpoch;
    }

    struct WithdrawalRequest {
        uint256 epoch;
        uint256 time;
        uint256 amount;
    }

    ConstantsManager internal immutable c;

    uint256 public currentSealedEpoch;
    mapping(uint256 => Validator) public getValidator;
    mapping(address => uint256) public getValidatorID;
    mapping(uint256 => bytes) public getValidatorPubkey;
    uint256 public lastValidatorID;
    uint256 public totalStake;
    uint256 public totalActiveStake;
    mapping(address => mapping(uint256 => mapping(uint256 => WithdrawalRequest))) public getWithdrawalRequest;
    mapping(address => mapping(uint256 => uint256)) public getStake;
    mapping(uint256 => uint256) public slashingRefundRatio;
    mapping(uint256 => uint256) internal endTimes;

    // validator => accumulated delegators' reward per staked unit (1e18-scaled)
    mapping(uint256 => uint256) internal accRewardPerToken;
    mapping(address => mapping(uint256 => uint256)) internal _rewardsStash;
    mapping(address => mapping(uint256 => uint256)) internal paidPerToken;
    mapping(address => mapping(uint256 => uint256)) public stashedRewardsUntilEpoch;

    error ZeroAmount();
    error ZeroRewards();
    error MalformedPubkey();
    error PubkeyUsedByOtherValidator();
    error ValidatorExists();
    error ValidatorNotExists();
    error ValidatorNotActive();
    error ValidatorDelegationLimitExceeded();
    error RequestExists();
    error RequestNotExists();
    error TransfersNotAllowed();
    error TransferFailed();
    error InsufficientSelfStake();
    error NotEnoughTimePassed();
    error NotEnoughEpochsPassed();
    error StakeIsFullySlashed();

    event CreatedValidator(uint256 indexed validatorID, address indexed auth, uint256 createdEpoch, uint256 createdTime);
    event Delegated(address indexed delegator, uint256 indexed toValidatorID, uint256 amount);
    event Undelegated(address indexed delegator, uint256 indexed toValidatorID, uint256 indexed wrID, uint256 amount);
    event Withdrawn(address indexed delegator, uint256 indexed toValidatorID, uint256 indexed wrID, uint256 amount, uint256 penalty);
    event ClaimedRewards(address indexed delegator, uint256 indexed toValidatorID, uint256 rewards);
    event RestakedRewards(address indexed delegator, uint256 indexed toValidatorID, uint256 rewards);

    constructor(address consts) {
        c = ConstantsManager(consts);
    }

    receive() external payable {
        revert TransfersNotAllowed();
    }

    function constsAddress() external view returns (address) {
        return address(c);
    }

    function currentEpoch() public view returns (uint256) {
        return currentSealedEpoch + 1;
    }

    function epochEndTime(uint256 epoch) external view returns (uint256) {
        return endTimes[epoch];
    }

    function getSelfStake(uint256 validatorID) public view returns (uint256) {
        return getStake[getValidator[validatorID].auth][validatorID];
    }

    function isSlashed(uint256 validatorID) public view returns (bool) {
        return getValidator[validatorID].status & DOUBLESIGN_BIT != 0;
    }

    function rewardsStash(address delegator, uint256 validatorID) external view returns (uint256) {
        return _rewardsStash[delegator][validatorID];
    }

    function pendingRewards(address delegator, uint256 toValidatorID) public view returns (uint256) {
        return _rewardsStash[delegator][toValidatorID] + _newRewards(delegator, toValidatorID);
    }

    function createValidator(bytes calldata pubkey) external payable {
        if (msg.value < c.minSelfStake()) revert InsufficientSelfStake();
        if (pubkey.length != 66 || pubkey[0] != 0xc0) revert MalformedPubkey();
        if (getValidatorID[msg.sender] != 0) revert ValidatorExists();
        uint256 id = ++lastValidatorID;
        getValidatorID[msg.sender] = id;
        getValidatorPubkey[id] = pubkey;
        Validator storage v = getValidator[id];
        v.auth = msg.sender;
        v.createdEpoch = currentEpoch();
        v.createdTime = block.timestamp;
        emit CreatedValidator(id, msg.sender, v.createdEpoch, v.createdTime);
        _delegate(msg.sender, id, msg.value);
    }

    function delegate(uint256 toValidatorID) external payable {
        _delegate(msg.sender, toValidatorID, msg.value);
    }

    function undelegate(uint256 toValidatorID, uint256 wrID, uint256 amount) public {
        address delegator = msg.sender;
        _stashRewards(delegator, toValidatorID);
        if (amount == 0) revert ZeroAmount();
        if (getWithdrawalRequest[delegator][toValidatorID][wrID].amount != 0) revert RequestExists();
        getStake[delegator][toValidatorID] -= amount;
        Validator storage v = getValidator[toValidatorID];
        v.receivedStake -= amount;
        totalStake -= amount;
        if (v.status == OK_STATUS) totalActiveStake -= amount;
        if (delegator == v.auth && getStake[delegator][toValidatorID] < c.minSelfStake()) revert InsufficientSelfStake();
        getWithdrawalRequest[delegator][toValidatorID][wrID] = WithdrawalRequest(currentEpoch(), block.timestamp, amount);
        emit Undelegated(delegator, toValidatorID, wrID, amount);
    }

    function withdraw(uint256 toValidatorID, uint256 wrID) public {
        address delegator = msg.sender;
        WithdrawalRequest memory request = getWithdrawalRequest[delegator][toValidatorID][wrID];
        if (request.epoch == 0) revert RequestNotExists();
        if (block.timestamp < request.time + c.withdrawalPeriodTime()) revert NotEnoughTimePassed();
        if (currentEpoch() < request.epoch + c.withdrawalPeriodEpochs()) revert NotEnoughEpochsPassed();
        delete getWithdrawalRequest[delegator][toValidatorID][wrID];
        uint256 penalty = _slashingPenalty(request.amount, toValidatorID);
        if (request.amount <= penalty) revert StakeIsFullySlashed();
        (bool sent, ) = payable(delegator).call{value: request.amount - penalty}("");
        if (!sent) revert TransferFailed();
        emit Withdrawn(delegator, toValidatorID, wrID, request.amount - penalty, penalty);
    }

    function claimRewards(uint256 toValidatorID) public {
        address delegator = msg.sender;
        uint256 rewards = _claimRewards(delegator, toValidatorID);
        (bool sent, ) = payable(delegator).call{value: rewards}("");
        if (!sent) revert TransferFailed();
        emit ClaimedRewards(delegator, toValidatorID, rewards);
    }

    function restakeRewards(uint256 toValidatorID) public {
        address delegator = msg.sender;
        uint256 rewards = _claimRewards(delegator, toValidatorID);
        _delegate(delegator, toValidatorID, rewards);
        emit RestakedRewards(delegator, toValidatorID, rewards);
    }

    /// Test-only: seals the current epoch, paying `rewards[i]` (sent with the call) to
    /// validator `validatorIDs[i]`: its commission to the validator's auth, the rest to its
    /// delegators pro rata to stake.
    function sealEpoch(uint256[] calldata validatorIDs, uint256[] calldata rewards) external payable {
        require(validatorIDs.length == rewards.length, "lengths differ");
        uint256 sum;
        for (uint256 i = 0; i < validatorIDs.length; i++) {
            uint256 id = validatorIDs[i];
            Validator storage v = getValidator[id];
            if (v.auth == address(0)) revert ValidatorNotExists();
            sum += rewards[i];
            if (rewards[i] == 0 || v.receivedStake == 0) continue;
            uint256 commission = (rewards[i] * c.validatorCommission()) / UNIT;
            _stashRewards(v.auth, id);
            _rewardsStash[v.auth][id] += commission;
            accRewardPerToken[id] += ((rewards[i] - commission) * UNIT) / v.receivedStake;
        }
        require(sum == msg.value, "rewards must equal the value sent");
        endTimes[currentSealedEpoch + 1] = block.timestamp;
        currentSealedEpoch += 1;
    }

    /// Test-only: marks a validator as a double-signer whose stake refunds `refundRatio`
    /// (1e18 = all) on withdrawal.
    function markCheater(uint256 validatorID, uint256 refundRatio) external {
        Validator storage v = getValidator[validatorID];
        if (v.auth == address(0)) revert ValidatorNotExists();
        v.status |= DOUBLESIGN_BIT;
        v.deactivatedEpoch = currentEpoch();
        v.deactivatedTime = block.timestamp;
        totalActiveStake -= v.receivedStake;
        slashingRefundRatio[validatorID] = refundRatio;
    }

    function _delegate(address delegator, uint256 toValidatorID, uint256 amount) internal {
        Validator storage v = getValidator[toValidatorID];
        if (v.auth == address(0)) revert ValidatorNotExists();
        if (v.status != OK_STATUS) revert ValidatorNotActive();
        if (amount == 0) revert ZeroAmount();
        _stashRewards(delegator, toValidatorID);
        getStake[delegator][toValidatorID] += amount;
        v.receivedStake += amount;
        totalStake += amount;
        totalActiveStake += amount;
        if (v.receivedStake > (getSelfStake(toValidatorID) * c.maxDelegatedRatio()) / UNIT) {
            revert ValidatorDelegationLimitExceeded();
        }
        emit Delegated(delegator, toValidatorID, amount);
    }

    function _newRewards(address delegator, uint256 toValidatorID) internal view returns (uint256) {
        uint256 delta = accRewardPerToken[toValidatorID] - paidPerToken[delegator][toValidatorID];
        return (getStake[delegator][toValidatorID] * delta) / UNIT;
    }

    function _stashRewards(address delegator, uint256 toValidatorID) internal {
        _rewardsStash[delegator][toValidatorID] += _newRewards(delegator, toValidatorID);
        paidPerToken[delegator][toValidatorID] = accRewardPerToken[toValidatorID];
        stashedRewardsUntilEpoch[delegator][toValidatorID] = currentSealedEpoch;
    }

    function _claimRewards(address delegator, uint256 toValidatorID) internal returns (uint256 rewards) {
        _stashRewards(delegator, toValidatorID);
        rewards = _rewardsStash[delegator][toValidatorID];
        if (rewards == 0) revert ZeroRewards();
        _rewardsStash[delegator][toValidatorID] = 0;
    }

    function _slashingPenalty(uint256 amount, uint256 validatorID) internal view returns (uint256 penalty) {
        uint256 refundRatio = slashingRefundRatio[validatorID];
        if (!isSlashed(validatorID) || refundRatio >= UNIT) return 0;
        penalty = (amount * (UNIT - refundRatio)) / UNIT + 1;
        if (penalty > amount) return amount;
    }
}
