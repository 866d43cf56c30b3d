// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

// A local stand-in for Polygon PoS staking on Ethereum L1, for tests on anvil.
//
// Follows the interfaces and rules of 0xPolygon/pos-contracts (StakeManager,
// `staking/validatorShare/ValidatorShare.sol`, `staking/StakingInfo.sol`, EventsHub) and
// the POL token (0xPolygon/pol-token: ERC-20 with EIP-2612 permit): the same function
// signatures and events for everything softstake calls. Delegation buys ValidatorShare
// vouchers at the validator's exchange rate (`buyVoucher`, or `buyVoucherWithPermit` so
// approval and deposit are one transaction); rewards accrue per share
// (`rewardPerShare`, REWARD_PRECISION 1e25) and are paid out — logged by StakingInfo as
// `DelegatorClaimedRewards` — by `withdrawRewards` and by every buy or sell; selling
// (`sellVoucher_new`) moves stake into the withdraw pool under a new unbond nonce,
// claimable with `unstakeClaimTokens_new(nonce)` once `withdrawalDelay` epochs
// (checkpoints) have passed; slashing lowers the active and withdraw pools.
//
// Test-only deviations, and why:
// - `createValidator(selfStake, commissionRate, signer)` stands in for `stakeFor` + the
//   staking NFT and deploys the validator's ValidatorShare directly;
// - checkpoints: `RootChain.submitCheckpoint(data, sigs)` and
//   `StakeManager.checkSignatures` follow the real ones (vote hash keccak256(0x01 ‖ data),
//   [r, s, v] signatures by validators' signers in ascending order, more than 2/3 of the
//   active stake, one epoch per checkpoint, `NewHeaderBlock`), without the checkpoint
//   reward (paid with `distributeRewards`) or the header-block chaining checks;
// - `distributeRewards(validatorId, amount)` pays a checkpoint's reward (POL pulled from
//   the caller) instead of the checkpoint flow from Heimdall;
// - `advanceEpoch(n)` moves the checkpoint epoch; `slash(validatorId, amount)` stands in
//   for the SlashingManager.
// Everything is deployed normally (Polygon has no system addresses on L1); the
// StakeManager deploys the POL token, StakingInfo, EventsHub and the RootChain in its
// constructor.

/// The POL token: ERC-20 with EIP-2612 permit.
contract PolToken {
    string public constant name = "Polygon Ecosystem Token";
    string public constant symbol = "POL";
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    mapping(address => uint256) public nonces;
    bytes32 public constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error ERC2612ExpiredSignature(uint256 deadline);
    error ERC2612InvalidSigner(address signer, address owner);

    function DOMAIN_SEPARATOR() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes(name)),
                keccak256(bytes("1")),
                block.chainid,
                address(this)
            )
        );
    }

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        require(allowed >= value, "ERC20: insufficient allowance");
        if (allowed != type(uint256).max) allowance[from][msg.sender] = allowed - value;
        _transfer(from, to, value);
        return true;
    }

    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        if (block.timestamp > deadline) revert ERC2612ExpiredSignature(deadline);
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, nonces[owner]++, deadline));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR(), structHash));
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0) || signer != owner) revert ERC2612InvalidSigner(signer, owner);
        allowance[owner][spender] = value;
        emit Approval(owner, spender, value);
    }

    function _transfer(address from, address to, uint256 value) internal {
        require(balanceOf[from] >= value, "ERC20: transfer amount exceeds balance");
        balanceOf[from] -= value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}

/// StakingInfo: the staking event logger (only staking contracts may log).
contract StakingInfo {
    address public immutable stakeManager;
    mapping(address => bool) public isValidatorShare;

    event ShareMinted(uint256 indexed validatorId, address indexed user, uint256 indexed amount, uint256 tokens);
    event DelegatorClaimedRewards(uint256 indexed validatorId, address indexed user, uint256 indexed rewards);
    event StakeUpdate(uint256 indexed validatorId, uint256 indexed nonce, uint256 indexed newAmount);

    constructor() {
        stakeManager = msg.sender;
    }

    modifier onlyStaking() {
        require(msg.sender == stakeManager || isValidatorShare[msg.sender], "Invalid sender, not validator");
        _;
    }

    function register(address share) external {
        require(msg.sender == stakeManager, "only stake manager");
        isValidatorShare[share] = true;
    }

    function logShareMinted(uint256 validatorId, address user, uint256 amount, uint256 tokens) external onlyStaking {
        emit ShareMinted(validatorId, user, amount, tokens);
    }

    function logDelegatorClaimRewards(uint256 validatorId, address user, uint256 rewards) external onlyStaking {
        emit DelegatorClaimedRewards(validatorId, user, rewards);
    }

    function logStakeUpdate(uint256 validatorId, uint256 newAmount) external onlyStaking {
        emit StakeUpdate(validatorId, block.number, newAmount);
    }
}

/// EventsHub: events added after StakingInfo (unbonds with nonces).
contract EventsHub {
    StakingInfo public immutable logger;

    event ShareBurnedWithId(uint256 indexed validatorId, address indexed user, uint256 indexed amount, uint256 tokens, uint256 nonce);
    event DelegatorUnstakeWithId(uint256 indexed validatorId, address indexed user, uint256 amount, uint256 nonce);

    constructor(StakingInfo _logger) {
        logger = _logger;
    }

    function logShareBurnedWithId(uint256 validatorId, address user, uint256 amount, uint256 tokens, uint256 nonce) external {
        require(logger.isValidatorShare(msg.sender), "not a validator share");
        emit ShareBurnedWithId(validatorId, user, amount, tokens, nonce);
    }

    function logDelegatorUnstakedWithId(uint256 validatorId, address user, uint256 amount, uint256 nonce) external {
        require(logger.isValidatorShare(msg.sender), "not a validator share");
        emit DelegatorUnstakeWithId(validatorId, user, amount, nonce);
    }
}

contract StakeManager {
    enum Status {
        Inactive,
        Active,
        Locked,
        Unstaked
    }

    struct Validator {
        uint256 amount;
        uint256 reward;
        uint256 activationEpoch;
        uint256 deactivationEpoch;
        uint256 jailTime;
        address signer;
        address contractAddress;
        Status status;
        uint256 commissionRate;
        uint256 lastCommissionUpdate;
        uint256 delegatorsReward;
        uint256 delegatedAmount;
        uint256 initialRewardPerStake;
    }

    PolToken public immutable token;
    StakingInfo public immutable logger;
    EventsHub public immutable eventsHub;
    uint256 public currentEpoch = 1;
    uint256 public WITHDRAWAL_DELAY = 80;
    // ids below 8 are the foundation validators (rate precision 100, never slashed); the
    // stand-in's validators start at 8, as every validator added since genesis does
    uint256 public NFTCounter = 8;
    mapping(uint256 => Validator) public validators;
    mapping(address => uint256) public signerToValidator;
    address public rootChain;

    constructor() {
        token = new PolToken();
        logger = new StakingInfo();
        eventsHub = new EventsHub(logger);
        rootChain = address(new RootChain(this));
    }

    function _isActive(Validator storage v) internal view returns (bool) {
        return v.status == Status.Active && v.deactivationEpoch == 0 && v.jailTime == 0;
    }

    /// As StakeManager.checkSignatures: recovers each [r, s, v] signature over
    /// `voteHash` (ECVerify: v below 27 gets 27 added), skips a repeated signer, stops at
    /// one out of ascending order, and requires the active validators that signed to hold
    /// more than 2/3 of the active stake. A checkpoint is one epoch. Returns the stake that
    /// signed (the real one returns the checkpoint reward).
    function checkSignatures(uint256, bytes32 voteHash, bytes32, address, uint256[3][] calldata sigs)
        external
        returns (uint256)
    {
        require(msg.sender == rootChain, "UNAUTHORIZED_ROOT_CHAIN");
        address lastAdd;
        uint256 signedStake;
        for (uint256 i = 0; i < sigs.length; ++i) {
            uint8 v = uint8(sigs[i][2]);
            if (v < 27) v += 27;
            require(v == 27 || v == 28, "invalid signature v");
            address signer = ecrecover(voteHash, v, bytes32(sigs[i][0]), bytes32(sigs[i][1]));
            if (signer == lastAdd) continue;
            if (signer < lastAdd) break;
            lastAdd = signer;
            Validator storage val = validators[signerToValidator[signer]];
            if (signerToValidator[signer] != 0 && _isActive(val)) {
                signedStake += val.amount + val.delegatedAmount;
            }
        }
        uint256 totalStake;
        for (uint256 id = 8; id < NFTCounter; ++id) {
            if (_isActive(validators[id])) totalStake += validators[id].amount + validators[id].delegatedAmount;
        }
        require(signedStake * 3 > totalStake * 2, "2/3+1 non-majority");
        currentEpoch += 1;
        return signedStake;
    }

    function epoch() external view returns (uint256) {
        return currentEpoch;
    }

    function withdrawalDelay() external view returns (uint256) {
        return WITHDRAWAL_DELAY;
    }

    function getValidatorContract(uint256 validatorId) external view returns (address) {
        return validators[validatorId].contractAddress;
    }

    function delegatedAmount(uint256 validatorId) external view returns (uint256) {
        return validators[validatorId].delegatedAmount;
    }

    function delegatorsReward(uint256 validatorId) external view returns (uint256) {
        return validators[validatorId].delegatorsReward;
    }

    modifier onlyDelegation(uint256 validatorId) {
        require(validators[validatorId].contractAddress == msg.sender, "Invalid contract address");
        _;
    }

    function delegationDeposit(uint256 validatorId, uint256 amount, address delegator)
        external
        onlyDelegation(validatorId)
        returns (bool)
    {
        return token.transferFrom(delegator, address(this), amount);
    }

    function transferFunds(uint256 validatorId, uint256 amount, address delegator)
        external
        onlyDelegation(validatorId)
        returns (bool)
    {
        return token.transfer(delegator, amount);
    }

    function updateValidatorState(uint256 validatorId, int256 amount) external onlyDelegation(validatorId) {
        Validator storage v = validators[validatorId];
        if (amount >= 0) {
            v.delegatedAmount += uint256(amount);
        } else {
            v.delegatedAmount -= uint256(-amount);
        }
    }

    function decreaseValidatorDelegatedAmount(uint256 validatorId, uint256 amount) external onlyDelegation(validatorId) {
        validators[validatorId].delegatedAmount -= amount;
    }

    function withdrawDelegatorsReward(uint256 validatorId) external onlyDelegation(validatorId) returns (uint256) {
        uint256 r = validators[validatorId].delegatorsReward;
        validators[validatorId].delegatorsReward = 0;
        return r;
    }

    /// Test-only: a validator with `selfStake` POL (pulled from the caller), its
    /// checkpoint signer and its ValidatorShare.
    function createValidator(uint256 selfStake, uint256 commissionRate, address signer) external returns (uint256 id) {
        require(commissionRate <= 100, "Incorrect value");
        require(signer != address(0) && signerToValidator[signer] == 0, "Invalid signer");
        id = NFTCounter++;
        require(token.transferFrom(msg.sender, address(this), selfStake), "self-stake");
        ValidatorShare share = new ValidatorShare(id, this);
        logger.register(address(share));
        Validator storage v = validators[id];
        v.amount = selfStake;
        v.activationEpoch = currentEpoch;
        v.signer = signer;
        signerToValidator[signer] = id;
        v.contractAddress = address(share);
        v.status = Status.Active;
        v.commissionRate = commissionRate;
    }

    /// Test-only: a checkpoint's reward for `validatorId` (POL pulled from the caller):
    /// commission and the self-stake's part to the validator, the rest to delegators.
    function distributeRewards(uint256 validatorId, uint256 amount) external {
        Validator storage v = validators[validatorId];
        require(v.contractAddress != address(0), "no validator");
        require(token.transferFrom(msg.sender, address(this), amount), "reward");
        uint256 total = v.amount + v.delegatedAmount;
        uint256 toDelegators = total == 0 ? 0 : (amount * v.delegatedAmount) / total;
        uint256 commission = (toDelegators * v.commissionRate) / 100;
        v.delegatorsReward += toDelegators - commission;
        v.reward += amount - (toDelegators - commission);
    }

    /// Test-only: moves the checkpoint epoch `n` forward.
    function advanceEpoch(uint256 n) external {
        currentEpoch += n;
    }

    /// Test-only: slashes `amount` from the validator's delegation (active and withdraw
    /// pools pro rata, as ValidatorShare.slash).
    function slash(uint256 validatorId, uint256 amount) external {
        Validator storage v = validators[validatorId];
        ValidatorShare(v.contractAddress).slash(v.amount, v.delegatedAmount, amount);
    }
}

/// The RootChain (0xPolygon/pos-contracts `root/RootChain.sol`): checkpoints from
/// Heimdall, signed by the validators' signers.
contract RootChain {
    event NewHeaderBlock(
        address indexed proposer,
        uint256 indexed headerBlockId,
        uint256 indexed reward,
        uint256 start,
        uint256 end,
        bytes32 root
    );

    uint256 public constant MAX_DEPOSITS = 10000;
    /// Bor's chain id that checkpoints carry (Polygon PoS mainnet).
    uint256 public constant CHAINID = 137;
    StakeManager public immutable stakeManager;
    uint256 internal _nextHeaderBlock = MAX_DEPOSITS;

    constructor(StakeManager sm) {
        stakeManager = sm;
    }

    /// `data` = abi.encode(proposer, start, end, rootHash, accountHash, borChainId);
    /// `sigs` = the validators' [r, s, v] over keccak256(0x01 ‖ data).
    function submitCheckpoint(bytes calldata data, uint256[3][] calldata sigs) external {
        (address proposer, uint256 start, uint256 end, bytes32 rootHash, bytes32 accountHash, uint256 borChainId) =
            abi.decode(data, (address, uint256, uint256, bytes32, bytes32, uint256));
        require(borChainId == CHAINID, "Invalid bor chain id");
        require(end >= start, "INCORRECT_HEADER_DATA");
        uint256 reward = stakeManager.checkSignatures(
            end - start + 1, keccak256(abi.encodePacked(bytes(hex"01"), data)), accountHash, proposer, sigs
        );
        require(reward != 0, "Invalid checkpoint");
        emit NewHeaderBlock(proposer, _nextHeaderBlock, reward, start, end, rootHash);
        _nextHeaderBlock += MAX_DEPOSITS;
    }

    function currentHeaderBlock() public view returns (uint256) {
        return _nextHeaderBlock - MAX_DEPOSITS;
    }
}

contract ValidatorShare {
    struct DelegatorUnbond {
        uint256 shares;
        uint256 withdrawEpoch;
    }

    uint256 constant EXCHANGE_RATE_PRECISION = 100;
    uint256 constant EXCHANGE_RATE_HIGH_PRECISION = 10 ** 29;
    uint256 constant REWARD_PRECISION = 10 ** 25;

    StakingInfo public immutable stakingLogger;
    StakeManager public immutable stakeManager;
    uint256 public immutable validatorId;
    uint256 public minAmount = 10 ** 18;
    uint256 public rewardPerShare;
    uint256 public activeAmount;
    bool public delegation = true;
    uint256 public withdrawPool;
    uint256 public withdrawShares;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => uint256) public initalRewardPerShare;
    mapping(address => uint256) public unbondNonces;
    mapping(address => mapping(uint256 => DelegatorUnbond)) public unbonds_new;

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor(uint256 _validatorId, StakeManager _stakeManager) {
        validatorId = _validatorId;
        stakeManager = _stakeManager;
        stakingLogger = _stakeManager.logger();
    }

    function exchangeRate() public view returns (uint256) {
        uint256 precision = _getRatePrecision();
        return totalSupply == 0 ? precision : (stakeManager.delegatedAmount(validatorId) * precision) / totalSupply;
    }

    function withdrawExchangeRate() public view returns (uint256) {
        uint256 precision = _getRatePrecision();
        // foundation validators (ids below 8) are never slashed: their rate stays put
        if (validatorId < 8) return precision;
        return withdrawShares == 0 ? precision : (withdrawPool * precision) / withdrawShares;
    }

    function _getRatePrecision() internal view returns (uint256) {
        return validatorId < 8 ? EXCHANGE_RATE_PRECISION : EXCHANGE_RATE_HIGH_PRECISION;
    }

    function getTotalStake(address user) public view returns (uint256, uint256) {
        uint256 shares = balanceOf[user];
        uint256 rate = exchangeRate();
        if (shares == 0) return (0, rate);
        return ((rate * shares) / _getRatePrecision(), rate);
    }

    function getRewardPerShare() public view returns (uint256) {
        return _rewardPerShareWith(stakeManager.delegatorsReward(validatorId));
    }

    function getLiquidRewards(address user) public view returns (uint256) {
        return _calculateReward(user, getRewardPerShare());
    }

    function buyVoucher(uint256 _amount, uint256 _minSharesToMint) public returns (uint256 amountToDeposit) {
        return _buyVoucher(_amount, _minSharesToMint);
    }

    function buyVoucherWithPermit(uint256 _amount, uint256 _minSharesToMint, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        public
        returns (uint256 amountToDeposit)
    {
        PolToken pol = stakeManager.token();
        uint256 nonceBefore = pol.nonces(msg.sender);
        pol.permit(msg.sender, address(stakeManager), _amount, deadline, v, r, s);
        require(pol.nonces(msg.sender) == nonceBefore + 1, "Invalid permit");
        return _buyVoucher(_amount, _minSharesToMint);
    }

    function withdrawRewards() public {
        uint256 rewards = _withdrawAndTransferReward(msg.sender);
        require(rewards >= minAmount, "Too small rewards amount");
    }

    function sellVoucher_new(uint256 claimAmount, uint256 maximumSharesToBurn) public {
        (uint256 totalStaked, uint256 rate) = getTotalStake(msg.sender);
        require(totalStaked != 0 && totalStaked >= claimAmount, "Too much requested");
        uint256 shares = (claimAmount * _getRatePrecision()) / rate;
        require(shares <= maximumSharesToBurn, "too much slippage");
        _withdrawAndTransferReward(msg.sender);
        _burn(msg.sender, shares);
        stakeManager.updateValidatorState(validatorId, -int256(claimAmount));
        activeAmount -= claimAmount;
        uint256 withdrawPoolShare = (claimAmount * _getRatePrecision()) / withdrawExchangeRate();
        withdrawPool += claimAmount;
        withdrawShares += withdrawPoolShare;
        uint256 unbondNonce = unbondNonces[msg.sender] + 1;
        unbonds_new[msg.sender][unbondNonce] = DelegatorUnbond({shares: withdrawPoolShare, withdrawEpoch: stakeManager.epoch()});
        unbondNonces[msg.sender] = unbondNonce;
        stakeManager.eventsHub().logShareBurnedWithId(validatorId, msg.sender, claimAmount, shares, unbondNonce);
        stakingLogger.logStakeUpdate(validatorId, activeAmount);
    }

    function unstakeClaimTokens_new(uint256 unbondNonce) public {
        DelegatorUnbond memory unbond = unbonds_new[msg.sender][unbondNonce];
        uint256 shares = unbond.shares;
        require(
            unbond.withdrawEpoch + stakeManager.withdrawalDelay() <= stakeManager.epoch() && shares > 0,
            "Incomplete withdrawal period"
        );
        uint256 amount = (withdrawExchangeRate() * shares) / _getRatePrecision();
        withdrawShares -= shares;
        withdrawPool -= amount;
        require(stakeManager.transferFunds(validatorId, amount, msg.sender), "Insufficent rewards");
        delete unbonds_new[msg.sender][unbondNonce];
        stakeManager.eventsHub().logDelegatorUnstakedWithId(validatorId, msg.sender, amount, unbondNonce);
    }

    function slash(uint256 validatorStake, uint256 delegatedAmount, uint256 totalAmountToSlash) external returns (uint256) {
        require(msg.sender == address(stakeManager), "only stake manager");
        uint256 delegationAmount = delegatedAmount + withdrawPool;
        if (delegationAmount == 0) return 0;
        uint256 amountToSlash = (delegationAmount * totalAmountToSlash) / (validatorStake + delegationAmount);
        uint256 fromWithdrawPool = (withdrawPool * amountToSlash) / delegationAmount;
        uint256 stakeSlashed = amountToSlash - fromWithdrawPool;
        stakeManager.decreaseValidatorDelegatedAmount(validatorId, stakeSlashed);
        activeAmount -= stakeSlashed;
        withdrawPool -= fromWithdrawPool;
        return amountToSlash;
    }

    function _buyVoucher(uint256 _amount, uint256 _minSharesToMint) internal returns (uint256 amountToDeposit) {
        _withdrawAndTransferReward(msg.sender);
        require(delegation, "Delegation is disabled");
        uint256 rate = exchangeRate();
        uint256 shares = (_amount * _getRatePrecision()) / rate;
        require(shares >= _minSharesToMint, "Too much slippage");
        _mint(msg.sender, shares);
        amountToDeposit = (rate * shares) / _getRatePrecision();
        stakeManager.updateValidatorState(validatorId, int256(amountToDeposit));
        activeAmount += amountToDeposit;
        stakingLogger.logShareMinted(validatorId, msg.sender, amountToDeposit, shares);
        stakingLogger.logStakeUpdate(validatorId, activeAmount);
        require(stakeManager.delegationDeposit(validatorId, amountToDeposit, msg.sender), "deposit failed");
    }

    function _rewardPerShareWith(uint256 accumulatedReward) internal view returns (uint256) {
        uint256 r = rewardPerShare;
        if (accumulatedReward != 0 && totalSupply != 0) {
            r += (accumulatedReward * REWARD_PRECISION) / totalSupply;
        }
        return r;
    }

    function _calculateReward(address user, uint256 _rewardPerShare) internal view returns (uint256) {
        uint256 shares = balanceOf[user];
        if (shares == 0) return 0;
        uint256 initial = initalRewardPerShare[user];
        if (initial == _rewardPerShare) return 0;
        return ((_rewardPerShare - initial) * shares) / REWARD_PRECISION;
    }

    function _withdrawAndTransferReward(address user) internal returns (uint256 liquidRewards) {
        uint256 _rewardPerShare = _rewardPerShareWith(stakeManager.withdrawDelegatorsReward(validatorId));
        liquidRewards = _calculateReward(user, _rewardPerShare);
        rewardPerShare = _rewardPerShare;
        initalRewardPerShare[user] = _rewardPerShare;
        if (liquidRewards != 0) {
            require(stakeManager.transferFunds(validatorId, liquidRewards, user), "Insufficent rewards");
            stakingLogger.logDelegatorClaimRewards(validatorId, user, liquidRewards);
        }
    }

    function _mint(address to, uint256 shares) internal {
        totalSupply += shares;
        balanceOf[to] += shares;
        emit Transfer(address(0), to, shares);
    }

    function _burn(address from, uint256 shares) internal {
        balanceOf[from] -= shares;
        totalSupply -= shares;
        emit Transfer(from, address(0), shares);
    }
}
