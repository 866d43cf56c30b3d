// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

// A local stand-in for BNB Smart Chain's native staking, for tests on anvil.
//
// Follows the interfaces and rules of bnb-chain/bsc-genesis-contract (StakeHub and
// StakeCredit, the "BC fusion" staking live since 2024; their real ABIs are in
// crates/adapters/abi/bsc, and the adapter is generated from those): the same function
// signatures, events and custom errors for everything softstake calls, delegation into per-validator StakeCredit share pools
// (shares <-> BNB at the pool's price, floor rounding), rewards that raise the share
// price, undelegation into unbond requests unlocked by timestamp after `unbondPeriod`
// (7 days), and claims of matured requests in order.
//
// Test-only deviations, and why:
// - `addValidator` replaces `createValidator` (no BLS proof, no consensus key);
// - `distributeReward` takes the operator address and may be called by anyone (on the
//   real chain the BSCValidatorSet system contract calls it with the consensus address);
// - `slash` lets a test take BNB out of a pool (on the real chain: SlashIndicator);
// - a validator's consensus address is its operator address (no consensus key);
// - `BSCValidatorSet.setValidators` lets a test elect the set (on the real chain the
//   breathe block elects the top `maxElectedValidators` by voting power).
// The hub is installed with `anvil_setCode` at 0x...2002 and the validator set at
// 0x...1000, so they keep no constructor state.

/// The elected validator set (bsc-genesis-contract BSCValidatorSet.sol, at 0x...1000):
/// `getValidators()` returns the consensus addresses of the current elected validators.
contract BSCValidatorSet {
    address[] private _elected;

    function getValidators() external view returns (address[] memory) {
        return _elected;
    }

    /// Test-only (see the header): elects `consensusAddrs`.
    function setValidators(address[] calldata consensusAddrs) external {
        _elected = consensusAddrs;
    }
}

/// Per-validator share pool (bsc-genesis-contract StakeCredit.sol).
contract StakeCredit {
    struct UnbondRequest {
        uint256 shares;
        uint256 bnbAmount;
        uint256 unlockTime;
    }

    error OnlyStakeHub();
    error ZeroAmount();
    error ZeroShares();
    error InsufficientBalance();
    error NoClaimableUnbondRequest();
    error NoUnbondRequest();
    error OutOfBounds();
    error TransferFailed();

    event Transfer(address indexed from, address indexed to, uint256 value);
    event RewardReceived(uint256 rewardToAll, uint256 commission);

    address public stakeHub;
    address public operatorAddress;
    uint256 public totalSupply;
    uint256 public totalPooledBNB;
    mapping(address => uint256) public balanceOf;

    mapping(address => UnbondRequest[]) private _requests;
    mapping(address => uint256) private _head;

    constructor(address operator) {
        stakeHub = msg.sender;
        operatorAddress = operator;
    }

    modifier onlyStakeHub() {
        if (msg.sender != stakeHub) revert OnlyStakeHub();
        _;
    }

    function decimals() external pure returns (uint8) {
        return 18;
    }

    function getSharesByPooledBNB(uint256 bnbAmount) public view returns (uint256) {
        if (totalSupply == 0 || totalPooledBNB == 0) return bnbAmount;
        return (bnbAmount * totalSupply) / totalPooledBNB;
    }

    function getPooledBNBByShares(uint256 shares) public view returns (uint256) {
        if (totalSupply == 0) return 0;
        return (shares * totalPooledBNB) / totalSupply;
    }

    function getPooledBNB(address account) external view returns (uint256) {
        return getPooledBNBByShares(balanceOf[account]);
    }

    function delegate(address delegator) external payable onlyStakeHub returns (uint256 shares) {
        if (msg.value == 0) revert ZeroAmount();
        shares = getSharesByPooledBNB(msg.value);
        if (shares == 0) revert ZeroShares();
        totalPooledBNB += msg.value;
        totalSupply += shares;
        balanceOf[delegator] += shares;
        emit Transfer(address(0), delegator, shares);
    }

    function undelegate(address delegator, uint256 shares) external onlyStakeHub returns (uint256 bnbAmount) {
        if (shares == 0) revert ZeroShares();
        if (shares > balanceOf[delegator]) revert InsufficientBalance();
        bnbAmount = getPooledBNBByShares(shares);
        balanceOf[delegator] -= shares;
        totalSupply -= shares;
        totalPooledBNB -= bnbAmount;
        emit Transfer(delegator, address(0), shares);
        uint256 unlockTime = block.timestamp + StakeHub(payable(stakeHub)).unbondPeriod();
        _requests[delegator].push(UnbondRequest(shares, bnbAmount, unlockTime));
    }

    /// Number of unbond requests not yet claimed.
    function pendingUnbondRequest(address delegator) public view returns (uint256) {
        return _requests[delegator].length - _head[delegator];
    }

    /// Number of unbond requests whose unlock time has passed, from the front.
    function claimableUnbondRequest(address delegator) public view returns (uint256 n) {
        uint256 h = _head[delegator];
        UnbondRequest[] storage q = _requests[delegator];
        while (h + n < q.length && q[h + n].unlockTime <= block.timestamp) {
            n++;
        }
    }

    /// The `index`-th pending request (0 = oldest).
    function unbondRequest(address delegator, uint256 index) external view returns (UnbondRequest memory) {
        if (index >= pendingUnbondRequest(delegator)) revert OutOfBounds();
        return _requests[delegator][_head[delegator] + index];
    }

    /// BNB locked in the first `number` pending requests (0 = all).
    function lockedBNBs(address delegator, uint256 number) external view returns (uint256 total) {
        uint256 n = pendingUnbondRequest(delegator);
        if (number == 0 || number > n) number = n;
        for (uint256 i = 0; i < number; i++) {
            total += _requests[delegator][_head[delegator] + i].bnbAmount;
        }
    }

    /// Pays out the first `number` claimable requests (0 = every claimable one).
    function claim(address payable delegator, uint256 number) external onlyStakeHub returns (uint256 total) {
        if (pendingUnbondRequest(delegator) == 0) revert NoUnbondRequest();
        uint256 claimable = claimableUnbondRequest(delegator);
        if (claimable == 0) revert NoClaimableUnbondRequest();
        if (number == 0 || number > claimable) number = claimable;
        for (uint256 i = 0; i < number; i++) {
            total += _requests[delegator][_head[delegator]].bnbAmount;
            delete _requests[delegator][_head[delegator]];
            _head[delegator]++;
        }
        (bool ok,) = delegator.call{value: total}("");
        if (!ok) revert TransferFailed();
    }

    /// Adds a reward to the pool: the commission becomes the operator's shares, the rest
    /// raises the share price for every delegator.
    function distributeReward(uint64 commissionRate) external payable onlyStakeHub {
        uint256 commission = (msg.value * commissionRate) / 10_000;
        uint256 toAll = msg.value - commission;
        totalPooledBNB += toAll;
        if (commission > 0) {
            uint256 shares = getSharesByPooledBNB(commission);
            totalPooledBNB += commission;
            totalSupply += shares;
            balanceOf[operatorAddress] += shares;
            emit Transfer(address(0), operatorAddress, shares);
        }
        emit RewardReceived(toAll, commission);
    }

    /// Takes `amount` BNB out of the pool (every delegator loses pro rata).
    function slash(uint256 amount) external onlyStakeHub returns (uint256) {
        if (amount > totalPooledBNB) amount = totalPooledBNB;
        totalPooledBNB -= amount;
        (bool ok,) = payable(stakeHub).call{value: amount}("");
        if (!ok) revert TransferFailed();
        return amount;
    }
}

/// The staking hub (bsc-genesis-contract StakeHub.sol), at 0x0000000000000000000000000000000000002002.
contract StakeHub {
    struct Commission {
        uint64 rate;
        uint64 maxRate;
        uint64 maxChangeRate;
    }

    struct Description {
        string moniker;
        string identity;
        string website;
        string details;
    }

    struct ValidatorInfo {
        address creditContract;
        uint256 createdTime;
        bool jailed;
        uint256 jailUntil;
        Commission commission;
        Description description;
    }

    error ValidatorNotExisted();
    error ValidatorExisted();
    error DelegationAmountTooSmall();
    error ZeroShares();
    error InvalidValue(string key, bytes value);

    event ValidatorCreated(
        address indexed consensusAddress, address indexed operatorAddress, address indexed creditContract, bytes voteAddress
    );
    event Delegated(address indexed operatorAddress, address indexed delegator, uint256 shares, uint256 bnbAmount);
    event Undelegated(address indexed operatorAddress, address indexed delegator, uint256 shares, uint256 bnbAmount);
    event Claimed(address indexed operatorAddress, address indexed delegator, uint256 bnbAmount);
    event RewardDistributed(address indexed operatorAddress, uint256 reward);
    event ValidatorSlashed(address indexed operatorAddress, uint256 jailUntil, uint256 slashAmount, uint8 slashType);

    /// Smallest delegation or undelegation, wei (1 BNB on BSC mainnet).
    uint256 public constant minDelegationBNBChange = 1 ether;
    /// Unbonding period, seconds (7 days on BSC mainnet).
    uint256 public constant unbondPeriod = 7 days;

    address[] private _operators;
    mapping(address => ValidatorInfo) private _validators;

    receive() external payable {}

    modifier validatorExist(address operatorAddress) {
        if (_validators[operatorAddress].creditContract == address(0)) revert ValidatorNotExisted();
        _;
    }

    /// Test-only stand-in for `createValidator`: the value is the operator's self-delegation.
    function addValidator(address operatorAddress, uint64 commissionRate, string calldata moniker) external payable {
        if (_validators[operatorAddress].creditContract != address(0)) revert ValidatorExisted();
        if (commissionRate > 10_000) revert InvalidValue("commissionRate", abi.encode(commissionRate));
        StakeCredit credit = new StakeCredit(operatorAddress);
        ValidatorInfo storage v = _validators[operatorAddress];
        v.creditContract = address(credit);
        v.createdTime = block.timestamp;
        v.commission = Commission(commissionRate, 10_000, 500);
        v.description.moniker = moniker;
        _operators.push(operatorAddress);
        emit ValidatorCreated(operatorAddress, operatorAddress, address(credit), "");
        if (msg.value > 0) {
            uint256 shares = credit.delegate{value: msg.value}(operatorAddress);
            emit Delegated(operatorAddress, operatorAddress, shares, msg.value);
        }
    }

    function delegate(address operatorAddress, bool delegateVotePower)
        external
        payable
        validatorExist(operatorAddress)
    {
        delegateVotePower;
        if (msg.value < minDelegationBNBChange) revert DelegationAmountTooSmall();
        address credit = _validators[operatorAddress].creditContract;
        uint256 shares = StakeCredit(credit).delegate{value: msg.value}(msg.sender);
        emit Delegated(operatorAddress, msg.sender, shares, msg.value);
    }

    function undelegate(address operatorAddress, uint256 shares) external validatorExist(operatorAddress) {
        if (shares == 0) revert ZeroShares();
        address credit = _validators[operatorAddress].creditContract;
        uint256 bnbAmount = StakeCredit(credit).undelegate(msg.sender, shares);
        emit Undelegated(operatorAddress, msg.sender, shares, bnbAmount);
    }

    function claim(address operatorAddress, uint256 requestNumber) external validatorExist(operatorAddress) {
        address credit = _validators[operatorAddress].creditContract;
        uint256 bnbAmount = StakeCredit(credit).claim(payable(msg.sender), requestNumber);
        emit Claimed(operatorAddress, msg.sender, bnbAmount);
    }

    /// Test-only caller rules (see the header): adds `msg.value` as the validator's reward.
    function distributeReward(address operatorAddress) external payable validatorExist(operatorAddress) {
        ValidatorInfo storage v = _validators[operatorAddress];
        StakeCredit(v.creditContract).distributeReward{value: msg.value}(v.commission.rate);
        emit RewardDistributed(operatorAddress, msg.value);
    }

    /// Test-only (see the header): slashes `amount` wei from the validator's pool.
    function slash(address operatorAddress, uint256 amount) external validatorExist(operatorAddress) {
        ValidatorInfo storage v = _validators[operatorAddress];
        uint256 taken = StakeCredit(v.creditContract).slash(amount);
        emit ValidatorSlashed(operatorAddress, 0, taken, 1);
    }

    function getValidators(uint256 offset, uint256 limit)
        external
        view
        returns (address[] memory operatorAddrs, address[] memory creditAddrs, uint256 totalLength)
    {
        totalLength = _operators.length;
        if (offset >= totalLength) return (operatorAddrs, creditAddrs, totalLength);
        uint256 n = totalLength - offset;
        if (n > limit) n = limit;
        operatorAddrs = new address[](n);
        creditAddrs = new address[](n);
        for (uint256 i = 0; i < n; i++) {
            operatorAddrs[i] = _operators[offset + i];
            creditAddrs[i] = _validators[operatorAddrs[i]].creditContract;
        }
    }

    function getValidatorCreditContract(address operatorAddress)
        external
        view
        validatorExist(operatorAddress)
        returns (address creditContract)
    {
        return _validators[operatorAddress].creditContract;
    }

    /// Test-only deviation (see the header): the consensus address is the operator's.
    function getValidatorConsensusAddress(address operatorAddress)
        external
        view
        validatorExist(operatorAddress)
        returns (address consensusAddress)
    {
        return operatorAddress;
    }

    function getValidatorBasicInfo(address operatorAddress)
        external
        view
        validatorExist(operatorAddress)
        returns (uint256 createdTime, bool jailed, uint256 jailUntil)
    {
        ValidatorInfo storage v = _validators[operatorAddress];
        return (v.createdTime, v.jailed, v.jailUntil);
    }

    function getValidatorCommission(address operatorAddress)
        external
        view
        validatorExist(operatorAddress)
        returns (Commission memory)
    {
        return _validators[operatorAddress].commission;
    }

    function getValidatorDescription(address operatorAddress)
        external
        view
        validatorExist(operatorAddress)
        returns (Description memory)
    {
        return _validators[operatorAddress].description;
    }
}
