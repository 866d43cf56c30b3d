// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

// A local stand-in for the Axie Infinity AXS staking pool on Ronin, for tests on anvil.
//
// Follows the pool's verified ABI (Ronin 0x05b0bb3c1c320b280501b86706c3551995bc8571,
// an ERC20StakingPool backed by the ERC20StakingManager 0x8bd81a19420bad681b7bfc20e703ebd8e253782d):
// the same function signatures and events for everything softstake calls. `stake` pulls
// AXS with `transferFrom` (an ERC-20 approval first: Ronin's AXS has no permit);
// `unstake` pays back at once (no unbonding); rewards accrue per staked AXS and are paid
// by `claimPendingRewards` (or added to the stake by `restakeRewards`), each at most once
// per `minClaimedBlocks` blocks per user (the manager's rule: 28 800 blocks ≈ 24 h on
// Ronin's 3-second blocks), logged as `RewardClaimed(_user, _token, _amount)`.
//
// Test-only deviations, and why:
// - the manager's reward accounting (`userRewardInfo`, `minClaimedBlocks`) lives in the
//   pool itself (one contract to deploy); the pool logs every event;
// - `distributeRewards(amount)` credits one day's reward to the stakers pro rata (AXS
//   pulled from the caller) instead of the manager's per-block `rewardPerBlock` schedule,
//   so tests choose the amounts;
// - `minClaimedBlocks` is a constructor argument (tests use a few blocks).
// The AXS token is deployed by the pool's constructor (`MockAxs`, plain ERC-20).

/// AXS as on Ronin: a plain ERC-20 (no EIP-2612 permit).
contract MockAxs {
    string public constant name = "Axie Infinity Shard";
    string public constant symbol = "AXS";
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// Test-only: mints `amount` to `to`.
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
        _move(msg.sender, to, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 a = allowance[from][msg.sender];
        require(a >= value, "ERC20: insufficient allowance");
        allowance[from][msg.sender] = a - value;
        _move(from, to, value);
        return true;
    }

    function _move(address from, address to, uint256 value) internal {
        require(balanceOf[from] >= value, "ERC20: transfer amount exceeds balance");
        balanceOf[from] -= value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}

/// The AXS staking pool (rewards in AXS too).
contract AxsStakingPool {
    uint256 internal constant PRECISION = 1e18;

    MockAxs public immutable axs;
    uint256 public minClaimedBlocks;
    uint256 internal total;
    uint256 internal accPerShare;
    mapping(address => uint256) internal staked;
    mapping(address => uint256) internal credited;
    mapping(address => uint256) internal debited;
    mapping(address => uint256) internal lastClaimedBlock;

    event Staked(address indexed _user, address indexed _token, uint256 indexed _amount);
    event Unstaked(address indexed _user, address indexed _token, uint256 indexed _amount);
    event RewardClaimed(address indexed _user, address indexed _token, uint256 indexed _amount);

    constructor(uint256 _minClaimedBlocks) {
        axs = new MockAxs();
        minClaimedBlocks = _minClaimedBlocks;
    }

    function getStakingToken() external view returns (address) {
        return address(axs);
    }

    function getRewardToken() external view returns (address) {
        return address(axs);
    }

    function getStakingTotal() external view returns (uint256) {
        return total;
    }

    function getStakingAmount(address _user) external view returns (uint256) {
        return staked[_user];
    }

    function getPendingRewards(address _user) public view returns (uint256) {
        return credited[_user] + (staked[_user] * accPerShare) / PRECISION - debited[_user];
    }

    /// (debitedRewards, creditedRewards, lastClaimedBlock) as the manager's `userRewardInfo`.
    function userRewardInfo(address _user) external view returns (uint256, uint256, uint256) {
        return (debited[_user], credited[_user], lastClaimedBlock[_user]);
    }

    function stake(uint256 _amount) external {
        require(_amount > 0, "ERC20StakingPool: invalid amount");
        _settle(msg.sender);
        require(axs.transferFrom(msg.sender, address(this), _amount), "ERC20StakingPool: transfer failed");
        staked[msg.sender] += _amount;
        total += _amount;
        _rebase(msg.sender);
        emit Staked(msg.sender, address(axs), _amount);
    }

    function unstake(uint256 _amount) public {
        require(_amount > 0, "ERC20StakingPool: invalid amount");
        require(staked[msg.sender] >= _amount, "ERC20StakingPool: insufficient staking amount");
        _settle(msg.sender);
        staked[msg.sender] -= _amount;
        total -= _amount;
        _rebase(msg.sender);
        require(axs.transfer(msg.sender, _amount), "ERC20StakingPool: transfer failed");
        emit Unstaked(msg.sender, address(axs), _amount);
    }

    function unstakeAll() external {
        unstake(staked[msg.sender]);
    }

    function emergencyUnstake() external {
        uint256 a = staked[msg.sender];
        require(a > 0, "ERC20StakingPool: nothing staked");
        staked[msg.sender] = 0;
        total -= a;
        credited[msg.sender] = 0;
        debited[msg.sender] = 0;
        require(axs.transfer(msg.sender, a), "ERC20StakingPool: transfer failed");
        emit Unstaked(msg.sender, address(axs), a);
    }

    function claimPendingRewards() external {
        uint256 r = _take(msg.sender);
        require(axs.transfer(msg.sender, r), "ERC20StakingPool: transfer failed");
        emit RewardClaimed(msg.sender, address(axs), r);
    }

    function restakeRewards() external {
        uint256 r = _take(msg.sender);
        staked[msg.sender] += r;
        total += r;
        _rebase(msg.sender);
        emit RewardClaimed(msg.sender, address(axs), r);
        emit Staked(msg.sender, address(axs), r);
    }

    /// Test-only: credits `amount` AXS of reward (pulled from the caller) to the stakers,
    /// pro rata to their stake.
    function distributeRewards(uint256 amount) external {
        require(total > 0, "nothing staked");
        require(axs.transferFrom(msg.sender, address(this), amount), "ERC20StakingPool: transfer failed");
        accPerShare += (amount * PRECISION) / total;
    }

    function _take(address u) internal returns (uint256 r) {
        require(
            block.number >= lastClaimedBlock[u] + minClaimedBlocks,
            "ERC20StakingManager: claimed too recently"
        );
        r = getPendingRewards(u);
        require(r > 0, "ERC20StakingManager: no pending rewards");
        credited[u] = 0;
        debited[u] = (staked[u] * accPerShare) / PRECISION;
        lastClaimedBlock[u] = block.number;
    }

    /// Moves what has accrued on the current stake into `credited`.
    function _settle(address u) internal {
        credited[u] = getPendingRewards(u);
    }

    /// Restarts the accrual baseline after the stake changed.
    function _rebase(address u) internal {
        debited[u] = (staked[u] * accPerShare) / PRECISION;
    }
}
